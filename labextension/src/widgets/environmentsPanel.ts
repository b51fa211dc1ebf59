import { refreshIcon } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { environmentsIcon } from '../icons';
import { ENVIRONMENTS_PANEL_ID, IReproModel } from '../tokens';

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
}

/**
 * The left-sidebar panel listing what jupyter-repro knows about the server.
 *
 * It renders an `IReproModel` and asks it to refresh; it does no fetching
 * of its own.
 */
export class EnvironmentsPanel extends Widget {
  constructor(options: EnvironmentsPanel.IOptions) {
    super();
    this.model = options.model;
    this.id = ENVIRONMENTS_PANEL_ID;
    this.addClass('jp-ReproPanel');
    this.node.dataset.testid = TestIds.panel;
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', 'Environments');
    this.title.icon = environmentsIcon;
    this.title.caption = 'Environments';

    this._refreshButton = Private.button({
      label: 'Refresh',
      ariaLabel: 'Refresh the jupyter-repro server status',
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
    });

    const header = Private.el('div', 'jp-ReproPanel-header');
    const title = Private.el('h2', 'jp-ReproPanel-title', 'Environments');
    header.append(title, this._refreshButton);

    this._loadingNode = Private.el(
      'div',
      'jp-ReproPanel-loading',
      'Loading server status…'
    );
    this._loadingNode.dataset.testid = TestIds.loading;
    this._loadingNode.setAttribute('role', 'status');

    this._errorNode = Private.el('div', 'jp-ReproPanel-message jp-mod-error');
    this._errorNode.dataset.testid = TestIds.statusError;
    this._errorNode.setAttribute('role', 'alert');
    this._errorText = Private.el('p', 'jp-ReproPanel-messageText');
    const retryButton = Private.button({
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
      Private.el(
        'p',
        'jp-ReproPanel-messageTitle',
        'Could not load the jupyter-repro server status.'
      ),
      this._errorText,
      retryButton
    );

    this._mismatchNode = Private.el(
      'div',
      'jp-ReproPanel-message jp-mod-warning'
    );
    this._mismatchNode.dataset.testid = TestIds.versionMismatch;
    this._mismatchNode.setAttribute('role', 'alert');

    this._messages = Private.el('div', 'jp-ReproPanel-messages');
    this._details = Private.el('dl', 'jp-ReproPanel-details');

    const body = Private.el('div', 'jp-ReproPanel-body');
    body.append(this._messages, this._details);
    this.node.append(header, body);

    this.model.stateChanged.connect(this._render, this);
    this._render();
  }

  /**
   * The model rendered by this panel.
   */
  readonly model: IReproModel;

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.model.stateChanged.disconnect(this._render, this);
    super.dispose();
  }

  /**
   * Load the status the first time the panel is shown.
   */
  protected onBeforeShow(msg: Message): void {
    super.onBeforeShow(msg);
    if (this.model.phase === 'idle') {
      void this.model.refresh();
    }
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
    Private.replaceChildren(this._messages, messages);

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

      const engine = Private.el('dd', 'jp-ReproPanel-value');
      const engineText = Private.el(
        'span',
        'jp-ReproPanel-engine',
        [status.engine.name, status.engine.version].filter(Boolean).join(' ')
      );
      engineText.dataset.testid = TestIds.engine;
      engine.append(engineText);
      if (status.engine.embedded) {
        engine.append(
          ' ',
          Private.el('span', 'jp-ReproPanel-badge', 'embedded')
        );
      }
      rows.push(Private.el('dt', 'jp-ReproPanel-label', 'Engine'), engine);

      rows.push(...Private.row('Conda tools', Private.clis(status.clis)));
    }
    Private.replaceChildren(this._details, rows);
  }

  private _refreshButton: HTMLButtonElement;
  private _loadingNode: HTMLElement;
  private _errorNode: HTMLElement;
  private _errorText: HTMLElement;
  private _mismatchNode: HTMLElement;
  private _messages: HTMLElement;
  private _details: HTMLElement;
  private _mismatchShownFor: string | null = null;
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
  }
}

/**
 * Module-private DOM helpers.
 */
namespace Private {
  /**
   * Create an element with a class name and optional text.
   */
  export function el<K extends keyof HTMLElementTagNameMap>(
    tag: K,
    className: string,
    text?: string
  ): HTMLElementTagNameMap[K] {
    const node = document.createElement(tag);
    node.className = className;
    if (text !== undefined) {
      node.textContent = text;
    }
    return node;
  }

  /**
   * Create a labelled, keyboard-reachable button.
   */
  export function button(options: {
    label: string;
    ariaLabel: string;
    testId: string;
    className: string;
  }): HTMLButtonElement {
    const node = el(
      'button',
      `jp-Button jp-mod-styled jp-ReproPanel-button ${options.className}`
    );
    node.type = 'button';
    node.title = options.ariaLabel;
    node.setAttribute('aria-label', options.ariaLabel);
    node.dataset.testid = options.testId;
    node.append(el('span', 'jp-ReproPanel-buttonLabel', options.label));
    return node;
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

  /**
   * Make `children` the children of `parent`, moving nodes only if needed
   * so that focus and screen-reader announcements are not disturbed.
   */
  export function replaceChildren(
    parent: HTMLElement,
    children: HTMLElement[]
  ): void {
    const current = Array.from(parent.children);
    if (
      current.length === children.length &&
      current.every((child, index) => child === children[index])
    ) {
      return;
    }
    parent.replaceChildren(...children);
  }
}
