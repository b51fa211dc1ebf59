import { refreshIcon } from '@jupyterlab/ui-components';
import { CommandRegistry } from '@lumino/commands';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { environmentsIcon } from '../icons';
import { filterWords, matchesWords, searchText } from '../model';
import {
  CommandIDs,
  DriftStatus,
  ENVIRONMENTS_PANEL_ID,
  IDrift,
  IEnvironmentSummary,
  IReproModel
} from '../tokens';
import { button, el, escapeHtml, replaceChildren } from './dom';
import { EnvironmentDetails, environmentBadges } from './environmentDetails';
import {
  IListFilter,
  isEmptyFilter,
  KernelFilter,
  kindChoices,
  matchesKindAndKernel,
  sortEnvironments
} from './environmentList';
import { RestoreView } from './restoreView';
import { VerifyView } from './verifyView';

/**
 * The `data-testid` values of the Environments panel. Browser tests depend
 * on them: change them only together with the tests.
 */
export namespace TestIds {
  export const panel = 'repro-panel';
  export const serverVersion = 'repro-server-version';
  export const frontendVersion = 'repro-frontend-version';
  export const engine = 'repro-engine';
  export const clis = 'repro-clis';
  export const versionMismatch = 'repro-version-mismatch';
  export const statusError = 'repro-status-error';
  export const refresh = 'repro-refresh';
  export const retry = 'repro-retry';
  export const loading = 'repro-loading';
  export const activeNotebook = 'repro-active-notebook';
  export const activeEnvironment = 'repro-active-environment';
  export const driftBadge = 'repro-drift-badge';
  export const driftDetails = 'repro-drift-details';
  export const exportButton = 'repro-export-button';
  export const restoreButton = 'repro-restore-button';
  export const verifyButton = 'repro-verify-button';
  export const envFilter = 'repro-env-filter';
  export const envCount = 'repro-env-count';
  export const envList = 'repro-env-list';
  export const envItem = 'repro-env-item';
  export const envError = 'repro-env-error';
  export const envKindFilter = 'repro-env-kind-filter';
  export const envKernelFilter = 'repro-env-kernel-filter';
  export const envNoMatches = 'repro-env-no-matches';
  export const envClearFilters = 'repro-env-clear-filters';
  export const envSharedBadge = 'repro-env-shared-badge';
}

/**
 * The choices of the kernel filter.
 */
const KERNEL_FILTER_CHOICES: readonly { value: KernelFilter; label: string }[] =
  [
    { value: 'any', label: 'Any kernel' },
    { value: 'with-kernel', label: 'Has a kernel' },
    { value: 'no-kernel', label: 'No kernel' }
  ];

/**
 * Rows moved by Page Up / Page Down in the list.
 */
const PAGE_ROWS = 10;

/**
 * Names of the `performance` marks set by the panel, for browser tests that
 * time opening the panel until its environment list is rendered.
 */
export namespace PerformanceMarks {
  /**
   * Set each time the panel is about to be shown.
   */
  export const open = 'repro-panel-open';

  /**
   * Set each time the environment list has been (re)built in the DOM with
   * the server's answer, and when the panel is shown with an up-to-date
   * list.
   */
  export const listRendered = 'repro-list-rendered';
}

/**
 * Labels of the drift states.
 */
const DRIFT_LABELS: Record<DriftStatus, string> = {
  in_sync: 'In sync',
  drifted: 'Drifted',
  missing_environment: 'Environment missing',
  no_spec: 'No spec'
};

/**
 * The left-sidebar panel: server status, the active notebook's environment
 * and drift, restore progress, and the filterable list of environments
 * (base first, then by name; a listbox operated with the arrow keys, Enter
 * opening an environment's details in place of the list).
 *
 * It renders an `IReproModel` and runs commands; it does no fetching of its
 * own.
 */
export class EnvironmentsPanel extends Widget {
  constructor(options: EnvironmentsPanel.IOptions) {
    super();
    this.model = options.model;
    this._commands = options.commands ?? null;
    this.id = ENVIRONMENTS_PANEL_ID;
    this.addClass('jp-ReproPanel');
    this.node.dataset.testid = TestIds.panel;
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', 'Environments');
    this.title.icon = environmentsIcon;
    this.title.caption = 'Environments';

    this._refreshButton = button({
      label: 'Refresh',
      ariaLabel: 'Refresh the environments and the server status',
      testId: TestIds.refresh,
      className: 'jp-ReproPanel-refresh'
    });
    this._refreshButton.prepend(
      refreshIcon.element({
        tag: 'span',
        className: 'jp-ReproPanel-buttonIcon'
      })
    );
    this._refreshButton.addEventListener('click', () => {
      void this.model.refresh();
      void this.model.refreshActiveNotebook();
    });

    const header = el('div', 'jp-ReproPanel-header');
    const title = el('h2', 'jp-ReproPanel-title', 'Environments');
    header.append(title, this._refreshButton);

    this._loadingNode = el(
      'div',
      'jp-ReproPanel-loading',
      'Loading server status…'
    );
    this._loadingNode.dataset.testid = TestIds.loading;
    this._loadingNode.setAttribute('role', 'status');

    this._errorNode = el('div', 'jp-ReproPanel-message jp-mod-error');
    this._errorNode.dataset.testid = TestIds.statusError;
    this._errorNode.setAttribute('role', 'alert');
    this._errorText = el('p', 'jp-ReproPanel-messageText');
    const retryButton = button({
      label: 'Retry',
      ariaLabel: 'Retry loading the jupyter-repro server status',
      testId: TestIds.retry,
      className: 'jp-ReproPanel-retry'
    });
    retryButton.addEventListener('click', () => {
      // The error box goes away while loading: keep the keyboard focus on a
      // button that stays.
      this._refreshButton.focus();
      void this.model.refresh();
    });
    this._errorNode.append(
      el(
        'p',
        'jp-ReproPanel-messageTitle',
        'Could not load the jupyter-repro server status.'
      ),
      this._errorText,
      retryButton
    );

    this._mismatchNode = el('div', 'jp-ReproPanel-message jp-mod-warning');
    this._mismatchNode.dataset.testid = TestIds.versionMismatch;
    this._mismatchNode.setAttribute('role', 'alert');

    this._messages = el('div', 'jp-ReproPanel-messages');
    this._details = el('dl', 'jp-ReproPanel-details');
    const server = el('details', 'jp-ReproPanel-server');
    server.append(
      el('summary', 'jp-ReproPanel-sectionTitle', 'Server'),
      this._details
    );
    server.open = true;

    this._activeSection = this._buildActiveSection();
    this._restoreView = new RestoreView({
      model: this.model,
      onSwitchKernel: options.onSwitchKernel,
      canSwitchKernel: options.canSwitchKernel
    });
    this._verifyView = new VerifyView({
      model: this.model,
      ...options.verify
    });
    this._environmentsSection = this._buildEnvironmentsSection();

    const body = el('div', 'jp-ReproPanel-body');
    body.append(
      this._messages,
      this._activeSection,
      this._restoreView.node,
      this._verifyView.node,
      server,
      this._environmentsSection
    );
    this.node.append(header, body);

    this.model.stateChanged.connect(this._render, this);
    this.model.environmentsChanged.connect(this._onEnvironmentsChanged, this);
    this.model.activeNotebookChanged.connect(this._renderActive, this);
    this._render();
    this._renderActive();
  }

  /**
   * The model rendered by this panel.
   */
  readonly model: IReproModel;

  /**
   * How long the last build of the environment list took, in milliseconds.
   */
  get lastListRenderMs(): number {
    return this._lastListRenderMs;
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.model.stateChanged.disconnect(this._render, this);
    this.model.environmentsChanged.disconnect(
      this._onEnvironmentsChanged,
      this
    );
    this.model.activeNotebookChanged.disconnect(this._renderActive, this);
    this._restoreView.dispose();
    this._verifyView.dispose();
    this._detailsView?.dispose();
    super.dispose();
  }

  /**
   * Load the status and environments the first time the panel is shown;
   * build the list if it changed while hidden.
   */
  protected onBeforeShow(msg: Message): void {
    super.onBeforeShow(msg);
    Private.mark(PerformanceMarks.open);
    if (this.model.phase === 'idle') {
      void this.model.refresh();
    }
    if (this._listDirty) {
      this._renderList();
    } else if (this._list.dataset.rendered === 'true') {
      // Already up to date: shown as it is.
      Private.mark(PerformanceMarks.listRendered);
    }
  }

  private _buildActiveSection(): HTMLElement {
    const section = el('section', 'jp-ReproPanel-section jp-ReproActive');
    section.dataset.testid = TestIds.activeNotebook;
    section.setAttribute('aria-label', 'Active notebook');
    section.append(
      el('h3', 'jp-ReproPanel-sectionTitle', 'Active notebook'),
      this._activePath,
      this._activeEnv
    );
    this._activePath.className = 'jp-ReproActive-path';
    this._activeEnv.className = 'jp-ReproActive-env';
    this._activeEnv.dataset.testid = TestIds.activeEnvironment;

    this._driftBadge.className = 'jp-ReproDrift-badge';
    this._driftBadge.dataset.testid = TestIds.driftBadge;
    this._driftBadge.setAttribute('role', 'status');
    const driftRow = el('div', 'jp-ReproDrift-row');
    driftRow.append(
      el('span', 'jp-ReproDrift-label', 'Drift'),
      this._driftBadge
    );

    this._driftDetails.className = 'jp-ReproDrift-details';
    this._driftDetails.dataset.testid = TestIds.driftDetails;

    const exportButton = button({
      label: 'Export environment',
      ariaLabel: "Export the environment of the active notebook's kernel",
      testId: TestIds.exportButton,
      className: 'jp-ReproPanel-export'
    });
    exportButton.addEventListener('click', () => {
      this._execute(CommandIDs.exportEnvironment);
    });
    const restoreButton = button({
      label: 'Restore environment',
      ariaLabel: 'Restore the environment embedded in the active notebook',
      testId: TestIds.restoreButton,
      className: 'jp-ReproPanel-restore'
    });
    restoreButton.addEventListener('click', () => {
      this._execute(CommandIDs.restoreEnvironment);
    });
    const verifyButton = button({
      label: 'Verify reproduction',
      ariaLabel:
        'Run the active notebook on a kernel of its own and compare its outputs with those saved',
      testId: TestIds.verifyButton,
      className: 'jp-ReproPanel-verify'
    });
    verifyButton.addEventListener('click', () => {
      this._execute(CommandIDs.verify);
    });
    this._exportButton = exportButton;
    this._restoreButton = restoreButton;
    this._verifyButton = verifyButton;
    const actions = el('div', 'jp-ReproPanel-actions');
    actions.append(exportButton, restoreButton, verifyButton);

    section.append(driftRow, this._driftDetails, actions);
    return section;
  }

  private _buildEnvironmentsSection(): HTMLElement {
    const section = el('section', 'jp-ReproPanel-section jp-ReproEnvs');
    section.setAttribute('aria-label', 'Environments');
    const titleRow = el('div', 'jp-ReproEnvs-titleRow');
    titleRow.append(
      el('h3', 'jp-ReproPanel-sectionTitle', 'All environments'),
      this._count
    );
    this._count.className = 'jp-ReproEnvs-count';
    this._count.dataset.testid = TestIds.envCount;
    this._count.setAttribute('aria-live', 'polite');

    this._filterInput.className = 'jp-mod-styled jp-ReproEnvs-filter';
    this._filterInput.type = 'search';
    this._filterInput.placeholder = 'Filter by name, kind, Python, kernel…';
    this._filterInput.setAttribute('aria-label', 'Filter environments');
    this._filterInput.dataset.testid = TestIds.envFilter;
    this._filterInput.addEventListener('input', () => {
      this.model.setFilter(this._filterInput.value);
    });

    this._kindSelect.className = 'jp-ReproEnvs-select';
    this._kindSelect.dataset.testid = TestIds.envKindFilter;
    this._kindSelect.setAttribute('aria-label', 'Show environments of kind');
    this._kindSelect.title = 'Show environments of kind';
    this._fillKinds([]);
    this._kindSelect.addEventListener('change', () => this._applyFilter());

    this._kernelSelect.className = 'jp-ReproEnvs-select';
    this._kernelSelect.dataset.testid = TestIds.envKernelFilter;
    this._kernelSelect.setAttribute(
      'aria-label',
      'Show environments by kernel'
    );
    this._kernelSelect.title = 'Show environments by kernel';
    for (const choice of KERNEL_FILTER_CHOICES) {
      const option = el('option', '', choice.label);
      option.value = choice.value;
      this._kernelSelect.append(option);
    }
    this._kernelSelect.addEventListener('change', () => this._applyFilter());
    const filters = el('div', 'jp-ReproEnvs-filters');
    filters.append(this._kindSelect, this._kernelSelect);

    this._envError.className = 'jp-ReproPanel-message jp-mod-error';
    this._envError.dataset.testid = TestIds.envError;
    this._envError.setAttribute('role', 'alert');
    this._envError.hidden = true;

    this._noMatches.className = 'jp-ReproEnvs-noMatches';
    this._noMatches.dataset.testid = TestIds.envNoMatches;
    this._noMatches.setAttribute('role', 'status');
    this._noMatchesText.className = 'jp-ReproEnvs-noMatchesText';
    this._clearFilters = button({
      label: 'Clear filters',
      ariaLabel: 'Clear the filters and show every environment',
      testId: TestIds.envClearFilters,
      className: 'jp-ReproEnvs-clearFilters'
    });
    this._clearFilters.addEventListener('click', () => {
      this._clearAllFilters();
      this._filterInput.focus();
    });
    this._noMatches.append(this._noMatchesText, this._clearFilters);
    this._noMatches.hidden = true;

    this._list.className = 'jp-ReproEnvs-list';
    this._list.dataset.testid = TestIds.envList;
    this._list.setAttribute('role', 'listbox');
    this._list.setAttribute('aria-label', 'Environments');
    this._list.setAttribute(
      'aria-description',
      'Arrow keys move between environments; Enter opens the details.'
    );
    this._list.dataset.rendered = 'false';
    this._list.addEventListener('keydown', this._onListKeyDown);
    this._list.addEventListener('click', this._onListClick);
    this._list.addEventListener('focusin', this._onListFocusIn);

    this._listPart.className = 'jp-ReproEnvs-listPart';
    this._listPart.append(
      titleRow,
      this._filterInput,
      filters,
      this._envError,
      this._noMatches,
      this._list
    );
    section.append(this._listPart);
    return section;
  }

  private _execute(command: string): void {
    if (!this._commands) {
      return;
    }
    // Commands report their own errors; this only guards against a
    // rejection escaping the click handler.
    this._commands.execute(command).catch(reason => {
      console.error(`jupyter-repro: ${command} failed.`, reason);
    });
  }

  private _render(): void {
    const { model } = this;
    const status = model.status;

    this.node.setAttribute('aria-busy', model.isLoading ? 'true' : 'false');

    const messages: HTMLElement[] = [];
    if (model.isLoading) {
      messages.push(this._loadingNode);
    }
    if (model.error && !model.isLoading) {
      this._errorText.textContent = model.error.message;
      messages.push(this._errorNode);
    }
    if (status && model.versionMismatch) {
      if (this._mismatchShownFor !== status.version) {
        Private.fillMismatch(
          this._mismatchNode,
          model.frontendVersion,
          status.version
        );
        this._mismatchShownFor = status.version;
      }
      messages.push(this._mismatchNode);
    } else {
      this._mismatchShownFor = null;
    }
    replaceChildren(this._messages, messages);

    const rows: HTMLElement[] = [];
    rows.push(
      ...Private.row(
        'Frontend version',
        Private.code(model.frontendVersion, TestIds.frontendVersion)
      )
    );
    if (status) {
      rows.push(
        ...Private.row(
          'Server version',
          Private.code(status.version, TestIds.serverVersion)
        )
      );

      const engine = el('dd', 'jp-ReproPanel-value');
      const engineText = el(
        'span',
        'jp-ReproPanel-engine',
        [status.engine.name, status.engine.version].filter(Boolean).join(' ')
      );
      engineText.dataset.testid = TestIds.engine;
      engine.append(engineText);
      if (status.engine.embedded) {
        engine.append(' ', el('span', 'jp-ReproPanel-badge', 'embedded'));
      }
      rows.push(el('dt', 'jp-ReproPanel-label', 'Engine'), engine);

      rows.push(...Private.row('Conda tools', Private.clis(status.clis)));
    }
    replaceChildren(this._details, rows);
  }

  private _onEnvironmentsChanged(): void {
    const { model } = this;
    if (model.environmentsError && model.environmentsPhase === 'error') {
      this._envError.textContent = `Could not list the environments: ${model.environmentsError.message}`;
      this._envError.hidden = false;
    } else {
      this._envError.hidden = true;
    }
    this._list.setAttribute(
      'aria-busy',
      model.environmentsPhase === 'loading' ? 'true' : 'false'
    );
    if (this._filterInput.value !== model.filter) {
      this._filterInput.value = model.filter;
    }
    if (model.environments !== this._renderedEnvironments) {
      if (this.isVisible) {
        this._renderList();
      } else {
        this._listDirty = true;
      }
    } else {
      this._applyFilter();
    }
  }

  /**
   * Build every row in one pass as one HTML string: hundreds of rows in a
   * few milliseconds, where a widget per row would take far longer.
   */
  private _renderList(): void {
    const start = performance.now();
    const source = this.model.environments;
    const environments = sortEnvironments(source);
    // The row that had the focus gets it back in the new list.
    const hadFocus = this._list.contains(document.activeElement);
    const focusedName = this._sorted[this._focusIndex]?.name;
    const parts: string[] = [];
    for (let i = 0; i < environments.length; i++) {
      parts.push(Private.rowHtml(environments[i], i));
    }
    this._list.innerHTML = parts.join('');
    this._rows = Array.from(this._list.children) as HTMLElement[];
    this._sorted = environments;
    this._searchTexts = environments.map(searchText);
    this._renderedEnvironments = source;
    this._listDirty = false;
    this._activeRow = null;
    this._appliedFilter = null;
    this._focusIndex = -1;
    this._fillKinds(environments);
    const keep = environments.findIndex(env => env.name === focusedName);
    if (keep >= 0) {
      this._setFocusIndex(keep);
    }
    this._applyFilter();
    this._markActiveRow();
    if (hadFocus && this._focusIndex >= 0) {
      this._rows[this._focusIndex].focus();
    }
    this._lastListRenderMs = performance.now() - start;
    this._list.dataset.renderMs = this._lastListRenderMs.toFixed(1);
    this._list.dataset.envCount = String(environments.length);
    // "rendered" only once the server answered: the empty list shown while the
    // first request is loading is not the list.
    const phase = this.model.environmentsPhase;
    const rendered = phase === 'ready' || phase === 'error';
    this._list.dataset.rendered = rendered ? 'true' : 'false';
    if (rendered) {
      Private.mark(PerformanceMarks.listRendered);
    }
    if (this._detailsView && !this._detailsView.node.hidden) {
      const name = this._detailsView.environment?.name;
      this._detailsView.reset(
        environments.find(env => env.name === name) ?? null
      );
    } else {
      this._detailsView?.reset(null);
    }
  }

  /**
   * The filters as they are set in the panel.
   */
  get listFilter(): IListFilter {
    return {
      text: this.model.filter,
      kind: this._kindSelect.value,
      kernel: this._kernelSelect.value as KernelFilter
    };
  }

  /**
   * The names of the environments the list shows, in order.
   */
  get visibleNames(): string[] {
    return this._sorted
      .filter((_, i) => !this._rows[i].hidden)
      .map(env => env.name);
  }

  /**
   * The details view, once an environment was opened.
   */
  get detailsView(): EnvironmentDetails | null {
    return this._detailsView;
  }

  /**
   * Show the details of the environment called `name`, in place of the
   * list; `false` if no such environment is listed.
   */
  openDetails(name: string): boolean {
    const index = this._sorted.findIndex(env => env.name === name);
    if (index < 0) {
      return false;
    }
    this._openDetailsAt(index);
    return true;
  }

  /**
   * Go back from the details to the list, the focus on the row shown.
   */
  closeDetails(): void {
    if (!this._detailsView || this._detailsView.node.hidden) {
      return;
    }
    const name = this._detailsView.environment?.name;
    this._detailsView.hide();
    this._listPart.hidden = false;
    const index = this._sorted.findIndex(env => env.name === name);
    if (index >= 0 && !this._rows[index].hidden) {
      this._setFocusIndex(index);
    }
    this._rows[this._focusIndex]?.focus();
  }

  private _openDetailsAt(index: number): void {
    const env = this._sorted[index];
    if (!env) {
      return;
    }
    if (!this._detailsView) {
      // Built the first time it is needed: the list opens without it.
      this._detailsView = new EnvironmentDetails({
        model: this.model,
        commands: this._commands,
        onClose: () => this.closeDetails()
      });
      this._environmentsSection.append(this._detailsView.node);
    }
    if (!this._rows[index].hidden) {
      this._setFocusIndex(index);
    }
    this._listPart.hidden = true;
    this._detailsView.show(env);
    this._detailsView.focus();
    // The panel's body scrolls: the view starts at its top, not where the
    // list ended.
    this._detailsView.node.scrollIntoView?.({ block: 'start' });
  }

  private _fillKinds(environments: readonly IEnvironmentSummary[]): void {
    const current = this._kindSelect.value;
    const kinds = kindChoices(environments);
    if (current && !kinds.includes(current)) {
      kinds.push(current);
    }
    const key = kinds.join('\n');
    if (key === this._kindsKey) {
      return;
    }
    this._kindsKey = key;
    const all = el('option', '', 'All kinds');
    all.value = '';
    this._kindSelect.replaceChildren(
      all,
      ...kinds.map(kind => {
        const option = el('option', '', kind);
        option.value = kind;
        return option;
      })
    );
    this._kindSelect.value = current;
  }

  private _clearAllFilters(): void {
    this._kindSelect.value = '';
    this._kernelSelect.value = 'any';
    this._filterInput.value = '';
    // setFilter re-applies the filter; it does nothing when the text was empty.
    this.model.setFilter('');
    this._applyFilter();
  }

  private _applyFilter(): void {
    const filter = this.listFilter;
    const key = `${filter.text}\u0000${filter.kind}\u0000${filter.kernel}`;
    const total = this._rows.length;
    if (key !== this._appliedFilter) {
      const words = filterWords(filter.text);
      let shown = 0;
      for (let i = 0; i < total; i++) {
        const visible =
          matchesKindAndKernel(this._sorted[i], filter) &&
          matchesWords(this._searchTexts[i], words);
        const row = this._rows[i];
        if (row.hidden === visible) {
          row.hidden = !visible;
        }
        if (visible) {
          shown++;
        }
      }
      this._appliedFilter = key;
      this._shown = shown;
      if (this._focusIndex < 0 || this._rows[this._focusIndex].hidden) {
        this._setFocusIndex(this._step(-1, 1));
      }
    }
    const phase = this.model.environmentsPhase;
    if (phase === 'loading' && total === 0) {
      this._count.textContent = 'loading…';
    } else if (this._shown === total) {
      this._count.textContent = `${total}`;
    } else {
      this._count.textContent = `${this._shown} of ${total}`;
    }
    this._count.title = `${this._shown} of ${total} environments shown`;

    const listed = phase === 'ready' || total > 0;
    if (listed && total === 0) {
      this._noMatchesText.textContent = 'No environments were found.';
      this._clearFilters.hidden = true;
      this._noMatches.hidden = false;
    } else if (total > 0 && this._shown === 0) {
      this._noMatchesText.textContent = isEmptyFilter(filter)
        ? 'No environments to show.'
        : 'No environments match the filters.';
      this._clearFilters.hidden = false;
      this._noMatches.hidden = false;
    } else {
      this._noMatches.hidden = true;
    }
  }

  /**
   * The index of the visible row `count` rows away from `from` in
   * `direction` (stopping at the last visible one), or `from` itself; `-1`
   * when no row is visible.
   */
  private _step(from: number, direction: 1 | -1, count = 1): number {
    let found = -1;
    let left = count;
    for (
      let i = from + direction;
      i >= 0 && i < this._rows.length && left > 0;
      i += direction
    ) {
      if (!this._rows[i].hidden) {
        found = i;
        left--;
      }
    }
    if (found < 0 && from >= 0 && from < this._rows.length) {
      return this._rows[from].hidden ? -1 : from;
    }
    return found;
  }

  /**
   * Make row `index` the one row reachable with Tab (roving tabindex) and
   * the selected option.
   */
  private _setFocusIndex(index: number): void {
    if (index === this._focusIndex) {
      return;
    }
    const old = this._rows[this._focusIndex];
    if (old) {
      old.tabIndex = -1;
      old.setAttribute('aria-selected', 'false');
    }
    const row = this._rows[index];
    if (row) {
      row.tabIndex = 0;
      row.setAttribute('aria-selected', 'true');
    }
    this._focusIndex = row ? index : -1;
  }

  private _rowIndexOf(target: EventTarget | null): number {
    const row =
      target instanceof Element
        ? (target.closest(`[data-testid="${TestIds.envItem}"]`) as HTMLElement)
        : null;
    if (!row || row.parentElement !== this._list) {
      return -1;
    }
    return Number(row.dataset.index);
  }

  private _onListFocusIn = (event: FocusEvent): void => {
    const index = this._rowIndexOf(event.target);
    if (index >= 0) {
      this._setFocusIndex(index);
    }
  };

  private _onListClick = (event: MouseEvent): void => {
    const index = this._rowIndexOf(event.target);
    if (index >= 0) {
      this._openDetailsAt(index);
    }
  };

  private _onListKeyDown = (event: KeyboardEvent): void => {
    if (event.altKey || event.ctrlKey || event.metaKey) {
      return;
    }
    const target = this._rowIndexOf(event.target);
    const current = target >= 0 ? target : this._focusIndex;
    let next: number;
    switch (event.key) {
      case 'ArrowDown':
        next = this._step(current, 1);
        break;
      case 'ArrowUp':
        next = this._step(current, -1);
        break;
      case 'PageDown':
        next = this._step(current, 1, PAGE_ROWS);
        break;
      case 'PageUp':
        next = this._step(current, -1, PAGE_ROWS);
        break;
      case 'Home':
        next = this._step(-1, 1);
        break;
      case 'End':
        next = this._step(this._rows.length, -1);
        break;
      case 'Enter':
      case ' ':
        event.preventDefault();
        event.stopPropagation();
        if (current >= 0) {
          this._openDetailsAt(current);
        }
        return;
      default:
        return;
    }
    event.preventDefault();
    event.stopPropagation();
    if (next >= 0) {
      this._setFocusIndex(next);
      this._rows[next].focus();
    }
  };

  private _markActiveRow(): void {
    const active = this.model.activeEnvironment;
    const index = active ? this._sorted.indexOf(active) : -1;
    const row = index >= 0 ? this._rows[index] : null;
    if (row === this._activeRow) {
      return;
    }
    if (this._activeRow) {
      this._activeRow.classList.remove('jp-mod-active');
      this._activeRow.removeAttribute('aria-current');
    }
    if (row) {
      row.classList.add('jp-mod-active');
      row.setAttribute('aria-current', 'true');
    }
    this._activeRow = row;
  }

  private _renderActive(): void {
    const { model } = this;
    const notebook = model.activeNotebook;
    this._exportButton.disabled = notebook === null;
    this._restoreButton.disabled = notebook === null;
    this._verifyButton.disabled = notebook === null;
    this._markActiveRow();

    if (notebook === null) {
      this._activePath.textContent = 'No notebook is active.';
      this._activePath.title = '';
      this._activeEnv.textContent = '';
      this._setBadge('none', 'No notebook');
      this._driftDetails.hidden = true;
      return;
    }
    this._activePath.textContent = notebook.path.split('/').pop() ?? '';
    this._activePath.title = notebook.path;
    const env = model.activeEnvironment;
    if (env) {
      this._activeEnv.textContent = `Environment: ${env.name}`;
      this._activeEnv.title = env.prefix;
    } else if (notebook.kernelName) {
      this._activeEnv.textContent = `Kernel: ${notebook.kernelName}`;
      this._activeEnv.title = '';
    } else {
      this._activeEnv.textContent = 'No kernel chosen.';
      this._activeEnv.title = '';
    }

    const drift = model.drift;
    if (!notebook.kernelName) {
      // A new notebook before its kernel starts: nothing to compare, and
      // nothing missing either.
      this._setBadge('none', 'No kernel');
      this._driftBadge.dataset.driftStatus = 'no_kernel';
      this._driftBadge.title = 'Choose a kernel to compare its environment.';
    } else if (model.driftPhase === 'loading' && drift === null) {
      this._setBadge('loading', 'Checking…');
    } else if (drift) {
      this._setBadge(drift.status, DRIFT_LABELS[drift.status] ?? drift.status);
    } else if (model.driftError) {
      this._setBadge('error', 'Unknown');
      this._driftBadge.title = model.driftError.message;
    } else {
      this._setBadge('none', '—');
    }
    Private.fillDriftDetails(this._driftDetails, drift, model.driftError);
  }

  private _setBadge(status: string, label: string): void {
    this._driftBadge.dataset.driftStatus = status;
    this._driftBadge.textContent = label;
    this._driftBadge.title = label;
    this._driftBadge.className = `jp-ReproDrift-badge jp-mod-${status}`;
  }

  private _commands: CommandRegistry | null;
  private _refreshButton: HTMLButtonElement;
  private _exportButton!: HTMLButtonElement;
  private _restoreButton!: HTMLButtonElement;
  private _verifyButton!: HTMLButtonElement;
  private _loadingNode: HTMLElement;
  private _errorNode: HTMLElement;
  private _errorText: HTMLElement;
  private _mismatchNode: HTMLElement;
  private _messages: HTMLElement;
  private _details: HTMLElement;
  private _mismatchShownFor: string | null = null;
  private _activeSection: HTMLElement;
  private _activePath = document.createElement('p');
  private _activeEnv = document.createElement('p');
  private _driftBadge = document.createElement('span');
  private _driftDetails = document.createElement('details');
  private _restoreView: RestoreView;
  private _verifyView: VerifyView;
  private _environmentsSection: HTMLElement;
  private _filterInput = document.createElement('input');
  private _kindSelect = document.createElement('select');
  private _kindsKey = '';
  private _kernelSelect = document.createElement('select');
  private _count = document.createElement('span');
  private _envError = document.createElement('div');
  private _noMatches = document.createElement('div');
  private _noMatchesText = document.createElement('p');
  private _clearFilters!: HTMLButtonElement;
  private _listPart = document.createElement('div');
  private _list = document.createElement('ul');
  private _rows: HTMLElement[] = [];
  private _sorted: IEnvironmentSummary[] = [];
  private _focusIndex = -1;
  private _detailsView: EnvironmentDetails | null = null;
  private _searchTexts: string[] = [];
  private _renderedEnvironments: readonly IEnvironmentSummary[] = [];
  private _listDirty = true;
  private _appliedFilter: string | null = null;
  private _shown = 0;
  private _activeRow: HTMLElement | null = null;
  private _lastListRenderMs = 0;
}

/**
 * A namespace for `EnvironmentsPanel` statics.
 */
export namespace EnvironmentsPanel {
  /**
   * Options of the `EnvironmentsPanel` constructor.
   */
  export interface IOptions {
    /**
     * The model to render.
     */
    model: IReproModel;

    /**
     * The commands its buttons run (export, restore); buttons do nothing
     * without.
     */
    commands?: CommandRegistry;

    /**
     * Switch a notebook's kernel to the environment a restore created.
     */
    onSwitchKernel?: RestoreView.IOptions['onSwitchKernel'];

    /**
     * Whether the switch-kernel button is offered for a finished restore.
     */
    canSwitchKernel?: RestoreView.IOptions['canSwitchKernel'];

    /**
     * What the verification view does on a jump to a cell, on "Record
     * verification" and on dismiss.
     */
    verify?: Omit<VerifyView.IOptions, 'model'>;
  }
}

/**
 * Module-private helpers.
 */
namespace Private {
  /**
   * Set a `performance` mark, where the browser supports it.
   */
  export function mark(name: string): void {
    if (typeof performance !== 'undefined' && performance.mark) {
      performance.mark(name);
    }
  }

  /**
   * The HTML of one environment row (every value escaped).
   */
  export function rowHtml(env: IEnvironmentSummary, index: number): string {
    const name = escapeHtml(env.name);
    const badges = environmentBadges(env).map(badge =>
      badge.shared
        ? `<span class="jp-ReproPanel-badge jp-mod-shared" ` +
          `data-testid="${TestIds.envSharedBadge}" ` +
          `aria-label="shared, read-only" title="${escapeHtml(badge.title ?? '')}">` +
          `${badge.label}</span>`
        : `<span class="jp-ReproPanel-badge">${badge.label}</span>`
    );
    const python = env.python_version
      ? `Python ${escapeHtml(env.python_version)}`
      : 'no Python';
    const kernels = env.kernels.length
      ? env.kernels.map(escapeHtml).join(', ')
      : 'no kernel';
    return (
      `<li class="jp-ReproEnv" data-testid="${TestIds.envItem}" role="option" ` +
      `tabindex="-1" aria-selected="false" data-index="${index}" ` +
      `data-env-name="${name}" title="${escapeHtml(env.prefix)}">` +
      `<div class="jp-ReproEnv-head"><span class="jp-ReproEnv-name">${name}</span>` +
      `${badges.join('')}<span class="jp-ReproEnv-current">notebook</span></div>` +
      `<div class="jp-ReproEnv-meta"><span class="jp-ReproEnv-kind">${escapeHtml(env.kind)}</span>` +
      `<span class="jp-ReproEnv-python">${python}</span></div>` +
      `<div class="jp-ReproEnv-kernels">${kernels}</div></li>`
    );
  }

  /**
   * Fill the drift details: packages added, removed and changed, or why
   * there is nothing to compare.
   */
  export function fillDriftDetails(
    node: HTMLDetailsElement,
    drift: IDrift | null,
    error: { message: string } | null
  ): void {
    const children: HTMLElement[] = [];
    if (drift === null) {
      if (error) {
        children.push(
          el('summary', 'jp-ReproDrift-summary', 'Drift unknown'),
          el('p', 'jp-ReproDrift-message', error.message)
        );
      }
    } else if (drift.status === 'drifted') {
      const counts = [
        `${drift.added.length} added`,
        `${drift.removed.length} removed`,
        `${drift.changed.length} changed`
      ].join(', ');
      children.push(el('summary', 'jp-ReproDrift-summary', counts));
      children.push(
        ...list('Added to the environment', drift.added, 'added'),
        ...list('Missing from the environment', drift.removed, 'removed'),
        ...list(
          'Not satisfied by the installed version',
          drift.changed.map(
            c => `${c.spec || c.name}: ${c.installed_version} installed`
          ),
          'changed'
        )
      );
      if (drift.spec) {
        const where =
          drift.spec.source === 'embedded'
            ? 'the spec embedded in the notebook'
            : drift.spec.path;
        children.push(
          el('p', 'jp-ReproDrift-message', `Compared with ${where}.`)
        );
      }
    } else if (drift.message) {
      children.push(
        el('summary', 'jp-ReproDrift-summary', 'Why'),
        el('p', 'jp-ReproDrift-message', drift.message)
      );
    }
    node.hidden = children.length === 0;
    node.dataset.driftStatus = drift?.status ?? 'unknown';
    node.replaceChildren(...children);
  }

  function list(title: string, items: string[], kind: string): HTMLElement[] {
    if (items.length === 0) {
      return [];
    }
    const ul = el('ul', `jp-ReproDrift-list jp-mod-${kind}`);
    ul.setAttribute('aria-label', title);
    for (const item of items) {
      ul.append(el('li', 'jp-ReproDrift-item', item));
    }
    return [el('p', 'jp-ReproDrift-listTitle', title), ul];
  }

  /**
   * A `<dt>`/`<dd>` pair.
   */
  export function row(label: string, value: HTMLElement): HTMLElement[] {
    const dd = el('dd', 'jp-ReproPanel-value');
    dd.append(value);
    return [el('dt', 'jp-ReproPanel-label', label), dd];
  }

  /**
   * A `<code>` element whose text is exactly `text`.
   */
  export function code(text: string, testId: string): HTMLElement {
    const node = el('code', 'jp-ReproPanel-code', text);
    node.dataset.testid = testId;
    return node;
  }

  /**
   * The list of CLIs found, or "none found".
   */
  export function clis(clis: Record<string, string | null>): HTMLElement {
    const found = Object.entries(clis).filter(
      (entry): entry is [string, string] => typeof entry[1] === 'string'
    );
    if (found.length === 0) {
      const none = el('span', 'jp-ReproPanel-none', 'none found');
      none.dataset.testid = TestIds.clis;
      return none;
    }
    const list = el('ul', 'jp-ReproPanel-clis');
    list.dataset.testid = TestIds.clis;
    for (const [name, path] of found) {
      const item = el('li', 'jp-ReproPanel-cli');
      item.append(
        el('span', 'jp-ReproPanel-cliName', name),
        ' ',
        el('code', 'jp-ReproPanel-cliPath', path)
      );
      item.title = path;
      list.append(item);
    }
    return list;
  }

  /**
   * Fill the version-mismatch warning.
   */
  export function fillMismatch(
    node: HTMLElement,
    frontendVersion: string,
    serverVersion: string
  ): void {
    const text = el('p', 'jp-ReproPanel-messageText');
    text.append(
      'The jupyter-repro frontend (',
      el('code', 'jp-ReproPanel-code', frontendVersion),
      ') and server extension (',
      el('code', 'jp-ReproPanel-code', serverVersion),
      ') versions differ. Reinstall jupyter-repro (or rebuild the ' +
        'JupyterLab extension), restart the Jupyter server, then reload ' +
        'this page.'
    );
    node.replaceChildren(
      el('p', 'jp-ReproPanel-messageTitle', 'Version mismatch'),
      text
    );
  }
}
