import { IDisposable } from '@lumino/disposable';

import {
  IJob,
  IReproModel,
  IRestoreJob,
  IRestoreRequest,
  IRestoreResult
} from '../tokens';
import { button, el } from './dom';

/**
 * The `data-testid` values of the restore progress view.
 */
export namespace RestoreTestIds {
  export const progress = 'repro-restore-progress';
  export const bar = 'repro-restore-bar';
  export const phase = 'repro-restore-phase';
  export const log = 'repro-restore-log';
  export const cancel = 'repro-restore-cancel';
  export const result = 'repro-restore-result';
  export const switchKernel = 'repro-switch-kernel';
  export const dismiss = 'repro-restore-dismiss';
}

/**
 * Labels of the job states.
 */
const STATE_LABELS: Record<IJob['state'], string> = {
  queued: 'Waiting to start…',
  running: 'Restoring…',
  succeeded: 'Restored',
  failed: 'Restore failed',
  cancelled: 'Restore cancelled'
};

/**
 * The progress of the model's restore job: state, phase, a progress bar,
 * the log, a cancel button and, on success, an offer to switch the
 * notebook's kernel. Plain DOM, shown inside the Environments panel.
 */
export class RestoreView implements IDisposable {
  constructor(options: RestoreView.IOptions) {
    this._model = options.model;
    this._onSwitchKernel = options.onSwitchKernel ?? null;
    this._canSwitchKernel = options.canSwitchKernel ?? (() => false);

    this.node = el('section', 'jp-ReproPanel-section jp-ReproRestore');
    this.node.dataset.testid = RestoreTestIds.progress;
    this.node.setAttribute('aria-label', 'Restore progress');
    this.node.hidden = true;

    this._title.className = 'jp-ReproPanel-sectionTitle';
    this._phase.className = 'jp-ReproRestore-phase';
    this._phase.dataset.testid = RestoreTestIds.phase;
    this._phase.setAttribute('role', 'status');
    this._phase.setAttribute('aria-live', 'polite');
    this._bar.className = 'jp-ReproRestore-bar';
    this._bar.dataset.testid = RestoreTestIds.bar;
    this._bar.setAttribute('aria-label', 'Restore progress');
    this._log.className = 'jp-ReproRestore-log';
    this._log.dataset.testid = RestoreTestIds.log;
    this._log.setAttribute('aria-label', 'Restore log');
    this._log.tabIndex = 0;
    this._result.className = 'jp-ReproRestore-result';
    this._result.dataset.testid = RestoreTestIds.result;
    this._result.setAttribute('role', 'status');

    this._cancel = button({
      label: 'Cancel',
      ariaLabel: 'Cancel the restore',
      testId: RestoreTestIds.cancel,
      className: 'jp-ReproRestore-cancel'
    });
    this._cancel.addEventListener('click', () => {
      const job = this._model.restoreJob;
      if (job) {
        this._cancel.disabled = true;
        void job.cancel();
      }
    });
    this._switch = button({
      label: 'Use as kernel',
      ariaLabel: "Switch the notebook's kernel to the restored environment",
      testId: RestoreTestIds.switchKernel,
      className: 'jp-ReproRestore-switch',
      accent: true
    });
    this._switch.addEventListener('click', () => {
      const job = this._model.restoreJob;
      if (job?.job.result && this._onSwitchKernel) {
        this._switch.disabled = true;
        this._onSwitchKernel(job.job.result, job.request)
          .catch(reason => {
            console.error('jupyter-repro: could not switch kernel.', reason);
          })
          .finally(() => {
            this._switch.disabled = false;
          });
      }
    });
    this._dismiss = button({
      label: 'Dismiss',
      ariaLabel: 'Hide the restore progress',
      testId: RestoreTestIds.dismiss,
      className: 'jp-ReproRestore-dismiss'
    });
    this._dismiss.addEventListener('click', () => {
      this._dismissed = this._model.restoreJob;
      this._render();
    });

    const actions = el('div', 'jp-ReproPanel-actions');
    actions.append(this._cancel, this._switch, this._dismiss);
    this.node.append(
      this._title,
      this._phase,
      this._bar,
      this._result,
      this._log,
      actions
    );

    this._model.restoreChanged.connect(this._render, this);
    this._render();
  }

  /**
   * The view's root node.
   */
  readonly node: HTMLElement;

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._model.restoreChanged.disconnect(this._render, this);
  }

  private _render(): void {
    const restore = this._model.restoreJob;
    if (restore === null || restore === this._dismissed) {
      this.node.hidden = true;
      return;
    }
    this.node.hidden = false;
    const job = restore.job;
    const { phase, done, total } = job.progress;
    this.node.dataset.state = job.state;
    this._title.textContent = STATE_LABELS[job.state] ?? job.state;

    this._phase.textContent = RestoreView.phaseText(job);
    this._phase.dataset.phase = phase ?? job.state;
    this._phase.dataset.done = String(done);
    this._phase.dataset.total = String(total);
    if (total > 0) {
      this._bar.max = total;
      this._bar.value = Math.min(done, total);
    } else if (job.state === 'succeeded') {
      this._bar.max = 1;
      this._bar.value = 1;
    } else {
      // Unknown amount of work: an indeterminate bar.
      this._bar.removeAttribute('value');
    }
    this._bar.hidden = restore.isFinished;

    const lines =
      job.log_dropped > 0
        ? [`… ${job.log_dropped} earlier lines not shown`, ...job.log]
        : job.log;
    const text = lines.join('\n');
    if (this._log.textContent !== text) {
      const atBottom =
        this._log.scrollHeight - this._log.scrollTop - this._log.clientHeight <
        8;
      this._log.textContent = text;
      if (atBottom) {
        this._log.scrollTop = this._log.scrollHeight;
      }
    }

    this._result.textContent = RestoreView.describe(restore);
    this._result.dataset.state = job.state;
    this._result.hidden = !restore.isFinished && restore.pollError === null;

    this._cancel.hidden = restore.isFinished;
    this._cancel.disabled = job.cancel_requested;
    const canSwitch =
      job.state === 'succeeded' &&
      this._onSwitchKernel !== null &&
      this._canSwitchKernel(job.result, restore.request);
    this._switch.hidden = !canSwitch;
    this._dismiss.hidden = !restore.isFinished;
  }

  /**
   * The phase line for people: "Downloading 3 of 12 packages, 45 of 120
   * MB", "Installing pip packages", "Done in 4.2 s".
   */
  static phaseText(job: IJob): string {
    const { phase, done, total } = job.progress;
    const progress = job.progress;
    const of = total > 0 ? ` ${done} of ${total}` : '';
    let bytes = '';
    if (
      typeof progress.bytes_done === 'number' &&
      typeof progress.bytes_total === 'number' &&
      progress.bytes_total > 0 &&
      progress.bytes_done < progress.bytes_total
    ) {
      bytes =
        `, downloading ${progress.downloaded ?? 0} of ${progress.downloading ?? 0}` +
        ` (${formatBytes(progress.bytes_done, progress.bytes_total)})`;
    }
    switch (job.state) {
      case 'succeeded':
        return `Done${durationOf(job)}.`;
      case 'failed':
        return `Failed${durationOf(job)}.`;
      case 'cancelled':
        return 'Cancelled.';
      case 'queued':
        return 'Waiting to start…';
    }
    switch (phase) {
      case 'solve':
        return 'Solving the environment…';
      case 'verify':
        return `Checking${of} packages against the lock…`;
      case 'download':
        return `Downloading${of} packages${bytes}…`;
      case 'link':
        return `Installing${of} packages${bytes}…`;
      case 'pip':
        return total > 0
          ? `Installing ${total} pip package${total === 1 ? '' : 's'}…`
          : 'Installing pip packages…';
      case 'register':
        return 'Registering the environment…';
      default:
        return phase ? `${phase}${of}…` : 'Starting…';
    }
  }

  /**
   * What the result line says about a restore.
   */
  static describe(restore: IRestoreJob): string {
    const job = restore.job;
    if (restore.pollError && !restore.isFinished) {
      return `Lost track of the restore: ${restore.pollError.message}`;
    }
    switch (job.state) {
      case 'succeeded': {
        const result = job.result;
        const where = result?.name ?? result?.prefix ?? 'the environment';
        const packages =
          typeof result?.packages === 'number'
            ? ` (${result.packages} packages${result.pip ? `, ${result.pip} from pip` : ''})`
            : '';
        return `Created ${where}${packages}.`;
      }
      case 'failed':
        return job.error?.message ?? 'The restore failed.';
      case 'cancelled':
        return 'The restore was cancelled; nothing was left behind.';
      default:
        return '';
    }
  }

  private _model: IReproModel;
  private _onSwitchKernel: RestoreView.IOptions['onSwitchKernel'] | null;
  private _canSwitchKernel: NonNullable<
    RestoreView.IOptions['canSwitchKernel']
  >;
  private _title = document.createElement('h3');
  private _phase = document.createElement('p');
  private _bar = document.createElement('progress');
  private _log = document.createElement('pre');
  private _result = document.createElement('p');
  private _cancel: HTMLButtonElement;
  private _switch: HTMLButtonElement;
  private _dismiss: HTMLButtonElement;
  private _dismissed: IRestoreJob | null = null;
  private _isDisposed = false;
}

/**
 * A namespace for `RestoreView` statics.
 */
export namespace RestoreView {
  /**
   * Options of the `RestoreView` constructor.
   */
  export interface IOptions {
    /**
     * The model whose `restoreJob` is shown.
     */
    model: IReproModel;

    /**
     * Switch a notebook's kernel to the restored environment.
     */
    onSwitchKernel?: (
      result: IRestoreResult,
      request: IRestoreRequest
    ) => Promise<void>;

    /**
     * Whether to offer the switch for this result (e.g. a notebook is open).
     */
    canSwitchKernel?: (
      result: IRestoreResult | null,
      request: IRestoreRequest
    ) => boolean;
  }
}

/**
 * " in 4.2 s" from a job's start and end, or "" when unknown.
 */
export function durationOf(job: IJob<unknown>): string {
  if (!job.started || !job.finished) {
    return '';
  }
  const seconds = (Date.parse(job.finished) - Date.parse(job.started)) / 1000;
  if (!(seconds >= 0)) {
    return '';
  }
  if (seconds < 1) {
    return ` in ${Math.round(seconds * 1000)} ms`;
  }
  if (seconds < 60) {
    return ` in ${seconds.toFixed(1)} s`;
  }
  return ` in ${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

/**
 * "45 of 120 MB" (or kB), both in the unit of the total.
 */
export function formatBytes(done: number, total: number): string {
  const [unit, size] =
    total >= 1e9 ? ['GB', 1e9] : total >= 1e6 ? ['MB', 1e6] : ['kB', 1e3];
  const digits = total / size < 10 ? 1 : 0;
  return `${(done / size).toFixed(digits)} of ${(total / size).toFixed(digits)} ${unit}`;
}
