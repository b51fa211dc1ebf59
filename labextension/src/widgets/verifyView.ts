import { IDisposable } from '@lumino/disposable';

import {
  IJob,
  IReproModel,
  IVerifyCell,
  IVerifyCellProgress,
  IVerifyJob,
  IVerifyReport,
  VerifyCellStatus
} from '../tokens';
import { cellStates } from '../verify';
import { button, el } from './dom';
import { durationOf } from './restoreView';

/**
 * The `data-testid` values of the verification view.
 */
export namespace VerifyTestIds {
  export const progress = 'repro-verify-progress';
  export const phase = 'repro-verify-phase';
  export const bar = 'repro-verify-bar';
  export const cells = 'repro-verify-cells';
  export const badge = 'repro-verify-badge';
  export const summary = 'repro-verify-summary';
  export const cell = 'repro-verify-cell';
  export const diff = 'repro-verify-diff';
  export const jump = 'repro-verify-jump';
  export const result = 'repro-verify-result';
  export const log = 'repro-verify-log';
  export const cancel = 'repro-verify-cancel';
  export const record = 'repro-verify-record';
  export const dismiss = 'repro-verify-dismiss';
}

/**
 * The statuses a cell has in a verification, `running` included.
 */
export type VerifyCellState = VerifyCellStatus | 'running';

/**
 * Labels of the cell statuses, for people.
 */
export const STATUS_LABELS: Readonly<Record<VerifyCellState, string>> = {
  running: 'running',
  match: 'matches',
  differs: 'differs',
  error: 'error',
  no_reference: 'no reference',
  skipped: 'skipped'
};

/**
 * The statuses of cells listed with their details after a verification.
 */
const PROBLEMS: readonly VerifyCellStatus[] = ['differs', 'error'];

/**
 * Titles by job state.
 */
const STATE_LABELS: Record<IJob['state'], string> = {
  queued: 'Waiting to verify…',
  running: 'Verifying reproduction…',
  succeeded: 'Verification',
  failed: 'Verification failed',
  cancelled: 'Verification cancelled'
};

/**
 * The counts of a report: cells that match of those compared (every cell
 * but the skipped ones), and the counts by status.
 */
export function reportCounts(report: IVerifyReport): {
  matching: number;
  compared: number;
  byStatus: Record<VerifyCellStatus, number>;
} {
  const byStatus: Record<VerifyCellStatus, number> = {
    match: 0,
    differs: 0,
    error: 0,
    no_reference: 0,
    skipped: 0
  };
  const summary = report.summary ?? {};
  const fromSummary = Object.keys(summary).length > 0;
  if (fromSummary) {
    for (const [status, count] of Object.entries(summary)) {
      if (status in byStatus && typeof count === 'number') {
        byStatus[status as VerifyCellStatus] = count;
      }
    }
  } else {
    for (const cell of report.cells ?? []) {
      if (cell.status in byStatus) {
        byStatus[cell.status] += 1;
      }
    }
  }
  const total = Object.values(byStatus).reduce((a, b) => a + b, 0);
  return {
    matching: byStatus.match,
    compared: total - byStatus.skipped,
    byStatus
  };
}

/**
 * The badge: "Reproduces: 41 of 42 cells match".
 */
export function badgeText(report: IVerifyReport): string {
  const { matching, compared } = reportCounts(report);
  return `Reproduces: ${matching} of ${compared} cell${compared === 1 ? '' : 's'} match`;
}

/**
 * Whether nothing differs and nothing failed.
 */
export function reproduces(report: IVerifyReport): boolean {
  const { byStatus } = reportCounts(report);
  return byStatus.differs === 0 && byStatus.error === 0;
}

/**
 * The line under the badge: the other counts and where it ran.
 */
export function summaryText(job: IJob<IVerifyReport>): string {
  const report = job.result;
  if (!report) {
    return '';
  }
  const { byStatus } = reportCounts(report);
  const parts: string[] = [];
  if (byStatus.differs) {
    parts.push(
      `${byStatus.differs} differ${byStatus.differs === 1 ? 's' : ''}`
    );
  }
  if (byStatus.error) {
    parts.push(`${byStatus.error} error${byStatus.error === 1 ? '' : 's'}`);
  }
  if (byStatus.no_reference) {
    parts.push(`${byStatus.no_reference} without a reference`);
  }
  if (byStatus.skipped) {
    parts.push(`${byStatus.skipped} skipped`);
  }
  const env = report.environment ?? {};
  const where = env.kernel ? ` on ${env.kernel}` : '';
  const platform = env.platform ? ` (${env.platform})` : '';
  const counts = parts.length ? `${parts.join(', ')}. ` : '';
  return `${counts}Ran${where}${platform}${durationOf(job)}.`;
}

/**
 * "Cell 3" for the cell at index 2: people count from one.
 */
export function cellLabel(cell: { index: number }): string {
  return `Cell ${cell.index + 1}`;
}

/**
 * The progress of the model's verify job: the cells as they run, then the
 * badge "Reproduces: N of M cells match", each differing (or failing) cell
 * with its diff and a jump to it, and a button that records the
 * verification in the notebook. Plain DOM, inside the Environments panel,
 * in the style of the restore view.
 */
export class VerifyView implements IDisposable {
  constructor(options: VerifyView.IOptions) {
    this._model = options.model;
    this._onJump = options.onJump ?? null;
    this._onRecord = options.onRecord ?? null;
    this._canRecord = options.canRecord ?? (() => this._onRecord !== null);
    this._onDismiss = options.onDismiss ?? null;

    this.node = el('section', 'jp-ReproPanel-section jp-ReproVerify');
    this.node.dataset.testid = VerifyTestIds.progress;
    this.node.setAttribute('aria-label', 'Verification');
    this.node.hidden = true;

    this._title.className = 'jp-ReproPanel-sectionTitle';
    this._notebook.className = 'jp-ReproVerify-notebook';
    this._phase.className = 'jp-ReproRestore-phase jp-ReproVerify-phase';
    this._phase.dataset.testid = VerifyTestIds.phase;
    this._phase.setAttribute('role', 'status');
    this._phase.setAttribute('aria-live', 'polite');
    this._bar.className = 'jp-ReproRestore-bar';
    this._bar.dataset.testid = VerifyTestIds.bar;
    this._bar.setAttribute('aria-label', 'Verification progress');
    this._cells.className = 'jp-ReproVerify-cells';
    this._cells.dataset.testid = VerifyTestIds.cells;
    this._cells.setAttribute('role', 'list');
    this._cells.setAttribute('aria-label', 'Cells verified so far');
    this._badge.className = 'jp-ReproVerify-badge';
    this._badge.dataset.testid = VerifyTestIds.badge;
    this._badge.setAttribute('role', 'status');
    this._summary.className = 'jp-ReproVerify-summary';
    this._summary.dataset.testid = VerifyTestIds.summary;
    this._problems.className = 'jp-ReproVerify-problems';
    this._problems.setAttribute('aria-label', 'Cells that do not reproduce');
    this._result.className = 'jp-ReproRestore-result';
    this._result.dataset.testid = VerifyTestIds.result;
    this._result.setAttribute('role', 'status');
    this._log.className = 'jp-ReproRestore-log';
    this._log.dataset.testid = VerifyTestIds.log;
    this._log.setAttribute('aria-label', 'Verification log');
    this._log.tabIndex = 0;
    this._logDetails.className = 'jp-ReproVerify-logDetails';
    this._logDetails.append(
      el('summary', 'jp-ReproVerify-logSummary', 'Log'),
      this._log
    );

    this._cancel = button({
      label: 'Cancel',
      ariaLabel: 'Cancel the verification',
      testId: VerifyTestIds.cancel,
      className: 'jp-ReproVerify-cancel'
    });
    this._cancel.addEventListener('click', () => {
      const job = this._model.verifyJob;
      if (job) {
        this._cancel.disabled = true;
        void job.cancel();
      }
    });
    this._record = button({
      label: 'Record verification',
      ariaLabel:
        'Write this verification (date, platform, environment, result counts) into the notebook metadata and save it',
      testId: VerifyTestIds.record,
      className: 'jp-ReproVerify-record',
      accent: true
    });
    this._record.addEventListener('click', () => {
      const job = this._model.verifyJob;
      if (!job || !this._onRecord) {
        return;
      }
      this._record.disabled = true;
      this._onRecord(job)
        .then(recorded => {
          if (recorded) {
            this._recordedFor = job;
          }
        })
        .catch(reason => {
          console.error(
            'jupyter-repro: could not record the verification.',
            reason
          );
        })
        .finally(() => this._render());
    });
    this._dismiss = button({
      label: 'Dismiss',
      ariaLabel: 'Hide the verification',
      testId: VerifyTestIds.dismiss,
      className: 'jp-ReproVerify-dismiss'
    });
    this._dismiss.addEventListener('click', () => {
      this._dismissed = this._model.verifyJob;
      this._onDismiss?.();
      this._render();
    });

    const actions = el('div', 'jp-ReproPanel-actions');
    actions.append(this._cancel, this._record, this._dismiss);
    this.node.append(
      this._title,
      this._notebook,
      this._phase,
      this._bar,
      this._cells,
      this._badge,
      this._summary,
      this._problems,
      this._result,
      this._logDetails,
      actions
    );

    this._model.verifyChanged.connect(this._render, this);
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
    this._model.verifyChanged.disconnect(this._render, this);
  }

  /**
   * Show the view again (e.g. a new verification, or one dismissed).
   */
  render(): void {
    this._render();
  }

  private _render(): void {
    const verify = this._model.verifyJob;
    if (verify === null || verify === this._dismissed) {
      this.node.hidden = true;
      return;
    }
    if (verify !== this._shownFor) {
      // Another verification: nothing of the last one applies.
      this._shownFor = verify;
      this._cellNodes.clear();
      this._problemsKey = '';
      this._problems.replaceChildren();
    }
    this.node.hidden = false;
    const job = verify.job;
    const report = job.state === 'succeeded' ? job.result : null;
    const { done, total } = job.progress;
    this.node.dataset.state = job.state;
    this._title.textContent = STATE_LABELS[job.state] ?? job.state;
    this._notebook.textContent = verify.request.notebook;
    this._notebook.title = verify.request.notebook;

    this._phase.textContent = VerifyView.phaseText(job);
    this._phase.dataset.phase = job.progress.phase ?? job.state;
    this._phase.dataset.done = String(done);
    this._phase.dataset.total = String(total);
    if (total > 0) {
      this._bar.max = total;
      this._bar.value = Math.min(done, total);
    } else {
      this._bar.removeAttribute('value');
    }
    this._bar.hidden = verify.isFinished;

    this._renderCells(cellStates(job));

    if (report) {
      const ok = reproduces(report);
      this._badge.textContent = badgeText(report);
      this._badge.dataset.result = ok ? 'reproduces' : 'differs';
      this._badge.hidden = false;
      this._summary.textContent = summaryText(job);
      this._summary.hidden = false;
      this._renderProblems(report);
    } else {
      this._badge.hidden = true;
      this._summary.hidden = true;
      this._problems.hidden = true;
    }

    this._result.textContent = VerifyView.describe(verify);
    this._result.dataset.state = job.state;
    this._result.hidden = this._result.textContent === '';

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
    this._logDetails.hidden = lines.length === 0;

    this._cancel.hidden = verify.isFinished;
    this._cancel.disabled = job.cancel_requested;
    const recorded = this._recordedFor === verify;
    const canRecord =
      report !== null &&
      !!report.verified_record &&
      this._onRecord !== null &&
      this._canRecord(verify);
    this._record.hidden = !canRecord && !recorded;
    this._record.disabled = recorded || !canRecord;
    this._record.dataset.recorded = String(recorded);
    const label = this._record.querySelector('.jp-ReproPanel-buttonLabel');
    if (label) {
      label.textContent = recorded
        ? 'Verification recorded'
        : 'Record verification';
    }
    this._dismiss.hidden = !verify.isFinished;
  }

  private _renderCells(states: IVerifyCellProgress[]): void {
    const nodes: HTMLElement[] = [];
    for (const cell of states) {
      let node = this._cellNodes.get(cell.index);
      if (!node) {
        node = el('span', 'jp-ReproVerify-chip');
        node.setAttribute('role', 'listitem');
        this._cellNodes.set(cell.index, node);
      }
      if (node.dataset.status !== cell.status) {
        node.dataset.status = cell.status;
        node.dataset.index = String(cell.index);
        const text = `${cellLabel(cell)}: ${STATUS_LABELS[cell.status] ?? cell.status}`;
        node.title = text;
        node.setAttribute('aria-label', text);
      }
      nodes.push(node);
    }
    if (
      nodes.length !== this._cells.children.length ||
      nodes.some((node, i) => this._cells.children[i] !== node)
    ) {
      this._cells.replaceChildren(...nodes);
    }
    this._cells.hidden = nodes.length === 0;
  }

  private _renderProblems(report: IVerifyReport): void {
    const problems = (report.cells ?? []).filter(cell =>
      PROBLEMS.includes(cell.status)
    );
    this._problems.hidden = problems.length === 0;
    const key = JSON.stringify(problems);
    if (key === this._problemsKey) {
      return;
    }
    this._problemsKey = key;
    this._problems.replaceChildren(
      ...problems.map(cell => this._problemItem(cell))
    );
  }

  private _problemItem(cell: IVerifyCell): HTMLElement {
    const item = el('li', 'jp-ReproVerify-problem');
    item.dataset.testid = VerifyTestIds.cell;
    item.dataset.index = String(cell.index);
    item.dataset.status = cell.status;
    if (cell.id) {
      item.dataset.id = cell.id;
    }
    const head = el('div', 'jp-ReproVerify-problemHead');
    const title = el(
      'span',
      'jp-ReproVerify-problemTitle',
      `${cellLabel(cell)} ${STATUS_LABELS[cell.status]}`
    );
    head.append(title);
    if (this._onJump) {
      const jump = button({
        label: 'Jump to cell',
        ariaLabel: `Select ${cellLabel(cell).toLowerCase()} in the notebook`,
        testId: VerifyTestIds.jump,
        className: 'jp-ReproVerify-jump'
      });
      jump.addEventListener('click', () => {
        const job = this._model.verifyJob;
        if (job && this._onJump) {
          this._onJump(job, cell).catch(reason => {
            console.error('jupyter-repro: could not jump to the cell.', reason);
          });
        }
      });
      head.append(jump);
    }
    item.append(head);
    const text =
      cell.status === 'error'
        ? (cell.error ?? cell.diff ?? 'The cell failed.')
        : (cell.diff ?? 'The outputs differ.');
    const diff = el('pre', 'jp-ReproVerify-diff');
    diff.dataset.testid = VerifyTestIds.diff;
    diff.tabIndex = 0;
    diff.setAttribute('aria-label', `${cellLabel(cell)}: what differs`);
    for (const line of text.split('\n')) {
      const kind = line.startsWith('+')
        ? 'jp-mod-added'
        : line.startsWith('-')
          ? 'jp-mod-removed'
          : '';
      const span = el('span', `jp-ReproVerify-diffLine ${kind}`.trim());
      span.textContent = line + '\n';
      diff.append(span);
    }
    item.append(diff);
    return item;
  }

  /**
   * The phase line for people: "Restoring the environment: solving…",
   * "5 of 12 cells run…", "Done in 4.2 s.".
   */
  static phaseText(job: IJob<IVerifyReport>): string {
    const { phase, done, total } = job.progress;
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
    if (phase === 'restore') {
      const step = job.progress.step;
      const of = total > 0 ? ` ${done} of ${total}` : '';
      const steps: Record<string, string> = {
        solve: 'solving',
        verify: `checking${of} packages`,
        download: `downloading${of} packages`,
        link: `installing${of} packages`,
        pip: 'installing pip packages',
        register: 'registering'
      };
      const what = step ? (steps[step] ?? step) : '';
      return what
        ? `Restoring the environment: ${what}…`
        : 'Restoring the environment…';
    }
    if (phase === 'execute' && total > 0) {
      const running = (job.progress.cells ?? []).find(
        cell => cell.status === 'running'
      );
      return running
        ? `Running ${cellLabel(running).toLowerCase()} (${done} of ${total} cells done)…`
        : `${done} of ${total} cells done…`;
    }
    return 'Starting the kernel…';
  }

  /**
   * What the result line says: why it failed, that it was cancelled, or
   * that the server is out of reach; empty otherwise.
   */
  static describe(verify: IVerifyJob): string {
    const job = verify.job;
    if (verify.pollError && !verify.isFinished) {
      return `Lost track of the verification: ${verify.pollError.message}`;
    }
    switch (job.state) {
      case 'failed':
        return job.error?.message ?? 'The verification failed.';
      case 'cancelled':
        return 'The verification was cancelled; its kernel and any temporary environment were removed.';
      default:
        return '';
    }
  }

  private _model: IReproModel;
  private _onJump: VerifyView.IOptions['onJump'] | null;
  private _onRecord: VerifyView.IOptions['onRecord'] | null;
  private _canRecord: (job: IVerifyJob) => boolean;
  private _onDismiss: (() => void) | null;
  private _title = document.createElement('h3');
  private _notebook = document.createElement('p');
  private _phase = document.createElement('p');
  private _bar = document.createElement('progress');
  private _cells = document.createElement('div');
  private _cellNodes = new Map<number, HTMLElement>();
  private _badge = document.createElement('p');
  private _summary = document.createElement('p');
  private _problems = document.createElement('ul');
  private _problemsKey = '';
  private _result = document.createElement('p');
  private _log = document.createElement('pre');
  private _logDetails = document.createElement('details');
  private _cancel: HTMLButtonElement;
  private _record: HTMLButtonElement;
  private _dismiss: HTMLButtonElement;
  private _shownFor: IVerifyJob | null = null;
  private _dismissed: IVerifyJob | null = null;
  private _recordedFor: IVerifyJob | null = null;
  private _isDisposed = false;
}

/**
 * A namespace for `VerifyView` statics.
 */
export namespace VerifyView {
  /**
   * Options of the `VerifyView` constructor.
   */
  export interface IOptions {
    /**
     * The model whose `verifyJob` is shown.
     */
    model: IReproModel;

    /**
     * Select and show a cell of the verified notebook.
     */
    onJump?: (job: IVerifyJob, cell: IVerifyCell) => Promise<void>;

    /**
     * Write the verification's record into its notebook and save it;
     * resolves with whether it was written.
     */
    onRecord?: (job: IVerifyJob) => Promise<boolean>;

    /**
     * Whether the record can be written now (its notebook is open).
     */
    canRecord?: (job: IVerifyJob) => boolean;

    /**
     * Called when the user dismisses the view (e.g. to clear cell marks).
     */
    onDismiss?: () => void;
  }
}
