import { Clipboard } from '@jupyterlab/apputils';
import { CommandRegistry } from '@lumino/commands';
import { IDisposable } from '@lumino/disposable';

import { filterWords, matchesWords } from '../model';
import {
  ExportMode,
  ICondaPackage,
  IEnvironmentDetails,
  IEnvironmentSummary,
  IPipPackage,
  IReproModel,
  StatusPhase
} from '../tokens';
import { EXPORT_MODE_CHOICES } from './dialogs';
import { button, el, escapeHtml } from './dom';

/**
 * The `data-testid` values of the environment details view. Browser tests
 * depend on them: change them only together with the tests.
 */
export namespace DetailsTestIds {
  export const view = 'repro-env-details';
  export const back = 'repro-env-details-back';
  export const title = 'repro-env-details-title';
  export const prefix = 'repro-env-details-prefix';
  export const kind = 'repro-env-details-kind';
  export const python = 'repro-env-details-python';
  export const kernels = 'repro-env-details-kernels';
  export const channels = 'repro-env-details-channels';
  export const copyPrefix = 'repro-env-copy-prefix';
  export const exportMode = 'repro-env-export-mode';
  export const exportButton = 'repro-env-export';
  export const kernel = 'repro-env-kernel';
  export const openNotebook = 'repro-env-open-notebook';
  export const openConsole = 'repro-env-open-console';
  export const noKernel = 'repro-env-no-kernel';
  export const message = 'repro-env-details-message';
  export const packageSearch = 'repro-env-package-search';
  export const packageCount = 'repro-env-package-count';
  export const packagesLoading = 'repro-env-packages-loading';
  export const packagesError = 'repro-env-packages-error';
  export const packagesRetry = 'repro-env-packages-retry';
  export const condaPackages = 'repro-env-conda-packages';
  export const pipPackages = 'repro-env-pip-packages';
  export const packageRow = 'repro-env-package';
  export const packagesNoMatches = 'repro-env-packages-no-matches';
  export const sharedBadge = 'repro-env-details-shared';
}

/**
 * What the "shared" badge of an environment says on hover.
 */
export const SHARED_TITLE =
  'Shared: provided by an administrator for every user, read-only. ' +
  'Restores never write into it; restore a copy under your own name to change it.';

/**
 * The badges of an environment, in the order shown: `base`, `server`, and
 * `shared` (which says read-only itself) or `read-only`.
 */
export function environmentBadges(
  env: IEnvironmentSummary
): { label: string; title?: string; shared?: boolean }[] {
  const badges: { label: string; title?: string; shared?: boolean }[] = [];
  if (env.is_base) {
    badges.push({ label: 'base' });
  }
  if (env.is_server_env) {
    badges.push({ label: 'server' });
  }
  if (env.shared) {
    badges.push({ label: 'shared', title: SHARED_TITLE, shared: true });
  } else if (!env.writable) {
    badges.push({ label: 'read-only' });
  }
  return badges;
}

/**
 * The JupyterLab commands the details view runs to open a notebook or a
 * console on an environment's kernel.
 */
export namespace KernelCommands {
  /**
   * `notebook:create-new` takes `{kernelName}`.
   */
  export const newNotebook = 'notebook:create-new';

  /**
   * `console:create` takes `{kernelPreference: {name}}`.
   */
  export const newConsole = 'console:create';
}

/**
 * The channels of an environment's conda packages: distinct, in the order
 * the packages list them; packages of no known channel are left out.
 */
export function channelsOf(packages: readonly ICondaPackage[]): string[] {
  const seen = new Set<string>();
  for (const pkg of packages) {
    if (pkg.channel) {
      seen.add(pkg.channel);
    }
  }
  return Array.from(seen);
}

/**
 * The lower-cased text a package search is matched against.
 */
export function packageSearchText(pkg: ICondaPackage | IPipPackage): string {
  const conda = pkg as Partial<ICondaPackage>;
  return [pkg.name, pkg.version, conda.build ?? '', conda.channel ?? 'pypi']
    .join(' ')
    .toLowerCase();
}

/**
 * The file name of a downloaded export: `environment-<name>.yml` (which
 * the "Restore from this file" menu recognizes), or
 * `environment-<name>.explicit.txt` for the `@EXPLICIT` list.
 */
export function exportFilename(name: string, mode: ExportMode): string {
  const safe = name.replace(/[^A-Za-z0-9._-]/g, '_') || 'environment';
  return mode === 'explicit'
    ? `environment-${safe}.explicit.txt`
    : `environment-${safe}.yml`;
}

/**
 * Let the browser download `text` as `filename`.
 */
export function downloadText(
  text: string,
  filename: string,
  type: string
): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = document.createElement('a');
  link.href = url;
  link.download = filename;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  // The download has started once click() returned; free it a bit later.
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/**
 * The details of one environment, shown in the Environments panel in place
 * of the list: prefix, kind, Python, kernels, channels, its conda and pip
 * packages (searchable), and actions (export, open a notebook or console
 * on its kernel, copy the prefix).
 *
 * Built the first time an environment is opened; the packages are fetched
 * when it is shown and kept until the listing changes.
 */
export class EnvironmentDetails implements IDisposable {
  constructor(options: EnvironmentDetails.IOptions) {
    this._model = options.model;
    this._commands = options.commands ?? null;
    this._onClose = options.onClose;

    this.node = el('section', 'jp-ReproPanel-section jp-ReproEnvDetails');
    this.node.dataset.testid = DetailsTestIds.view;
    this.node.hidden = true;
    const titleId = `jp-ReproEnvDetails-title-${Private.nextId()}`;
    this.node.setAttribute('aria-labelledby', titleId);
    this.node.addEventListener('keydown', this._onKeyDown);

    const back = button({
      label: 'All environments',
      ariaLabel: 'Back to the list of environments',
      testId: DetailsTestIds.back,
      className: 'jp-ReproEnvDetails-back'
    });
    back.prepend(el('span', 'jp-ReproEnvDetails-backArrow', '‹'));
    back.firstElementChild?.setAttribute('aria-hidden', 'true');
    back.addEventListener('click', () => this._onClose());

    this._title.id = titleId;
    this._title.className = 'jp-ReproEnvDetails-title';
    this._title.tabIndex = -1;
    this._title.dataset.testid = DetailsTestIds.title;
    const titleRow = el('div', 'jp-ReproEnvDetails-titleRow');
    titleRow.append(this._title, this._badges);
    this._badges.className = 'jp-ReproEnvDetails-badges';

    this._summary.className =
      'jp-ReproPanel-details jp-ReproEnvDetails-summary';

    this.node.append(
      back,
      titleRow,
      this._summary,
      this._buildActions(),
      this._message,
      this._buildPackages()
    );
    this._message.className = 'jp-ReproEnvDetails-message';
    this._message.dataset.testid = DetailsTestIds.message;
    this._message.setAttribute('role', 'status');
    this._setMessage('');
  }

  /**
   * The view's root node.
   */
  readonly node: HTMLElement;

  /**
   * The environment shown, `null` before the first.
   */
  get environment(): IEnvironmentSummary | null {
    return this._env;
  }

  /**
   * The environment's packages once fetched, else `null`.
   */
  get details(): IEnvironmentDetails | null {
    return this._details;
  }

  /**
   * Phase of the request for the packages.
   */
  get phase(): StatusPhase {
    return this._phase;
  }

  /**
   * Resolves once the packages of the environment shown are fetched (or
   * failed); for tests and callers that wait.
   */
  get ready(): Promise<void> {
    return this._pending ?? Promise.resolve();
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this.node.removeEventListener('keydown', this._onKeyDown);
    this.node.remove();
  }

  /**
   * Show `env`, fetching its packages unless they are known.
   */
  show(env: IEnvironmentSummary): void {
    const same = this._env?.name === env.name;
    this._env = env;
    this.node.dataset.envName = env.name;
    this.node.hidden = false;
    if (!same) {
      this._search.value = '';
      this._setMessage('');
      if (!this._modeChosen) {
        this._mode.value = this._model.settings.defaultExportMode;
      }
    }
    this._renderSummary();
    const cached = this._cache.get(env.name);
    if (cached) {
      this._setDetails(cached);
    } else {
      void this._fetch();
    }
  }

  /**
   * Hide the view.
   */
  hide(): void {
    this.node.hidden = true;
  }

  /**
   * The listing changed: forget every fetched package list and show the
   * environment again from `env`, its new summary (`null`: gone).
   */
  reset(env: IEnvironmentSummary | null): void {
    this._cache.clear();
    if (this._env === null || this.node.hidden) {
      this._details = null;
      return;
    }
    if (env === null) {
      this._details = null;
      this._request++;
      this._pending = null;
      this._phase = 'idle';
      this._setMessage(
        `"${this._env.name}" is no longer listed: it was removed or renamed.`,
        true
      );
      this._renderPackages();
      return;
    }
    this.show(env);
  }

  /**
   * Move the keyboard focus to the view's title.
   */
  focus(): void {
    this._title.focus();
  }

  /**
   * Filter the packages by `text` (as typed in the search box).
   */
  search(text: string): void {
    this._search.value = text;
    this._applySearch();
  }

  private _buildActions(): HTMLElement {
    const actions = el('div', 'jp-ReproEnvDetails-actions');

    const exportRow = el('div', 'jp-ReproEnvDetails-actionRow');
    const exportLabel = el('span', 'jp-ReproEnvDetails-actionLabel', 'Export');
    exportLabel.setAttribute('aria-hidden', 'true');
    this._mode.className = 'jp-ReproEnvDetails-select';
    this._mode.dataset.testid = DetailsTestIds.exportMode;
    this._mode.setAttribute('aria-label', 'Export mode');
    this._mode.title = 'Export mode';
    for (const choice of EXPORT_MODE_CHOICES) {
      const option = el('option', '', choice.label);
      option.value = choice.value;
      option.title = choice.title;
      this._mode.append(option);
    }
    this._mode.addEventListener('change', () => {
      this._modeChosen = true;
    });
    this._exportButton = button({
      label: 'Download',
      ariaLabel: 'Download the spec of this environment',
      testId: DetailsTestIds.exportButton,
      className: 'jp-ReproEnvDetails-export'
    });
    this._exportButton.addEventListener('click', () => void this._export());
    exportRow.append(exportLabel, this._mode, this._exportButton);

    const kernelRow = el('div', 'jp-ReproEnvDetails-actionRow');
    this._kernel.className = 'jp-ReproEnvDetails-select';
    this._kernel.dataset.testid = DetailsTestIds.kernel;
    this._kernel.setAttribute('aria-label', 'Kernel');
    this._kernel.title = 'Kernel';
    this._openNotebook = button({
      label: 'New notebook',
      ariaLabel: "Open a new notebook on this environment's kernel",
      testId: DetailsTestIds.openNotebook,
      className: 'jp-ReproEnvDetails-openNotebook'
    });
    this._openNotebook.addEventListener('click', () => {
      void this._open(KernelCommands.newNotebook);
    });
    this._openConsole = button({
      label: 'New console',
      ariaLabel: "Open a console on this environment's kernel",
      testId: DetailsTestIds.openConsole,
      className: 'jp-ReproEnvDetails-openConsole'
    });
    this._openConsole.addEventListener('click', () => {
      void this._open(KernelCommands.newConsole);
    });
    this._noKernel.className = 'jp-ReproEnvDetails-note';
    this._noKernel.dataset.testid = DetailsTestIds.noKernel;
    this._noKernel.textContent =
      'No kernel: install ipykernel in it to open notebooks on it.';
    kernelRow.append(
      this._kernel,
      this._openNotebook,
      this._openConsole,
      this._noKernel
    );

    this._copy = button({
      label: 'Copy',
      ariaLabel: "Copy the environment's prefix to the clipboard",
      testId: DetailsTestIds.copyPrefix,
      className: 'jp-ReproEnvDetails-copy'
    });
    this._copy.addEventListener('click', () => this._copyPrefix());

    actions.append(exportRow, kernelRow);
    return actions;
  }

  private _buildPackages(): HTMLElement {
    const section = el('div', 'jp-ReproEnvDetails-packages');
    const heading = el('h4', 'jp-ReproPanel-sectionTitle', 'Packages');
    const headingRow = el('div', 'jp-ReproEnvs-titleRow');
    this._count.className = 'jp-ReproEnvs-count';
    this._count.dataset.testid = DetailsTestIds.packageCount;
    this._count.setAttribute('aria-live', 'polite');
    headingRow.append(heading, this._count);

    this._search.className = 'jp-mod-styled jp-ReproEnvs-filter';
    this._search.type = 'search';
    this._search.placeholder = 'Search packages by name, version, channel…';
    this._search.setAttribute('aria-label', 'Search packages');
    this._search.dataset.testid = DetailsTestIds.packageSearch;
    this._search.addEventListener('input', () => this._applySearch());

    this._loading.className = 'jp-ReproPanel-loading';
    this._loading.textContent = 'Loading packages…';
    this._loading.dataset.testid = DetailsTestIds.packagesLoading;

    this._error.className = 'jp-ReproPanel-message jp-mod-error';
    this._error.dataset.testid = DetailsTestIds.packagesError;
    this._error.setAttribute('role', 'alert');
    this._errorText.className = 'jp-ReproPanel-messageText';
    const retry = button({
      label: 'Retry',
      ariaLabel: 'Load the packages again',
      testId: DetailsTestIds.packagesRetry,
      className: 'jp-ReproEnvDetails-retry'
    });
    retry.addEventListener('click', () => {
      // The error box goes away while loading: keep the focus in the view.
      this._search.focus();
      void this._fetch();
    });
    this._error.append(this._errorText, retry);

    this._condaTitle.className = 'jp-ReproEnvDetails-tableTitle';
    this._pipTitle.className = 'jp-ReproEnvDetails-tableTitle';
    this._condaTitle.id = `jp-ReproEnvDetails-conda-${Private.nextId()}`;
    this._pipTitle.id = `jp-ReproEnvDetails-pip-${Private.nextId()}`;
    this._condaTable.className = 'jp-ReproEnvDetails-table';
    this._condaTable.dataset.testid = DetailsTestIds.condaPackages;
    this._condaTable.setAttribute('aria-labelledby', this._condaTitle.id);
    this._pipTable.className = 'jp-ReproEnvDetails-table';
    this._pipTable.dataset.testid = DetailsTestIds.pipPackages;
    this._pipTable.setAttribute('aria-labelledby', this._pipTitle.id);

    this._noMatches.className = 'jp-ReproEnvDetails-note';
    this._noMatches.dataset.testid = DetailsTestIds.packagesNoMatches;
    this._noMatches.textContent = 'No packages match the search.';

    section.append(
      headingRow,
      this._search,
      this._loading,
      this._error,
      this._noMatches,
      this._condaTitle,
      this._condaTable,
      this._pipTitle,
      this._pipTable
    );
    return section;
  }

  private _renderSummary(): void {
    const env = this._env;
    if (!env) {
      return;
    }
    this._title.textContent = env.name;
    const badges: HTMLElement[] = [];
    for (const badge of environmentBadges(env)) {
      const node = el('span', 'jp-ReproPanel-badge', badge.label);
      if (badge.shared) {
        node.classList.add('jp-mod-shared');
        node.dataset.testid = DetailsTestIds.sharedBadge;
        node.setAttribute('aria-label', 'shared, read-only');
      }
      if (badge.title) {
        node.title = badge.title;
      }
      badges.push(node);
    }
    this._badges.replaceChildren(...badges);

    const prefix = el('span', 'jp-ReproEnvDetails-prefix');
    const prefixText = el('code', 'jp-ReproPanel-code', env.prefix);
    prefixText.dataset.testid = DetailsTestIds.prefix;
    prefix.append(prefixText, this._copy);
    const kind = el('span', 'jp-ReproEnvDetails-kind', env.kind);
    kind.dataset.testid = DetailsTestIds.kind;
    const python = el(
      'span',
      'jp-ReproEnvDetails-python',
      env.python_version ?? 'none'
    );
    python.dataset.testid = DetailsTestIds.python;
    let kernels: HTMLElement;
    if (env.kernels.length) {
      kernels = el('ul', 'jp-ReproEnvDetails-kernels');
      for (const name of env.kernels) {
        kernels.append(el('li', 'jp-ReproPanel-code', name));
      }
    } else {
      kernels = el('span', 'jp-ReproPanel-none', 'none');
    }
    kernels.dataset.testid = DetailsTestIds.kernels;
    this._channels.dataset.testid = DetailsTestIds.channels;
    this._summary.replaceChildren(
      ...Private.row('Prefix', prefix),
      ...Private.row('Kind', kind),
      ...Private.row('Python', python),
      ...Private.row('Kernels', kernels),
      ...Private.row('Channels', this._channels)
    );

    const current = this._kernel.value;
    this._kernel.replaceChildren(
      ...env.kernels.map(name => {
        const option = el('option', '', name);
        option.value = name;
        return option;
      })
    );
    if (env.kernels.includes(current)) {
      this._kernel.value = current;
    }
    const hasKernel = env.kernels.length > 0;
    // A choice only when there is one to make.
    this._kernel.hidden = env.kernels.length < 2;
    this._openNotebook.hidden =
      !hasKernel || !this._hasCommand(KernelCommands.newNotebook);
    this._openConsole.hidden =
      !hasKernel || !this._hasCommand(KernelCommands.newConsole);
    this._noKernel.hidden = hasKernel;
  }

  private _hasCommand(id: string): boolean {
    return this._commands !== null && this._commands.hasCommand(id);
  }

  private async _fetch(): Promise<void> {
    const env = this._env;
    if (!env) {
      return;
    }
    const request = ++this._request;
    this._details = null;
    this._phase = 'loading';
    this._renderPackages();
    const pending = this._model.environmentDetails(env.name).then(
      details => {
        if (this._isDisposed || request !== this._request) {
          return;
        }
        this._cache.set(env.name, details);
        this._setDetails(details);
      },
      reason => {
        if (this._isDisposed || request !== this._request) {
          return;
        }
        this._phase = 'error';
        this._errorText.textContent = `Could not load the packages of "${env.name}": ${Private.message(reason)}`;
        this._renderPackages();
      }
    );
    this._pending = pending;
    await pending;
  }

  private _setDetails(details: IEnvironmentDetails): void {
    this._request++;
    this._pending = null;
    this._details = details;
    this._phase = 'ready';
    this._renderPackages();
  }

  /**
   * Build both tables as HTML strings (an environment may hold hundreds of
   * packages), then apply the search.
   */
  private _renderPackages(): void {
    const details = this._details;
    const phase = this._phase;
    this._loading.hidden = phase !== 'loading';
    this._error.hidden = phase !== 'error';
    this.node.setAttribute('aria-busy', phase === 'loading' ? 'true' : 'false');
    const conda = details?.conda_packages ?? [];
    const pip = details?.pip_packages ?? [];
    this._condaTitle.textContent = `Conda packages (${conda.length})`;
    this._pipTitle.textContent = `pip packages (${pip.length})`;
    this._condaTitle.hidden = details === null;
    this._condaTable.hidden = details === null;
    this._pipTitle.hidden = details === null || pip.length === 0;
    this._pipTable.hidden = details === null || pip.length === 0;
    this._condaTable.innerHTML = details ? Private.condaTableHtml(conda) : '';
    this._pipTable.innerHTML = details ? Private.pipTableHtml(pip) : '';
    this._condaRows = Array.from(this._condaTable.tBodies[0]?.rows ?? []);
    this._pipRows = Array.from(this._pipTable.tBodies[0]?.rows ?? []);
    this._searchTexts = [...conda, ...pip].map(packageSearchText);

    if (details) {
      const channels = channelsOf(conda);
      this._channels.className = channels.length
        ? 'jp-ReproEnvDetails-channels'
        : 'jp-ReproPanel-none';
      this._channels.textContent = channels.length
        ? channels.join(', ')
        : 'none known';
    } else {
      this._channels.className = 'jp-ReproPanel-none';
      this._channels.textContent = phase === 'loading' ? 'loading…' : '—';
    }
    this._applySearch();
  }

  private _applySearch(): void {
    const words = filterWords(this._search.value);
    const rows = [...this._condaRows, ...this._pipRows];
    let shown = 0;
    rows.forEach((row, index) => {
      const visible = matchesWords(this._searchTexts[index], words);
      if (row.hidden === visible) {
        row.hidden = !visible;
      }
      if (visible) {
        shown++;
      }
    });
    const total = rows.length;
    const ready = this._details !== null;
    this._noMatches.hidden = !ready || total === 0 || shown > 0;
    if (!ready) {
      this._count.textContent = '';
    } else if (shown === total) {
      this._count.textContent = `${total}`;
    } else {
      this._count.textContent = `${shown} of ${total}`;
    }
    this._count.title = ready ? `${shown} of ${total} packages shown` : '';
  }

  private async _export(): Promise<void> {
    const env = this._env;
    if (!env || this._exporting) {
      return;
    }
    const mode = this._mode.value as ExportMode;
    const filename = exportFilename(env.name, mode);
    // aria-disabled, not disabled: the button keeps the keyboard focus.
    this._exporting = true;
    this._exportButton.setAttribute('aria-disabled', 'true');
    this._setMessage(`Exporting "${env.name}"…`);
    try {
      const text = await this._model.environmentSpec(env.name, mode);
      downloadText(
        text,
        filename,
        mode === 'explicit' ? 'text/plain' : 'text/yaml'
      );
      this._setMessage(`Downloaded ${filename}.`);
    } catch (reason) {
      this._setMessage(
        `Could not export "${env.name}": ${Private.message(reason)}`,
        true
      );
    } finally {
      this._exporting = false;
      this._exportButton.removeAttribute('aria-disabled');
    }
  }

  private async _open(command: string): Promise<void> {
    const env = this._env;
    const kernelName = this._kernel.value || env?.kernels[0];
    if (!env || !kernelName || !this._commands) {
      return;
    }
    const args =
      command === KernelCommands.newConsole
        ? { kernelPreference: { name: kernelName } }
        : { kernelName };
    try {
      await this._commands.execute(command, args);
      this._setMessage('');
    } catch (reason) {
      const what =
        command === KernelCommands.newConsole ? 'a console' : 'a notebook';
      this._setMessage(
        `Could not open ${what} on ${kernelName}: ${Private.message(reason)}`,
        true
      );
    }
  }

  private _copyPrefix(): void {
    const env = this._env;
    if (!env) {
      return;
    }
    try {
      Clipboard.copyToSystem(env.prefix);
      this._setMessage('Prefix copied to the clipboard.');
    } catch (reason) {
      this._setMessage(
        `Could not copy the prefix: ${Private.message(reason)}`,
        true
      );
    }
  }

  private _setMessage(text: string, error = false): void {
    this._message.textContent = text;
    this._message.hidden = text === '';
    this._message.classList.toggle('jp-mod-error', error);
  }

  private _onKeyDown = (event: KeyboardEvent): void => {
    if (event.key !== 'Escape' || event.defaultPrevented) {
      return;
    }
    // Escape in a search box with text clears it first (the browser does).
    if (event.target === this._search && this._search.value) {
      return;
    }
    event.preventDefault();
    event.stopPropagation();
    this._onClose();
  };

  private _model: IReproModel;
  private _commands: CommandRegistry | null;
  private _onClose: () => void;
  private _env: IEnvironmentSummary | null = null;
  private _details: IEnvironmentDetails | null = null;
  private _cache = new Map<string, IEnvironmentDetails>();
  private _phase: StatusPhase = 'idle';
  private _request = 0;
  private _pending: Promise<void> | null = null;
  private _exporting = false;
  private _modeChosen = false;
  private _isDisposed = false;
  private _title = document.createElement('h3');
  private _badges = document.createElement('span');
  private _summary = document.createElement('dl');
  private _channels = document.createElement('span');
  private _mode = document.createElement('select');
  private _exportButton!: HTMLButtonElement;
  private _copy!: HTMLButtonElement;
  private _kernel = document.createElement('select');
  private _openNotebook!: HTMLButtonElement;
  private _openConsole!: HTMLButtonElement;
  private _noKernel = document.createElement('p');
  private _message = document.createElement('p');
  private _count = document.createElement('span');
  private _search = document.createElement('input');
  private _loading = document.createElement('p');
  private _error = document.createElement('div');
  private _errorText = document.createElement('p');
  private _noMatches = document.createElement('p');
  private _condaTitle = document.createElement('h5');
  private _pipTitle = document.createElement('h5');
  private _condaTable = document.createElement('table');
  private _pipTable = document.createElement('table');
  private _condaRows: HTMLTableRowElement[] = [];
  private _pipRows: HTMLTableRowElement[] = [];
  private _searchTexts: string[] = [];
}

/**
 * A namespace for `EnvironmentDetails` statics.
 */
export namespace EnvironmentDetails {
  /**
   * Options of the `EnvironmentDetails` constructor.
   */
  export interface IOptions {
    /**
     * The model that fetches packages and specs.
     */
    model: IReproModel;

    /**
     * The commands that open notebooks and consoles; those buttons are
     * hidden without.
     */
    commands?: CommandRegistry | null;

    /**
     * Called when the user leaves the view (Back, Escape).
     */
    onClose: () => void;
  }
}

/**
 * Module-private helpers.
 */
namespace Private {
  let counter = 0;

  /**
   * A number unique in this page, for element ids.
   */
  export function nextId(): number {
    return ++counter;
  }

  /**
   * The message of a rejection.
   */
  export function message(reason: unknown): string {
    return reason instanceof Error ? reason.message : String(reason);
  }

  /**
   * A `<dt>`/`<dd>` pair.
   */
  export function row(label: string, value: HTMLElement): HTMLElement[] {
    const dd = el('dd', 'jp-ReproPanel-value');
    dd.append(value);
    return [el('dt', 'jp-ReproPanel-label', label), dd];
  }

  function packageRow(
    pkg: { name: string; version: string },
    source: string,
    nameNote: string | null,
    versionNote: string | null
  ): string {
    const name = escapeHtml(pkg.name);
    const note = (text: string | null, kind: string) =>
      text
        ? `<span class="jp-ReproEnvDetails-package${kind}">${escapeHtml(text)}</span>`
        : '';
    return (
      `<tr class="jp-ReproEnvDetails-package" data-testid="${DetailsTestIds.packageRow}" ` +
      `data-package-name="${name}" data-package-source="${source}">` +
      `<td class="jp-ReproEnvDetails-packageName">${name}${note(nameNote, 'Channel')}</td>` +
      `<td class="jp-ReproEnvDetails-packageVersion">${escapeHtml(pkg.version)}` +
      `${note(versionNote, 'Build')}</td></tr>`
    );
  }

  /**
   * The HTML of the conda packages table (every value escaped): the channel
   * under the name, the build under the version.
   */
  export function condaTableHtml(packages: readonly ICondaPackage[]): string {
    const rows = packages.map(pkg =>
      packageRow(pkg, 'conda', pkg.channel, pkg.build || null)
    );
    return (
      '<thead><tr><th scope="col">Name, channel</th>' +
      '<th scope="col">Version, build</th></tr></thead>' +
      `<tbody>${rows.join('')}</tbody>`
    );
  }

  /**
   * The HTML of the pip packages table (every value escaped).
   */
  export function pipTableHtml(packages: readonly IPipPackage[]): string {
    const rows = packages.map(pkg => packageRow(pkg, 'pip', null, null));
    return (
      '<thead><tr><th scope="col">Name</th><th scope="col">Version</th></tr></thead>' +
      `<tbody>${rows.join('')}</tbody>`
    );
  }
}
