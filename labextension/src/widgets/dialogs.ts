import { Dialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import {
  lockedText,
  lockingText,
  MAX_LOCK_PLATFORMS,
  platformChoices
} from '../lock';
import {
  ExportMode,
  ExportTarget,
  ILockSummary,
  INameCheck,
  IRestorePlan,
  LockTarget
} from '../tokens';
import { el, labelledSelect } from './dom';

/**
 * The `data-testid` values of the dialogs.
 */
export namespace DialogTestIds {
  export const exportDialog = 'repro-export-dialog';
  export const exportMode = 'repro-export-mode';
  export const exportTarget = 'repro-export-target';
  export const exportConfirm = 'repro-export-confirm';
  export const exportSpec = 'repro-export-spec';
  export const exportLock = 'repro-export-lock';
  export const exportCapsule = 'repro-export-capsule';
  export const packDialog = 'repro-pack-dialog';
  export const packProgress = 'repro-pack-progress';
  export const packClose = 'repro-pack-close';
  export const lockOptions = 'repro-lock-options';
  export const lockPlatformPrefix = 'repro-lock-platform-';
  export const lockTarget = 'repro-lock-target';
  export const lockHint = 'repro-lock-hint';
  export const lockDialog = 'repro-lock-dialog';
  export const lockProgress = 'repro-lock-progress';
  export const lockResult = 'repro-lock-result';
  export const lockSkipped = 'repro-lock-skipped';
  export const lockWarning = 'repro-lock-warning';
  export const lockError = 'repro-lock-error';
  export const lockClose = 'repro-lock-close';
  export const restoreDialog = 'repro-restore-dialog';
  export const restorePlan = 'repro-restore-plan';
  export const restoreName = 'repro-restore-name';
  export const restoreTarget = 'repro-restore-target';
  export const restoreNameStatus = 'repro-restore-name-status';
  export const restoreConflict = 'repro-restore-conflict';
  export const restoreExisting = 'repro-restore-existing';
  export const restoreConfirm = 'repro-restore-confirm';
}

/**
 * The export modes offered, with what each means.
 */
export const EXPORT_MODE_CHOICES: readonly {
  value: ExportMode;
  label: string;
  title: string;
}[] = [
  {
    value: 'portable',
    label: 'Portable',
    title:
      'The packages you asked for, pinned to their installed versions; for other platforms'
  },
  {
    value: 'exact',
    label: 'Exact',
    title: 'Every package with its version and build'
  },
  {
    value: 'no-builds',
    label: 'No builds',
    title: 'Every package with its version, no build strings'
  },
  {
    value: 'explicit',
    label: 'Explicit (URLs)',
    title:
      'Package URLs with checksums, for identical restores on the same platform'
  }
];

/**
 * The export targets offered.
 */
export const EXPORT_TARGET_CHOICES: readonly {
  value: ExportTarget;
  label: string;
  title: string;
}[] = [
  {
    value: 'download',
    label: 'Download the file',
    title: 'Your browser downloads the spec'
  },
  {
    value: 'file',
    label: 'Save environment.yml beside the notebook',
    title: 'Written next to the notebook on the server, then opened'
  },
  {
    value: 'metadata',
    label: 'Embed in the notebook',
    title: "Stored in the notebook's metadata, then the notebook is saved"
  }
];

/**
 * Where a lock can go.
 */
export const LOCK_TARGET_CHOICES: readonly {
  value: LockTarget;
  label: string;
  title: string;
}[] = [
  {
    value: 'metadata',
    label: 'Embed in the notebook',
    title:
      "Stored in the notebook's metadata (jupyter_repro.lock), then the notebook is saved"
  },
  {
    value: 'conda-lock',
    label: 'conda-lock.yml beside the notebook',
    title: 'A conda-lock file (CEP 37) written next to the notebook'
  },
  {
    value: 'pixi',
    label: 'pixi.lock beside the notebook',
    title: 'A pixi lock file written next to the notebook'
  },
  {
    value: 'metadata+conda-lock',
    label: 'Embed in the notebook and conda-lock.yml beside it',
    title: 'Both: in the notebook, and a conda-lock file next to it'
  },
  {
    value: 'metadata+pixi',
    label: 'Embed in the notebook and pixi.lock beside it',
    title: 'Both: in the notebook, and a pixi lock file next to it'
  }
];

/**
 * What the export dialog offers: a spec (mode and target), a lock, or a
 * capsule to download (the notebook, its lock and every package, offline).
 */
export type ExportKind = 'spec' | 'lock' | 'capsule';

/**
 * The lock chosen in the export dialog.
 */
export interface ILockChoice {
  /**
   * The platforms checked, in the order shown.
   */
  platforms: string[];

  /**
   * Where the lock goes.
   */
  target: LockTarget;
}

/**
 * What the export dialog returns.
 */
export interface IExportChoice {
  /**
   * The chosen mode.
   */
  mode: ExportMode;

  /**
   * The chosen target.
   */
  target: ExportTarget;

  /**
   * A spec (the default) or a lock.
   */
  kind?: ExportKind;

  /**
   * The lock's platforms and target (used when `kind` is `lock`; its
   * platforms also when `kind` is `capsule`).
   */
  lock?: ILockChoice;
}

let dialogCount = 0;

/**
 * The body of the export dialog: a mode and a target, or (choice "Lock for
 * platforms") the platforms to lock for and where the lock goes.
 */
export class ExportDialogBody
  extends Widget
  implements Dialog.IBodyWidget<IExportChoice>
{
  constructor(options: ExportDialogBody.IOptions) {
    super();
    this.addClass('jp-ReproDialog');
    this.node.dataset.testid = DialogTestIds.exportDialog;
    const intro = el(
      'p',
      'jp-ReproDialog-intro',
      `The environment of the kernel of ${options.notebookPath}.`
    );

    const kinds = el('div', 'jp-ReproDialog-kinds');
    kinds.setAttribute('role', 'radiogroup');
    kinds.setAttribute('aria-label', 'What to export');
    const group = `jp-ReproDialog-kind-${++dialogCount}`;
    const radio = (value: ExportKind, label: string, testId: string) => {
      const row = el('label', 'jp-ReproDialog-kind');
      const input = el('input', '');
      input.type = 'radio';
      input.name = group;
      input.value = value;
      input.dataset.testid = testId;
      row.append(input, el('span', '', label));
      kinds.append(row);
      return input;
    };
    this._specRadio = radio(
      'spec',
      'Export a spec (environment.yml)',
      DialogTestIds.exportSpec
    );
    this._lockRadio = radio(
      'lock',
      'Lock for platforms',
      DialogTestIds.exportLock
    );
    this._capsuleRadio = radio(
      'capsule',
      'Download capsule (offline)',
      DialogTestIds.exportCapsule
    );
    const kind = options.choice.kind ?? 'spec';
    this._specRadio.checked = kind === 'spec';
    this._lockRadio.checked = kind === 'lock';
    this._capsuleRadio.checked = kind === 'capsule';

    const mode = labelledSelect({
      label: 'Mode',
      testId: DialogTestIds.exportMode,
      choices: EXPORT_MODE_CHOICES,
      value: options.choice.mode
    });
    const target = labelledSelect({
      label: 'Target',
      testId: DialogTestIds.exportTarget,
      choices: EXPORT_TARGET_CHOICES,
      value: options.choice.target
    });
    this._hint = el('p', 'jp-ReproDialog-hint');
    this._mode = mode.select;
    this._target = target.select;
    this._mode.addEventListener('change', () => this._updateHint());
    this._target.addEventListener('change', () => this._updateHint());
    this._specFields = el('div', 'jp-ReproDialog-specFields');
    this._specFields.append(mode.row, target.row, this._hint);

    this._lockFields = this._createLockFields(options);
    this.node.append(intro, kinds, this._specFields, this._lockFields);
    for (const input of [
      this._specRadio,
      this._lockRadio,
      this._capsuleRadio
    ]) {
      input.addEventListener('change', () => this._updateKind());
    }
    this._updateHint();
    this._updateKind(false);
  }

  getValue(): IExportChoice {
    return {
      mode: this._mode.value as ExportMode,
      target: this._target.value as ExportTarget,
      kind: this._capsuleRadio.checked
        ? 'capsule'
        : this._lockRadio.checked
          ? 'lock'
          : 'spec',
      lock: {
        platforms: this._platforms
          .filter(input => input.checked)
          .map(input => input.value),
        target: this._lockTarget.value as LockTarget
      }
    };
  }

  protected onAfterAttach(): void {
    this._updateAcceptButton();
  }

  private _createLockFields(options: ExportDialogBody.IOptions): HTMLElement {
    const fields = el('fieldset', 'jp-ReproDialog-lockFields');
    fields.dataset.testid = DialogTestIds.lockOptions;
    fields.append(el('legend', 'jp-ReproDialog-fieldLabel', 'Platforms'));
    const { shown, checked } = platformChoices(
      options.currentPlatform ?? null,
      options.lockPlatforms ?? []
    );
    const grid = el('div', 'jp-ReproDialog-platforms');
    for (const platform of shown) {
      const row = el('label', 'jp-ReproDialog-platform');
      const input = el('input', '');
      input.type = 'checkbox';
      input.value = platform;
      input.checked = checked.includes(platform);
      input.dataset.testid = `${DialogTestIds.lockPlatformPrefix}${platform}`;
      input.addEventListener('change', () => this._updateLockHint());
      const name = el('span', '', platform);
      if (platform === options.currentPlatform) {
        row.title = "The environment's own platform: locked as installed";
      }
      row.append(input, name);
      grid.append(row);
      this._platforms.push(input);
    }
    fields.append(grid);
    const target = labelledSelect({
      label: 'Lock goes to',
      testId: DialogTestIds.lockTarget,
      choices: LOCK_TARGET_CHOICES,
      value: options.choice.lock?.target ?? 'metadata'
    });
    this._lockTarget = target.select;
    this._lockTargetRow = target.row;
    this._lockTarget.addEventListener('change', () => this._updateLockHint());
    this._lockHint = el('p', 'jp-ReproDialog-hint');
    this._lockHint.dataset.testid = DialogTestIds.lockHint;
    this._lockHint.setAttribute('aria-live', 'polite');
    this._currentPlatform = options.currentPlatform ?? null;
    fields.append(target.row, this._lockHint);
    return fields;
  }

  private _updateKind(notify = true): void {
    const lock = this._lockRadio.checked;
    const capsule = this._capsuleRadio.checked;
    this._specFields.hidden = lock || capsule;
    // The capsule reuses the platforms; it always goes to a download.
    this._lockFields.hidden = !lock && !capsule;
    this._lockTargetRow.hidden = capsule;
    this._updateLockHint(notify);
    this._updateAcceptButton();
  }

  private _updateLockHint(notify = true): void {
    const count = this.getValue().lock!.platforms.length;
    const capsule = this._capsuleRadio.checked;
    const lock = this._lockRadio.checked || capsule;
    let text: string;
    let invalid = false;
    if (count === 0) {
      text = 'Choose at least one platform.';
      invalid = lock;
    } else if (count > MAX_LOCK_PLATFORMS) {
      text = `At most ${MAX_LOCK_PLATFORMS} platforms can be locked at once.`;
      invalid = lock;
    } else if (capsule) {
      text =
        'One archive with the notebook, its lock and every package for the ' +
        'platforms checked, restored offline with "jupyter repro restore". ' +
        'Packages that cannot be packed are listed.';
    } else {
      const own = this._currentPlatform
        ? `The environment's own platform (${this._currentPlatform}) is locked as installed; `
        : "The environment's own platform is locked as installed; ";
      text =
        own +
        'the others are solved from its portable spec as of its last change. ' +
        'A platform that cannot be solved is left out and named.';
    }
    this._lockHint.textContent = text;
    // The dialog disables its accept button while an error is shown.
    this._lockHint.classList.toggle('jp-mod-error', invalid);
    if (notify) {
      this.node.dispatchEvent(new Event('input', { bubbles: true }));
    }
  }

  private _updateAcceptButton(): void {
    const accept = this.node
      .closest('.jp-Dialog')
      ?.querySelector<HTMLElement>('.jp-Dialog-button.jp-mod-accept');
    const label = accept?.querySelector('.jp-Dialog-buttonLabel');
    if (!accept || !label) {
      return;
    }
    const lock = this._lockRadio.checked;
    const capsule = this._capsuleRadio.checked;
    label.textContent = capsule ? 'Download' : lock ? 'Lock' : 'Export';
    const aria = capsule
      ? 'Pack the notebook and its packages for the platforms checked, then download the capsule'
      : lock
        ? 'Lock the environment for the platforms checked'
        : 'Export the environment';
    label.setAttribute('aria-label', aria);
    (label as HTMLElement).title = aria;
  }

  private _updateHint(): void {
    const { mode, target } = this.getValue();
    const modeTitle =
      EXPORT_MODE_CHOICES.find(c => c.value === mode)?.title ?? '';
    let extra = '';
    if (mode === 'explicit' && target === 'file') {
      extra = ' Saved as environment.explicit.txt beside the notebook.';
    } else if (mode === 'explicit' && target === 'metadata') {
      extra = ' The exact spec is embedded together with the URLs.';
    }
    this._hint.textContent = `${modeTitle}.${extra}`;
  }

  private _mode: HTMLSelectElement;
  private _target: HTMLSelectElement;
  private _hint: HTMLElement;
  private _specRadio: HTMLInputElement;
  private _lockRadio: HTMLInputElement;
  private _capsuleRadio: HTMLInputElement;
  private _lockTargetRow!: HTMLElement;
  private _specFields: HTMLElement;
  private _lockFields: HTMLElement;
  private _platforms: HTMLInputElement[] = [];
  private _lockTarget!: HTMLSelectElement;
  private _lockHint!: HTMLElement;
  private _currentPlatform: string | null = null;
}

/**
 * A namespace for `ExportDialogBody` statics.
 */
export namespace ExportDialogBody {
  /**
   * Options of the `ExportDialogBody` constructor.
   */
  export interface IOptions {
    /**
     * The notebook whose kernel's environment is exported.
     */
    notebookPath: string;

    /**
     * What is chosen at first (`kind` `lock`: the lock choice).
     */
    choice: IExportChoice;

    /**
     * The platforms checked at first (the `lockPlatforms` setting).
     */
    lockPlatforms?: readonly string[];

    /**
     * The environment's own platform as the server reported it, if known:
     * checked first.
     */
    currentPlatform?: string | null;
  }
}

/**
 * What a lock did, for the result message.
 */
export interface ILockOutcome {
  /**
   * What was locked (the first request's summary).
   */
  summary: ILockSummary | null;

  /**
   * What was done with the lock, one sentence each (`Embedded in a.ipynb
   * and saved.`, `Wrote dir/conda-lock.yml.`).
   */
  done: string[];

  /**
   * The error that stopped the lock, if one did.
   */
  error: string | null;
}

/**
 * The body of the lock dialog: progress while locking, then what was
 * locked, what was left out and why, or the error.
 */
export class LockProgressBody extends Widget {
  constructor(options: { platforms: readonly string[]; notebookPath: string }) {
    super();
    this.addClass('jp-ReproDialog');
    this.addClass('jp-ReproLock');
    this.node.dataset.testid = DialogTestIds.lockDialog;
    this.node.append(
      el(
        'p',
        'jp-ReproDialog-intro',
        `The environment of the kernel of ${options.notebookPath}, for ${options.platforms.join(', ')}.`
      )
    );
    this._progress = el(
      'p',
      'jp-ReproLock-progress',
      lockingText(options.platforms.length)
    );
    this._progress.dataset.testid = DialogTestIds.lockProgress;
    this._progress.dataset.state = 'running';
    this._progress.setAttribute('role', 'status');
    this._progress.setAttribute('aria-live', 'polite');
    this._step = el('p', 'jp-ReproDialog-hint', '');
    this._result = el('div', 'jp-ReproLock-result');
    this._result.dataset.testid = DialogTestIds.lockResult;
    this._result.hidden = true;
    this.node.append(this._progress, this._step, this._result);
  }

  /**
   * Whether the lock is over (done or failed).
   */
  get finished(): boolean {
    return this._progress.dataset.state !== 'running';
  }

  /**
   * Say what the lock is doing now (below the progress line).
   */
  setStep(text: string): void {
    this._step.textContent = text;
  }

  /**
   * Show the outcome: the platforms locked, each one skipped with its
   * reason, the warnings, what was written, and the error if any.
   */
  showOutcome(outcome: ILockOutcome, elapsedMs: number): void {
    const { summary, done, error } = outcome;
    const seconds = Math.max(1, Math.round(elapsedMs / 1000));
    this._progress.dataset.state = error ? 'failed' : 'done';
    this._progress.textContent = error
      ? 'The lock failed.'
      : `Locked in ${seconds} s.`;
    this._step.textContent = '';
    this._step.hidden = true;
    const result = this._result;
    result.replaceChildren();
    result.dataset.state = error ? 'failed' : 'done';
    result.dataset.locked = (summary?.platforms ?? []).join(' ');
    result.dataset.skipped = Object.keys(summary?.skipped ?? {}).join(' ');
    if (summary) {
      result.append(el('p', 'jp-ReproLock-locked', lockedText(summary)));
      const skipped = Object.entries(summary.skipped ?? {});
      if (skipped.length) {
        result.append(
          el(
            'p',
            'jp-ReproLock-heading',
            `Not locked for ${skipped.length} platform${skipped.length === 1 ? '' : 's'}:`
          )
        );
        const list = el('ul', 'jp-ReproLock-skipped');
        for (const [platform, reason] of skipped) {
          const item = el('li', 'jp-ReproLock-skippedItem');
          item.dataset.testid = DialogTestIds.lockSkipped;
          item.dataset.platform = platform;
          item.append(
            el('span', 'jp-ReproLock-platform', platform),
            document.createTextNode(`: ${reason}`)
          );
          list.append(item);
        }
        result.append(list);
      }
      if (summary.warnings?.length) {
        const list = el('ul', 'jp-ReproLock-warnings');
        for (const warning of summary.warnings) {
          const item = el('li', '', warning);
          item.dataset.testid = DialogTestIds.lockWarning;
          list.append(item);
        }
        result.append(list);
      }
    }
    for (const line of done) {
      result.append(el('p', 'jp-ReproLock-done', line));
    }
    if (error) {
      const node = el('p', 'jp-ReproPanel-message jp-ReproLock-error', '');
      node.dataset.testid = DialogTestIds.lockError;
      node.setAttribute('role', 'alert');
      node.append(
        el('strong', '', 'Could not lock the environment: '),
        document.createTextNode(error)
      );
      result.append(node);
    }
    result.hidden = false;
  }

  private _progress: HTMLElement;
  private _step: HTMLElement;
  private _result: HTMLElement;
}

/**
 * The body of the restore confirmation: the dry-run plan and the name of
 * the new environment.
 */
export class RestorePlanBody
  extends Widget
  implements Dialog.IBodyWidget<string>
{
  constructor(options: {
    plan: IRestorePlan;
    source: string;
    existingNames?: readonly string[];
    /**
     * Asks the server whether a name can be used (free and valid) and where
     * it would go; the name is checked as the user types.
     */
    checkName?: (name: string) => Promise<INameCheck>;
    /**
     * The name to show instead of the suggestion (typed earlier).
     */
    initialName?: string | null;
  }) {
    super();
    const { plan } = options;
    const existing = new Set(options.existingNames ?? []);
    // The server knows every envs dir: its suggestion wins over the list's.
    const suggested =
      plan.suggested_name ?? freeName(plan.name, existing) ?? plan.name;
    this._checkName = options.checkName ?? null;
    this.addClass('jp-ReproDialog');
    this.addClass('jp-ReproPlan');
    this.node.dataset.testid = DialogTestIds.restoreDialog;

    this.node.append(
      el('p', 'jp-ReproDialog-intro', `From ${options.source}.`)
    );

    const nameRow = el('label', 'jp-ReproDialog-field');
    nameRow.append(el('span', 'jp-ReproDialog-fieldLabel', 'Name'));
    this._name = el('input', 'jp-mod-styled jp-ReproDialog-input');
    this._name.type = 'text';
    this._name.value = options.initialName ?? suggested ?? '';
    this._name.placeholder = 'new environment name';
    this._name.setAttribute('aria-label', 'Name of the new environment');
    this._name.dataset.testid = DialogTestIds.restoreName;
    nameRow.append(this._name);
    this.node.append(nameRow);
    this._status = el('p', 'jp-ReproPlan-nameStatus', '');
    this._status.dataset.testid = DialogTestIds.restoreNameStatus;
    this._status.setAttribute('aria-live', 'polite');
    this.node.append(this._status);
    if (plan.conflict) {
      const kernels = plan.conflict.kernels.length
        ? ` (kernel ${plan.conflict.kernels.join(', ')})`
        : '';
      const what =
        plan.conflict.reason === 'environment'
          ? `An environment named ${plan.conflict.name} exists already at ${plan.conflict.prefix}${kernels}`
          : `${plan.conflict.prefix} exists already`;
      const note = el(
        'p',
        'jp-ReproPanel-message jp-mod-warning',
        `${what}: a restore never replaces it. The new environment is named ${suggested} unless you choose another name.`
      );
      note.dataset.testid = DialogTestIds.restoreConflict;
      note.setAttribute('role', 'alert');
      this.node.append(note);
    } else if (suggested !== plan.name) {
      const note = el(
        'p',
        'jp-ReproPanel-message jp-mod-warning',
        `An environment named ${plan.name} exists already: the new one is named ${suggested} unless you choose another name.`
      );
      note.setAttribute('role', 'alert');
      this.node.append(note);
    }

    const planNode = el('div', 'jp-ReproPlan-plan');
    planNode.dataset.testid = DialogTestIds.restorePlan;
    const facts = el('dl', 'jp-ReproPanel-details');
    const target = el('code', 'jp-ReproPanel-code', plan.target);
    target.dataset.testid = DialogTestIds.restoreTarget;
    this._target = target;
    this._originalName = plan.name;
    const targetDd = el('dd', 'jp-ReproPanel-value');
    targetDd.append(target);
    facts.append(
      el('dt', 'jp-ReproPanel-label', 'Target'),
      targetDd,
      el('dt', 'jp-ReproPanel-label', 'Engine'),
      el('dd', 'jp-ReproPanel-value', plan.engine),
      el('dt', 'jp-ReproPanel-label', 'Channels'),
      el(
        'dd',
        'jp-ReproPanel-value',
        plan.channels.length ? plan.channels.join(', ') : 'none'
      )
    );
    planNode.append(facts);

    for (const warning of plan.warnings) {
      const node = el('p', 'jp-ReproPanel-message jp-mod-warning', warning);
      node.setAttribute('role', 'alert');
      planNode.append(node);
    }

    planNode.append(
      el(
        'p',
        'jp-ReproPlan-heading',
        `${plan.packages.length} conda package${plan.packages.length === 1 ? '' : 's'}` +
          (plan.pip.length ? `, ${plan.pip.length} from pip` : '')
      )
    );
    const table = el('table', 'jp-ReproPlan-packages');
    const head = el('tr', '');
    for (const label of ['Package', 'Version', 'Build', 'Channel']) {
      head.append(el('th', '', label));
    }
    const thead = el('thead', '');
    thead.append(head);
    const tbody = el('tbody', '');
    for (const pkg of plan.packages) {
      const row = el('tr', '');
      row.dataset.package = pkg.name;
      row.append(
        el('td', '', pkg.name),
        el('td', '', pkg.version),
        el('td', '', pkg.build),
        el('td', '', pkg.channel ?? '')
      );
      tbody.append(row);
    }
    table.append(thead, tbody);
    planNode.append(table);
    if (plan.pip.length) {
      const pip = el('ul', 'jp-ReproPlan-pip');
      pip.setAttribute('aria-label', 'pip packages');
      for (const requirement of plan.pip) {
        pip.append(el('li', '', requirement));
      }
      planNode.append(pip);
    }
    this.node.append(planNode);

    const markStale = () => {
      const changed = this._name.value.trim() !== (this._originalName ?? '');
      this._target.classList.toggle('jp-mod-stale', changed);
      this._target.title = changed
        ? 'The target follows the new name when the restore starts.'
        : '';
    };
    this._name.addEventListener('input', () => {
      markStale();
      this._scheduleCheck();
    });
    markStale();
    this._scheduleCheck(0);
  }

  /**
   * The name typed by the user (empty: the plan's).
   */
  getValue(): string {
    return this._name.value.trim();
  }

  /**
   * The last answer about the name in the field: `true` free and valid,
   * `false` taken or invalid, `null` not known (yet).
   */
  get nameUsable(): boolean | null {
    return this._usable;
  }

  /**
   * A promise for the check of the name now in the field.
   */
  get checked(): Promise<void> {
    return this._pending;
  }

  private _scheduleCheck(delay = 250): void {
    if (this._timer !== null) {
      clearTimeout(this._timer);
    }
    this._usable = null;
    const name = this._name.value.trim();
    const local = localNameProblem(name);
    if (local !== null) {
      this._show(false, local);
      return;
    }
    if (!this._checkName) {
      return;
    }
    this._status.textContent = 'Checking the name…';
    this._status.dataset.state = 'checking';
    this._pending = new Promise<void>(resolve => {
      this._timer = setTimeout(() => {
        this._timer = null;
        void this._check(name).finally(resolve);
      }, delay);
    });
  }

  private async _check(name: string): Promise<void> {
    let answer: INameCheck;
    try {
      answer = await this._checkName!(name);
    } catch (reason) {
      this._status.textContent = `Could not check the name: ${String(reason)}`;
      this._status.dataset.state = 'unknown';
      return;
    }
    if (this._name.value.trim() !== name || this.isDisposed) {
      return; // the user typed on meanwhile: a newer check follows
    }
    if (answer.problem) {
      this._show(false, `Not a valid name: ${answer.problem}.`);
    } else if (answer.conflict) {
      const where =
        answer.conflict.reason === 'environment'
          ? `the environment at ${answer.conflict.prefix}`
          : answer.conflict.prefix;
      const instead = answer.suggested_name
        ? ` Try ${answer.suggested_name}.`
        : '';
      this._show(false, `Taken by ${where}.${instead}`);
    } else {
      this._show(true, `Free: the environment goes to ${answer.target}.`);
      if (answer.target) {
        this._target.textContent = answer.target;
        this._target.classList.remove('jp-mod-stale');
        this._target.title = '';
      }
    }
  }

  private _show(usable: boolean, text: string): void {
    this._usable = usable;
    this._status.textContent = text;
    this._status.dataset.state = usable ? 'free' : 'taken';
    this._name.setAttribute('aria-invalid', usable ? 'false' : 'true');
  }

  protected onAfterAttach(): void {
    this._name.focus();
  }

  private _name: HTMLInputElement;
  private _target: HTMLElement;
  private _originalName: string | null;
  private _status: HTMLElement;
  private _checkName: ((name: string) => Promise<INameCheck>) | null;
  private _usable: boolean | null = null;
  private _timer: ReturnType<typeof setTimeout> | null = null;
  private _pending: Promise<void> = Promise.resolve();
}

/**
 * What is wrong with a name before asking the server (conda's rules), or
 * `null`.
 */
export function localNameProblem(name: string): string | null {
  if (!name) {
    return 'Give the new environment a name.';
  }
  if (/[/:#\s]/.test(name) || [...name].some(c => c < ' ')) {
    return "Not a valid name: it cannot contain '/', ':', '#' or spaces.";
  }
  if (name === 'base' || name === 'root') {
    return `Not a valid name: ${name} is the root environment's name.`;
  }
  if (name.length > 100) {
    return 'Not a valid name: at most 100 characters.';
  }
  return null;
}

/**
 * `name`, or the first of `name-restored`, `name-restored-2`, ... that is
 * not in `taken`; `null` stays `null`.
 */
export function freeName(
  name: string | null,
  taken: ReadonlySet<string>
): string | null {
  if (name === null || !taken.has(name)) {
    return name;
  }
  let candidate = `${name}-restored`;
  for (let i = 2; taken.has(candidate); i++) {
    candidate = `${name}-restored-${i}`;
  }
  return candidate;
}

/**
 * Show a dialog whose accept button carries a `data-testid`.
 */
export function showDialogWithTestId<T>(
  options: Partial<Dialog.IOptions<T>>,
  acceptTestId: string
): Promise<Dialog.IResult<T>> {
  const dialog = new Dialog<T>(options);
  const accept = dialog.node.querySelector<HTMLElement>(
    '.jp-Dialog-button.jp-mod-accept'
  );
  if (accept) {
    accept.dataset.testid = acceptTestId;
  }
  return dialog.launch();
}

/**
 * The body of the capsule dialog: the pack job's progress, then what was
 * packed and what could not be (and why), or the error.
 */
export class PackProgressBody extends Widget {
  constructor(options: { platforms: readonly string[]; notebookPath: string }) {
    super();
    this.addClass('jp-ReproDialog');
    this.addClass('jp-ReproPack');
    this.node.dataset.testid = DialogTestIds.packDialog;
    const platforms = options.platforms.length
      ? options.platforms.join(', ')
      : "the environment's own platform";
    this.node.append(
      el(
        'p',
        'jp-ReproDialog-intro',
        `${options.notebookPath}, its lock and every package for ${platforms}.`
      )
    );
    this._progress = el('p', 'jp-ReproPack-progress', 'Starting…');
    this._progress.dataset.testid = DialogTestIds.packProgress;
    this._progress.dataset.state = 'running';
    this._progress.setAttribute('role', 'status');
    this._progress.setAttribute('aria-live', 'polite');
    this._result = el('div', 'jp-ReproPack-result');
    this._result.hidden = true;
    this.node.append(this._progress, this._result);
  }

  /**
   * Say how far the pack is (one line).
   */
  setProgress(text: string): void {
    this._progress.textContent = text;
  }

  /**
   * Show the outcome: `text`, then each package not packed with its reason.
   */
  showOutcome(
    state: 'done' | 'failed',
    text: string,
    missing: readonly { platform: string; name: string; why: string }[]
  ): void {
    this._progress.dataset.state = state;
    this._progress.textContent = text;
    const result = this._result;
    result.replaceChildren();
    if (missing.length) {
      result.append(
        el(
          'p',
          'jp-ReproLock-heading',
          `Not packed (${missing.length}): restore them by hand on the target.`
        )
      );
      const list = el('ul', 'jp-ReproPack-missing');
      for (const item of missing) {
        list.append(el('li', '', `${item.platform} ${item.name}: ${item.why}`));
      }
      result.append(list);
    }
    result.hidden = missing.length === 0;
  }

  private _progress: HTMLElement;
  private _result: HTMLElement;
}
