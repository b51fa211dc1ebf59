import { INotebookModel } from '@jupyterlab/notebook';
import { Widget } from '@lumino/widgets';

import { stripsOnSave } from '../model';
import { IReproModel } from '../tokens';
import { el } from './dom';

/**
 * The `data-testid` of the strip-on-save status-bar item.
 */
export const STRIP_STATUS_TEST_ID = 'repro-strip-status';

/**
 * The status-bar item saying whether saving the active notebook strips its
 * outputs; clicking it runs `onToggle`.
 */
export class StripStatus extends Widget {
  constructor(options: StripStatus.IOptions) {
    super();
    this._model = options.model;
    this.addClass('jp-ReproStripStatus');
    this._button = el('button', 'jp-ReproStripStatus-button');
    this._button.type = 'button';
    this._button.dataset.testid = STRIP_STATUS_TEST_ID;
    this._button.addEventListener('click', () => options.onToggle());
    this.node.append(this._button);
    this._model.activeNotebookChanged.connect(this._render, this);
    this._render();
  }

  /**
   * The notebook whose metadata decides (the active one), or `null`.
   */
  setNotebook(notebook: INotebookModel | null): void {
    if (notebook === this._notebook) {
      return;
    }
    this._notebook?.metadataChanged.disconnect(this._render, this);
    this._notebook = notebook;
    this._notebook?.metadataChanged.connect(this._render, this);
    this._render();
  }

  /**
   * Whether saving strips outputs, `null` when unknown.
   */
  get stripsOnSave(): boolean | null {
    const policy = this._model.stripPolicy;
    if (!policy || !this._notebook) {
      return null;
    }
    return stripsOnSave(policy, this._notebook.getMetadata('keep_output'));
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._model.activeNotebookChanged.disconnect(this._render, this);
    this._notebook?.metadataChanged.disconnect(this._render, this);
    super.dispose();
  }

  private _render(): void {
    const strips = this.stripsOnSave;
    const policy = this._model.stripPolicy;
    this._button.dataset.stripsOnSave =
      strips === null ? 'unknown' : String(strips);
    let label: string;
    let title: string;
    if (strips === null) {
      label = 'Outputs: ?';
      title = this._model.stripPolicyError
        ? `Strip policy unknown: ${this._model.stripPolicyError.message}`
        : 'Strip policy not loaded yet';
    } else if (strips) {
      label = 'Outputs: stripped on save';
      title =
        'Saving removes the outputs of this notebook. Click to keep them ' +
        '(sets metadata.keep_output).';
    } else if (policy && !policy.on_save) {
      label = 'Outputs: kept';
      title =
        'Saving keeps outputs: stripping on save is off in the server or ' +
        'pyproject.toml configuration.';
    } else {
      label = 'Outputs: kept';
      title =
        'Saving keeps the outputs of this notebook. Click to strip them on ' +
        'save.';
    }
    this._button.textContent = label;
    this._button.title = title;
    this._button.setAttribute('aria-label', title);
    this._button.setAttribute('aria-pressed', String(strips === true));
  }

  private _model: IReproModel;
  private _button: HTMLButtonElement;
  private _notebook: INotebookModel | null = null;
}

/**
 * A namespace for `StripStatus` statics.
 */
export namespace StripStatus {
  /**
   * Options of the `StripStatus` constructor.
   */
  export interface IOptions {
    /**
     * The model holding the active notebook's strip policy.
     */
    model: IReproModel;

    /**
     * Called on click (runs the toggle command).
     */
    onToggle: () => void;
  }
}
