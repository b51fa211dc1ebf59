import { IDisposable } from '@lumino/disposable';

import { IReproModel } from './tokens';

/**
 * Milliseconds between two drift checks while the drift is on screen.
 */
export const DRIFT_POLL_INTERVAL = 2500;

/**
 * Keeps the active notebook's drift current while someone can see it.
 *
 * While `isVisible()` says the drift is on screen and the browser tab is
 * visible, it asks the model for the drift every `interval` ms, quietly: the
 * server answers from its cache unless a package was installed or removed
 * (a few `stat` calls), and the model signals only a changed answer. A
 * package installed on disk is so seen within `interval` plus one request.
 * It also checks at once when the drift comes into view (`poke`), when the
 * tab becomes visible again, and when a restore job finishes.
 */
export class DriftWatch implements IDisposable {
  constructor(options: DriftWatch.IOptions) {
    this._model = options.model;
    this._isVisible = options.isVisible;
    this._interval = options.interval ?? DRIFT_POLL_INTERVAL;
    this._document = options.document ?? document;
    this._document.addEventListener('visibilitychange', this._onTabVisibility);
    this._model.restoreChanged.connect(this._onRestoreChanged, this);
    this._schedule();
  }

  /**
   * Whether the watch was disposed.
   */
  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /**
   * How many checks were sent (for tests).
   */
  get checks(): number {
    return this._checks;
  }

  /**
   * Check now if the drift is on screen (it just came into view), then
   * every `interval` ms again.
   */
  poke(): void {
    if (this._isDisposed) {
      return;
    }
    this._schedule(0);
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._clear();
    this._document.removeEventListener(
      'visibilitychange',
      this._onTabVisibility
    );
    this._model.restoreChanged.disconnect(this._onRestoreChanged, this);
  }

  /**
   * Whether a check is worth sending now.
   */
  private _shouldCheck(): boolean {
    return (
      this._document.visibilityState !== 'hidden' &&
      this._isVisible() &&
      !!this._model.activeNotebook?.kernelName
    );
  }

  private async _tick(): Promise<void> {
    this._timer = null;
    if (this._isDisposed) {
      return;
    }
    if (this._shouldCheck() && !this._inFlight) {
      this._inFlight = true;
      this._checks++;
      try {
        await this._model.refreshDrift({ quiet: true });
      } finally {
        this._inFlight = false;
      }
    }
    if (this._timer === null) {
      this._schedule();
    }
  }

  private _schedule(delay: number = this._interval): void {
    if (this._isDisposed) {
      return;
    }
    this._clear();
    this._timer = setTimeout(() => void this._tick(), delay);
  }

  private _clear(): void {
    if (this._timer !== null) {
      clearTimeout(this._timer);
      this._timer = null;
    }
  }

  private _onTabVisibility = (): void => {
    if (this._document.visibilityState === 'visible') {
      this.poke();
    }
  };

  private _onRestoreChanged(): void {
    const job = this._model.restoreJob;
    if (!job || !job.isFinished || this._finishedJobs.has(job.id)) {
      return;
    }
    // A restore finished: the notebook's environment may exist now, or
    // differ. Checked even when the drift is not on screen.
    this._finishedJobs.add(job.id);
    if (this._model.activeNotebook?.kernelName) {
      void this._model.refreshDrift({ quiet: true });
    }
  }

  private _model: IReproModel;
  private _isVisible: () => boolean;
  private _interval: number;
  private _document: Document;
  private _timer: ReturnType<typeof setTimeout> | null = null;
  private _inFlight = false;
  private _checks = 0;
  private _finishedJobs = new Set<string>();
  private _isDisposed = false;
}

/**
 * A namespace for `DriftWatch` statics.
 */
export namespace DriftWatch {
  /**
   * Options of the `DriftWatch` constructor.
   */
  export interface IOptions {
    /**
     * The model whose drift is kept current.
     */
    model: IReproModel;

    /**
     * Whether the drift is on screen (the Environments panel is shown).
     */
    isVisible: () => boolean;

    /**
     * Milliseconds between checks; `DRIFT_POLL_INTERVAL` by default.
     */
    interval?: number;

    /**
     * The document whose visibility counts; the page's by default.
     */
    document?: Document;
  }
}
