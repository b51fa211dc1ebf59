import { Dialog, Notification } from '@jupyterlab/apputils';
import { ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { ReproClient } from '../client';
import { toReproError } from '../jobs';
import { IGitInstallResult, IGitStatus, IReproError } from '../tokens';
import { el } from './dom';

/**
 * The `data-testid` of the git status-bar item and of its dialog's button.
 */
export namespace GitTestIds {
  export const item = 'repro-git-status';
  export const installConfirm = 'repro-git-install-confirm';
}

/**
 * The git set-up of the active notebook's repository, as the server says.
 */
export class GitStatusModel {
  constructor(client: ReproClient) {
    this._client = client;
  }

  /**
   * The notebook followed, `null` when none is active.
   */
  get path(): string | null {
    return this._path;
  }

  /**
   * The last status received for `path`, `null` while unknown.
   */
  get status(): IGitStatus | null {
    return this._status;
  }

  /**
   * The error of the last request, `null` when it worked.
   */
  get error(): IReproError | null {
    return this._error;
  }

  /**
   * Whether a request is in flight.
   */
  get isLoading(): boolean {
    return this._pending > 0;
  }

  /**
   * Emitted when `path`, `status`, `error` or `isLoading` change.
   */
  get changed(): ISignal<GitStatusModel, void> {
    return this._changed;
  }

  /**
   * Follow another notebook (`null`: none) and fetch its status. Never
   * rejects.
   */
  setPath(path: string | null): Promise<void> {
    if (path === this._path) {
      return Promise.resolve();
    }
    this._path = path;
    this._status = null;
    this._error = null;
    return this.refresh();
  }

  /**
   * Fetch the status of the followed notebook again. Never rejects.
   */
  async refresh(): Promise<void> {
    const path = this._path;
    const request = ++this._request;
    if (path === null) {
      this._changed.emit();
      return;
    }
    this._pending++;
    this._changed.emit();
    let status: IGitStatus | null = null;
    let error: IReproError | null = null;
    try {
      status = await this._client.gitStatus(path);
    } catch (reason) {
      error = toReproError(reason);
    }
    this._pending--;
    if (request === this._request) {
      this._status = status;
      this._error = error;
    }
    this._changed.emit();
  }

  /**
   * Install the filter into the followed notebook's repository; the
   * server's answer (the new status is kept).
   *
   * @throws {ReproRequestError} with the server's message
   */
  async install(): Promise<IGitInstallResult> {
    const path = this._path;
    if (path === null) {
      throw new Error('No notebook is active.');
    }
    const result = await this._client.installGitFilter(path);
    if (path === this._path) {
      ++this._request; // an older status request must not overwrite this
      this._status = result;
      this._error = null;
      this._changed.emit();
    }
    return result;
  }

  private _client: ReproClient;
  private _path: string | null = null;
  private _status: IGitStatus | null = null;
  private _error: IReproError | null = null;
  private _request = 0;
  private _pending = 0;
  private _changed = new Signal<GitStatusModel, void>(this);
}

/**
 * The text and tooltip of the git item for a status.
 */
export function describeGitStatus(
  status: IGitStatus | null,
  error: IReproError | null
): { state: string; label: string; title: string } {
  if (error) {
    return {
      state: 'unknown',
      label: 'Git filter: ?',
      title: `Git set-up unknown: ${error.message}`
    };
  }
  if (status === null) {
    return {
      state: 'unknown',
      label: 'Git filter: …',
      title: 'Reading the git set-up…'
    };
  }
  if (status.repository === null) {
    return {
      state: 'none',
      label: '',
      title: status.details.message ?? 'Not in a git repository.'
    };
  }
  const where =
    status.repository === '.'
      ? 'the repository at the server root'
      : `repository ${status.repository}`;
  if (status.installed) {
    return {
      state: 'installed',
      label: 'Git filter: on',
      title:
        `git strips this notebook's outputs as it is committed (${where}). ` +
        'Click for details.'
    };
  }
  const nbstripout = status.nbstripout
    ? ` nbstripout is set up (${(status.details.nbstripout ?? []).join(', ')}).`
    : '';
  return {
    state: 'not-installed',
    label: 'Git filter: off',
    title:
      `The jupyter-repro git filter is not installed for ${where}: ` +
      `commits keep outputs unless another filter strips them.${nbstripout} ` +
      'Click to install it.'
  };
}

/**
 * The status-bar item saying whether git strips the active notebook's
 * outputs on commit (the jupyter-repro filter); clicking it runs `onClick`
 * (the install command). Hidden when the notebook is in no repository.
 */
export class GitStatusItem extends Widget {
  constructor(options: GitStatusItem.IOptions) {
    super();
    this._model = options.model;
    this.addClass('jp-ReproGitStatus');
    this._button = el('button', 'jp-ReproGitStatus-button');
    this._button.type = 'button';
    this._button.dataset.testid = GitTestIds.item;
    this._button.addEventListener('click', () => options.onClick());
    this.node.append(this._button);
    this._model.changed.connect(this._render, this);
    this._render();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._model.changed.disconnect(this._render, this);
    super.dispose();
  }

  private _render(): void {
    const { state, label, title } = describeGitStatus(
      this._model.status,
      this._model.error
    );
    this._button.dataset.gitState = state;
    this._button.textContent = label;
    this._button.title = title;
    this._button.setAttribute('aria-label', title);
    this._button.classList.toggle('jp-mod-installed', state === 'installed');
    this._button.classList.toggle(
      'jp-mod-notInstalled',
      state === 'not-installed'
    );
    this.node.hidden = state === 'none' || this._model.path === null;
  }

  private _model: GitStatusModel;
  private _button: HTMLButtonElement;
}

/**
 * A namespace for `GitStatusItem` statics.
 */
export namespace GitStatusItem {
  /**
   * Options of the `GitStatusItem` constructor.
   */
  export interface IOptions {
    /**
     * The git status of the active notebook.
     */
    model: GitStatusModel;

    /**
     * Called on click.
     */
    onClick: () => void;
  }
}

/**
 * The install command: confirm, install, say what happened. Shows the
 * set-up instead when the filter is installed already.
 *
 * @throws {ReproRequestError} with the server's message when the install
 *   fails
 */
export async function installGitFilter(model: GitStatusModel): Promise<void> {
  if (model.path === null) {
    throw new Error('Open a notebook in a git repository first.');
  }
  if (model.status === null) {
    await model.refresh();
  }
  const status = model.status;
  if (status === null) {
    throw new Error(model.error?.message ?? 'The git set-up is unknown.');
  }
  if (status.repository === null) {
    throw new Error(
      status.details.message ?? 'The notebook is not in a git repository.'
    );
  }
  const repository =
    status.repository === '.' ? 'the server root' : status.repository;
  if (status.installed) {
    await new Dialog({
      title: 'Git filter installed',
      body: Private.details(status, repository),
      buttons: [Dialog.okButton()]
    }).launch();
    return;
  }
  const body = el('div', 'jp-ReproGitDialog');
  body.append(
    el(
      'p',
      '',
      `Install the jupyter-repro git filter into the repository ${repository}? ` +
        'git will strip outputs from notebooks as they are staged and ' +
        'committed, the way saves strip them; the files in the folder keep ' +
        'their outputs.'
    ),
    el(
      'p',
      'jp-ReproGitDialog-where',
      'It writes the repository-local configuration: .git/config and ' +
        '.git/info/attributes.'
    )
  );
  if (status.nbstripout) {
    body.append(
      el(
        'p',
        'jp-ReproGitDialog-nbstripout',
        'nbstripout is set up here (' +
          (status.details.nbstripout ?? []).join(', ') +
          '): the installer says what it does about it.'
      )
    );
  }
  const dialog = new Dialog({
    title: 'Install git filter',
    body: Private.asWidget(body),
    buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Install' })]
  });
  const accept = dialog.node.querySelector<HTMLElement>(
    '.jp-Dialog-button.jp-mod-accept'
  );
  if (accept) {
    accept.dataset.testid = GitTestIds.installConfirm;
  }
  const choice = await dialog.launch();
  if (!choice.button.accept) {
    return;
  }
  const result = await model.install();
  const said = result.output.length ? ` ${result.output.join(' ')}` : '';
  if (result.installed) {
    Notification.success(`Git filter installed in ${repository}.${said}`, {
      autoClose: 5000
    });
  } else {
    Notification.warning(
      `The installer finished, but git does not run the filter on this ` +
        `notebook yet.${said}`,
      { autoClose: false }
    );
  }
}

/**
 * Module-private helpers.
 */
namespace Private {
  export function asWidget(node: HTMLElement): Widget {
    return new Widget({ node });
  }

  export function details(status: IGitStatus, repository: string): Widget {
    const node = el('div', 'jp-ReproGitDialog');
    node.append(
      el(
        'p',
        '',
        `git strips this notebook's outputs as it is committed (${repository}).`
      )
    );
    const local = status.details.local;
    if (local?.installed) {
      node.append(
        el('p', '', `Attributes in ${local.attributes_file}:`),
        el('pre', 'jp-ReproGitDialog-lines', local.attribute_lines.join('\n'))
      );
    } else {
      node.append(
        el(
          'p',
          '',
          'It is configured outside the repository (global or system git ' +
            'configuration).'
        )
      );
    }
    return asWidget(node);
  }
}
