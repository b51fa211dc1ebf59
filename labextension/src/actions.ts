import { JupyterFrontEnd } from '@jupyterlab/application';
import {
  Dialog,
  Notification,
  showDialog,
  showErrorMessage
} from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { JSONExt, JSONValue } from '@lumino/coreutils';
import { Widget } from '@lumino/widgets';

import { lockedText, lockSteps, reportedPlatform } from './lock';
import {
  packDownloadUrl,
  packProgressText,
  packRequest,
  triggerDownload
} from './pack';
import { ServerJob } from './jobs';
import { besideCandidates } from './besideFiles';
import {
  keepOutputFor,
  kernelNameFor,
  notebookOverrides,
  ReproModel,
  stripsOnSave
} from './model';
import {
  ENVIRONMENTS_PANEL_ID,
  IJob,
  INameConflict,
  IPackRequest,
  IPackResult,
  IRestoreRequest,
  IRestoreResult,
  IVerifyCell,
  IVerifyJob,
  IVerifyRequest,
  RestoreSource
} from './tokens';
import {
  CellMarks,
  cellStates,
  findCellIndex,
  IMarkableNotebook,
  sourcesDiffer,
  withVerified
} from './verify';
import { badgeText, cellLabel } from './widgets/verifyView';
import { downloadText } from './widgets/environmentDetails';
import {
  DialogTestIds,
  ExportDialogBody,
  IExportChoice,
  ILockChoice,
  ILockOutcome,
  LockProgressBody,
  PackProgressBody,
  RestorePlanBody,
  showDialogWithTestId
} from './widgets/dialogs';

/**
 * The key of the embedded environment in notebook metadata.
 */
export const METADATA_KEY = 'jupyter_repro';

/**
 * File names the "Restore environment from this file" menu item is shown
 * for: `environment.yml`, `environment-gpu.yaml`, ..., and lock files:
 * `conda-lock.yml`, `analysis.conda-lock.yml`, `pixi.lock`.
 */
export const ENVIRONMENT_FILE_PATTERN =
  /^(?:environment[^/]*\.ya?ml|(?:[^/]+\.)?conda-lock\.ya?ml|pixi\.lock)$/i;

/**
 * Whether the menu item "Restore environment from this file" applies.
 */
export function isEnvironmentFile(path: string): boolean {
  return ENVIRONMENT_FILE_PATTERN.test(PathExt.basename(path));
}

/**
 * Run `action`, showing any error in a dialog with the server's message:
 * the returned promise never rejects.
 */
export async function reportErrors(
  title: string,
  action: () => Promise<unknown>
): Promise<void> {
  try {
    await action();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    try {
      await showErrorMessage(title, message);
    } catch (reason) {
      console.error(`jupyter-repro: ${title}: ${message}`, reason);
    }
  }
}

/**
 * The user actions behind the commands: export, restore, kernel switch and
 * strip toggle. Views call them through the commands only.
 */
export class ReproActions {
  constructor(options: ReproActions.IOptions) {
    this._app = options.app;
    this._model = options.model;
    this._tracker = options.tracker;
    this._docManager = options.docManager;
  }

  /**
   * The active notebook panel, or an error saying to open one.
   */
  currentNotebook(): NotebookPanel {
    const panel = this._tracker?.currentWidget ?? null;
    if (!panel) {
      throw new Error(
        'Open a notebook first: this acts on the active notebook.'
      );
    }
    return panel;
  }

  /**
   * Ask for a mode and target, then export the active notebook's
   * environment there; or (choice "Lock for platforms", preselected with
   * `lock`) lock it for the platforms chosen.
   */
  async exportEnvironment(options: { lock?: boolean } = {}): Promise<void> {
    const panel = this.currentNotebook();
    await panel.context.ready;
    const path = panel.context.path;
    const settings = this._model.settings;
    const body = new ExportDialogBody({
      notebookPath: path,
      choice: {
        mode: settings.defaultExportMode,
        target: settings.defaultExportTarget,
        kind: options.lock ? 'lock' : 'spec'
      },
      lockPlatforms: settings.lockPlatforms,
      currentPlatform:
        this._model.status?.platform ??
        this._hostPlatform ??
        reportedPlatform(panel.model?.getMetadata(METADATA_KEY))
    });
    const result = await showDialogWithTestId<IExportChoice>(
      {
        title: 'Export environment',
        body,
        buttons: [
          Dialog.cancelButton(),
          Dialog.okButton({
            label: 'Export',
            ariaLabel: 'Export the environment'
          })
        ],
        focusNodeSelector: options.lock
          ? 'input[type="radio"]:checked'
          : 'select'
      },
      DialogTestIds.exportConfirm
    );
    if (!result.button.accept || !result.value) {
      return;
    }
    if (result.value.kind === 'lock' && result.value.lock) {
      await this.lockEnvironment(panel, result.value.lock);
      return;
    }
    if (result.value.kind === 'capsule') {
      await this.downloadCapsule(panel, result.value.lock?.platforms ?? []);
      return;
    }
    const { mode, target } = result.value;
    // The server finds the kernel in the notebook file: it must be the
    // kernel shown. Saved only then: a save may strip outputs.
    await this._saveIfStale(panel, 'kernelspec');
    switch (target) {
      case 'download':
        await this._download(path, mode);
        break;
      case 'file':
        await this._saveBeside(path, mode);
        break;
      case 'metadata':
        await this._embed(panel, mode);
        break;
    }
  }

  /**
   * Lock the environment of `panel`'s kernel for the chosen platforms and
   * put the lock where chosen, in a dialog that shows the progress, then
   * what was locked and what was left out (and why) or the error. Embedding
   * goes through the open notebook (then saved), so the file never changes
   * under it. Errors of the server are shown and kept in the outcome; the
   * promise rejects only when no platform is chosen.
   */
  async lockEnvironment(
    panel: NotebookPanel,
    choice: ILockChoice
  ): Promise<ILockOutcome> {
    const { platforms } = choice;
    if (platforms.length === 0) {
      throw new Error('Choose at least one platform to lock for.');
    }
    const path = panel.context.path;
    const name = PathExt.basename(path);
    const body = new LockProgressBody({ platforms, notebookPath: path });
    const dialog = new Dialog<unknown>({
      title: 'Lock environment',
      body,
      buttons: [
        Dialog.okButton({
          label: 'Close',
          ariaLabel: 'Close this dialog (a lock under way goes on)'
        })
      ]
    });
    dialog.node
      .querySelector<HTMLElement>('.jp-Dialog-button.jp-mod-accept')
      ?.setAttribute('data-testid', DialogTestIds.lockClose);
    let shown = true;
    dialog.launch().then(
      () => (shown = false),
      () => (shown = false)
    );

    const started = Date.now();
    const outcome: ILockOutcome = { summary: null, done: [], error: null };
    try {
      const steps = lockSteps(choice.target);
      // The server finds the kernel, and the embedded value a lock joins,
      // in the notebook file: they must be those shown.
      await this._saveIfStale(panel, 'kernelspec');
      if (steps.some(step => step.kind === 'metadata')) {
        await this._saveIfStale(panel, METADATA_KEY);
      }
      for (const step of steps) {
        if (step.kind === 'metadata') {
          body.setStep(
            `Solving for each platform, then embedding the lock in ${name}.`
          );
          const answer = await this._model.client.lockMetadata(path, platforms);
          outcome.summary = outcome.summary ?? answer.summary;
          const notebook = panel.model;
          if (!notebook || panel.isDisposed) {
            throw new Error(`${path} was closed before the lock finished.`);
          }
          this._hostPlatform =
            reportedPlatform(answer.metadata) ?? this._hostPlatform;
          // Into the open model, then saved by its context (see _embed).
          notebook.setMetadata(METADATA_KEY, answer.metadata);
          await panel.context.save();
          outcome.done.push(`Embedded in ${name} and saved.`);
        } else {
          body.setStep(
            `Solving for each platform, then writing ${step.filename} beside the notebook.`
          );
          const answer = await this._model.client.writeLock(path, {
            platforms,
            target: 'file',
            format: step.format
          });
          outcome.summary = outcome.summary ?? answer.summary;
          for (const written of answer.written) {
            // An editor showing the file would see it "changed on disk".
            const open = this._docManager?.findWidget(written);
            if (open) {
              await open.context.revert();
            }
            outcome.done.push(`Wrote ${written}.`);
          }
        }
      }
    } catch (error) {
      outcome.error = error instanceof Error ? error.message : String(error);
    }
    body.showOutcome(outcome, Date.now() - started);
    if (!shown) {
      // The dialog was closed meanwhile: say it where it is seen.
      const what = outcome.summary ? lockedText(outcome.summary) : '';
      if (outcome.error) {
        Notification.error(
          `Could not lock the environment of ${name}: ${outcome.error}`,
          { autoClose: false }
        );
      } else {
        const skipped = Object.keys(outcome.summary?.skipped ?? {});
        const left = skipped.length
          ? ` Not locked: ${skipped.join(', ')}.`
          : '';
        Notification.success(`${name}: ${what}${left}`, { autoClose: 8000 });
      }
    }
    void this._model.refreshActiveNotebook();
    return outcome;
  }

  /**
   * Pack `panel`'s notebook, its lock and every package for `platforms`
   * into a capsule on the server (`POST repro/pack`, a job), showing its
   * progress in a dialog, then let the browser download it (`GET
   * repro/jobs/{id}/download`). Closing the dialog does not stop the pack:
   * the download starts when it is done. Resolves with the finished job
   * (`null` when it could not start: the error is shown).
   */
  async downloadCapsule(
    panel: NotebookPanel,
    platforms: readonly string[]
  ): Promise<IJob<IPackResult> | null> {
    const path = panel.context.path;
    const name = PathExt.basename(path);
    const body = new PackProgressBody({ platforms, notebookPath: path });
    const dialog = new Dialog<unknown>({
      title: 'Download capsule',
      body,
      buttons: [
        Dialog.okButton({
          label: 'Close',
          ariaLabel: 'Close this dialog (the pack goes on and downloads)'
        })
      ]
    });
    dialog.node
      .querySelector<HTMLElement>('.jp-Dialog-button.jp-mod-accept')
      ?.setAttribute('data-testid', DialogTestIds.packClose);
    let shown = true;
    dialog.launch().then(
      () => (shown = false),
      () => (shown = false)
    );
    const client = this._model.client;
    const request: IPackRequest = packRequest(path, platforms);
    let job: IJob<IPackResult>;
    try {
      // The server reads the kernel and the embedded lock from the file.
      await this._saveIfStale(panel, 'kernelspec');
      await this._saveIfStale(panel, METADATA_KEY);
      const started = await client.startPack(request);
      const poll = new ServerJob<IPackRequest, IPackResult>({
        client,
        job: started,
        request
      });
      body.setProgress(packProgressText(started));
      poll.changed.connect(() => body.setProgress(packProgressText(poll.job)));
      job = await poll.finished;
      poll.dispose();
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      body.showOutcome('failed', `The pack could not start: ${message}`, []);
      if (!shown) {
        Notification.error(`Could not pack ${name}: ${message}`, {
          autoClose: false
        });
      }
      return null;
    }
    const result = job.result;
    if (job.state !== 'succeeded' || !result) {
      const text = packProgressText(job);
      body.showOutcome('failed', text, []);
      if (!shown) {
        Notification.error(`${name}: ${text}`, { autoClose: false });
      }
      return job;
    }
    triggerDownload(
      packDownloadUrl(client.serverSettings, job.id),
      result.filename
    );
    const text = `${packProgressText(job)} The download has started.`;
    body.showOutcome('done', text, result.missing ?? []);
    if (!shown) {
      const left = result.missing?.length
        ? ` Not packed: ${result.missing.map(m => m.name).join(', ')}.`
        : '';
      Notification.success(`${name}: ${text}${left}`, { autoClose: 8000 });
    }
    return job;
  }

  /**
   * Restore the environment embedded in the active notebook.
   */
  async restoreFromNotebook(): Promise<void> {
    const panel = this.currentNotebook();
    await panel.context.ready;
    const embedded = panel.model?.getMetadata(METADATA_KEY) as
      { environment?: unknown; lock?: unknown } | undefined;
    const carries =
      !!embedded &&
      (typeof embedded.environment === 'object' ||
        typeof embedded.lock === 'object');
    if (!carries) {
      // The other place a notebook's environment travels: beside it (a lock
      // first, as the server prefers).
      for (const beside of besideCandidates(panel.context.path)) {
        if (await this._exists(beside)) {
          await this.restoreFromFile(beside);
          return;
        }
      }
      throw new Error(
        'This notebook carries no environment and has no lock file or ' +
          'environment.yml beside it. Export or lock it first (target "Embed ' +
          'in the notebook" or "Save beside the notebook"), or restore from ' +
          'another environment file (file browser: right-click it).'
      );
    }
    // The server reads the embedded spec from the file.
    await this._saveIfStale(panel, METADATA_KEY);
    const path = panel.context.path;
    await this.restore({ notebook: path }, `the notebook ${path}`);
  }

  /**
   * Restore from an environment file (server-root-relative path).
   */
  async restoreFromFile(path: string): Promise<void> {
    await this.restore({ file: path }, path);
  }

  /**
   * Dry run, confirmation (with the plan and an editable name), then the
   * job, followed in the Environments panel.
   */
  async restore(
    source: RestoreSource,
    description: string
  ): Promise<IJob | null> {
    if (this._model.environmentsPhase === 'idle') {
      // The names taken, for the name the dialog suggests.
      await this._model.refreshEnvironments();
    }
    const plan = await this._model.planRestore({ source });
    if (
      plan.conflict?.reason === 'environment' &&
      plan.conflict.kernels.length
    ) {
      // The notebook's environment is here already: using it is what most
      // people want; a copy is for trying changes without touching it.
      const choice = await this._existingEnvironment(plan.conflict, source);
      if (choice !== 'copy') {
        return null;
      }
    }
    let typed: string | null = null;
    for (;;) {
      const body: RestorePlanBody = new RestorePlanBody({
        plan,
        source: description,
        existingNames: this._model.environments.map(env => env.name),
        checkName: name => this._model.client.checkRestoreName(name),
        initialName: typed
      });
      const result: Dialog.IResult<string> = await showDialogWithTestId<string>(
        {
          title: 'Restore environment',
          body,
          buttons: [
            Dialog.cancelButton(),
            Dialog.okButton({
              label: 'Restore',
              ariaLabel: 'Create the environment as planned'
            })
          ],
          focusNodeSelector: 'input'
        },
        DialogTestIds.restoreConfirm
      );
      if (!result.button.accept) {
        return null;
      }
      typed = result.value || plan.name;
      await body.checked;
      if (body.nameUsable !== false) {
        break;
      }
      // A taken or invalid name: the dialog again, with the name and why.
    }
    const name = typed;
    const request: IRestoreRequest = name ? { source, name } : { source };
    this._app.shell.activateById(ENVIRONMENTS_PANEL_ID);
    const job = await this._model.startRestore(request);
    const done = await job.finished;
    if (done.state === 'succeeded') {
      // The new environment's kernel: make it known to the kernel picker.
      try {
        await this._app.serviceManager.kernelspecs.refreshSpecs();
      } catch (reason) {
        console.warn('jupyter-repro: could not refresh kernelspecs.', reason);
      }
    }
    return done;
  }

  /**
   * Whether a notebook is open whose kernel could be switched to a
   * restored environment.
   */
  canSwitchKernel(request: IRestoreRequest): boolean {
    return this._targetNotebook(request) !== null;
  }

  /**
   * Switch the kernel of the restore's notebook (else the active one) to
   * the kernel of the restored environment.
   */
  async switchKernel(
    result: IRestoreResult,
    request: IRestoreRequest
  ): Promise<void> {
    const panel = this._targetNotebook(request);
    if (!panel) {
      throw new Error('Open a notebook to switch its kernel.');
    }
    const kernelspecs = this._app.serviceManager.kernelspecs;
    await kernelspecs.refreshSpecs();
    const specs = kernelspecs.specs?.kernelspecs ?? {};
    const byPrefix = Object.values(specs).find(
      spec => spec?.metadata?.['conda_env_path'] === result.prefix
    );
    const name = byPrefix?.name ?? kernelNameFor(result.name ?? null);
    if (!specs[name]) {
      throw new Error(
        `The server does not list the kernel ${name} of ${result.prefix} ` +
          'yet. Refresh the kernel list and choose it in the kernel picker.'
      );
    }
    await panel.sessionContext.changeKernel({ name });
    Notification.success(
      `${PathExt.basename(panel.context.path)} now runs on ${name}.`,
      { autoClose: 5000 }
    );
  }

  /**
   * Toggle whether saving strips the active notebook's outputs, through
   * its `metadata.keep_output`.
   */
  async toggleStripOnSave(): Promise<void> {
    const panel = this.currentNotebook();
    const notebook = panel.model;
    const policy = this._model.stripPolicy;
    if (!notebook) {
      return;
    }
    if (!policy) {
      throw new Error(
        this._model.stripPolicyError?.message ??
          'The strip policy of this notebook is not loaded yet.'
      );
    }
    if (!policy.on_save) {
      await showDialog({
        title: 'Outputs are not stripped on save',
        body:
          'Stripping on save is off in the configuration (server ' +
          'configuration or [tool.jupyter_repro.strip] in pyproject.toml); ' +
          'a notebook cannot turn it on.',
        buttons: [Dialog.okButton({ label: 'Close' })]
      });
      return;
    }
    if (!notebookOverrides(policy)) {
      await showDialog({
        title: 'The strip policy is fixed',
        body:
          'The server configuration does not let notebooks override the ' +
          'strip policy (notebook metadata is ignored).',
        buttons: [Dialog.okButton({ label: 'Close' })]
      });
      return;
    }
    const strips = stripsOnSave(policy, notebook.getMetadata('keep_output'));
    const next = keepOutputFor(policy, !strips);
    if (next === undefined) {
      notebook.deleteMetadata('keep_output');
    } else {
      notebook.setMetadata('keep_output', next);
    }
    notebook.dirty = true;
  }

  /**
   * Whether saving strips the active notebook's outputs (`false` when
   * unknown), for the command's toggled state.
   */
  isStripping(): boolean {
    const notebook = this._tracker?.currentWidget?.model;
    const policy = this._model.stripPolicy;
    return !!notebook && !!policy
      ? stripsOnSave(policy, notebook.getMetadata('keep_output'))
      : false;
  }

  /**
   * Verify that the active notebook reproduces: the server runs the saved
   * file on a kernel of its own (the kernel the notebook's session runs,
   * unless `kernel` or `restore` say otherwise) and compares its outputs.
   * Progress and the result show in the Environments panel; the notebook's
   * cells are marked with their status as they run. An unsaved notebook is
   * saved first if its user agrees (the server reads the file).
   */
  async verifyNotebook(
    options: { restore?: boolean; timeout?: number; kernel?: string } = {}
  ): Promise<IVerifyJob | null> {
    const panel = this.currentNotebook();
    await panel.context.ready;
    if (await this._unsavedCode(panel)) {
      const choice = await showDialog({
        title: 'Verify the saved notebook?',
        body:
          'The notebook has unsaved changes to its cells. Verification runs ' +
          'the notebook as saved; save it first to include them.',
        buttons: [
          Dialog.cancelButton(),
          Dialog.createButton({
            label: 'Verify saved version',
            ariaLabel: 'Verify the notebook as it was last saved',
            accept: false
          }),
          Dialog.okButton({
            label: 'Save and verify',
            ariaLabel: 'Save the notebook, then verify it'
          })
        ]
      });
      if (choice.button.accept) {
        await panel.context.save();
      } else if (choice.button.label !== 'Verify saved version') {
        return null;
      }
    }
    const request: IVerifyRequest = { notebook: panel.context.path };
    if (options.restore) {
      request.restore = true;
    } else {
      const kernel =
        options.kernel ?? panel.sessionContext.session?.kernel?.name;
      if (kernel) {
        request.kernel = kernel;
      }
    }
    if (typeof options.timeout === 'number' && options.timeout > 0) {
      request.timeout = options.timeout;
    }
    this._app.shell.activateById(ENVIRONMENTS_PANEL_ID);
    const job = await this._model.startVerify(request);
    this._markCells(job, panel);
    return job;
  }

  /**
   * Select and show the notebook cell a verification reported (by its id,
   * else its position), opening the notebook if it is not open.
   */
  async jumpToCell(job: IVerifyJob, cell: IVerifyCell): Promise<void> {
    const path = job.request.notebook;
    let panel = this._notebookAt(path);
    if (!panel && this._docManager) {
      const widget = this._docManager.openOrReveal(path);
      panel = widget instanceof NotebookPanel ? widget : null;
    }
    if (!panel) {
      throw new Error(`Open ${path} to see its cells.`);
    }
    await panel.context.ready;
    this._app.shell.activateById(panel.id);
    const notebook = panel.content;
    const index = findCellIndex(
      notebook.widgets.map(widget => widget.model.id),
      cell
    );
    if (index < 0) {
      throw new Error(
        `${cellLabel(cell)} of the verification is no longer in ${PathExt.basename(path)}.`
      );
    }
    notebook.mode = 'command';
    notebook.deselectAll();
    notebook.activeCellIndex = index;
    await notebook.scrollToCell(notebook.widgets[index], 'center');
    notebook.node.focus();
  }

  /**
   * Whether the notebook of a verification is open, so its record can be
   * written into it.
   */
  canRecordVerification(job: IVerifyJob): boolean {
    return this._notebookAt(job.request.notebook) !== null;
  }

  /**
   * Write the record of a succeeded verification (the last one by default)
   * into its open notebook's `metadata.jupyter_repro.verified`, then save
   * the notebook. Only ever on the user's request. Resolves with `true`.
   */
  async recordVerification(
    job: IVerifyJob | null = this._model.verifyJob
  ): Promise<boolean> {
    const report = job?.job.state === 'succeeded' ? job.job.result : null;
    if (!job || !report?.verified_record) {
      throw new Error(
        'There is no finished verification to record: verify the notebook first.'
      );
    }
    const path = job.request.notebook;
    const panel = this._notebookAt(path);
    if (!panel) {
      throw new Error(`Open ${path} to record its verification.`);
    }
    await panel.context.ready;
    const notebook = panel.model;
    if (!notebook || panel.isDisposed) {
      throw new Error(`${path} was closed.`);
    }
    // Into the open model, then saved by its context: no "file changed on
    // disk" conflict as a write on the server would cause.
    notebook.setMetadata(
      METADATA_KEY,
      withVerified(notebook.getMetadata(METADATA_KEY), report.verified_record)
    );
    await panel.context.save();
    Notification.success(
      `Recorded in ${PathExt.basename(path)}: ${badgeText(report)}.`,
      { autoClose: 5000 }
    );
    return true;
  }

  /**
   * Remove the verification's marks from the notebook's cells.
   */
  clearVerifyMarks(): void {
    this._marks.clear();
  }

  private _markCells(job: IVerifyJob, panel: NotebookPanel): void {
    this._marks.clear();
    const update = () => {
      if (panel.isDisposed || job.isDisposed) {
        return;
      }
      this._marks.show(markable(panel), cellStates(job.job));
    };
    job.changed.connect(update);
    update();
  }

  /**
   * Whether the open notebook's code differs from the saved file's (what
   * the server runs); only asked of a notebook with unsaved changes.
   */
  private async _unsavedCode(panel: NotebookPanel): Promise<boolean> {
    if (!panel.context.model.dirty) {
      return false;
    }
    const saved = await this._app.serviceManager.contents.get(
      panel.context.path,
      { content: true, type: 'notebook' }
    );
    const cells = (saved.content as { cells?: unknown })?.cells;
    const open = panel.content.widgets.map(
      widget =>
        [widget.model.type, widget.model.sharedModel.getSource()] as const
    );
    return !Array.isArray(cells) || sourcesDiffer(cells, open);
  }

  private _notebookAt(path: string): NotebookPanel | null {
    return this._tracker?.find(panel => panel.context.path === path) ?? null;
  }

  private async _download(path: string, mode: IExportChoice['mode']) {
    const { text } = await this._model.client.notebookSpec(path, mode);
    const explicit = mode === 'explicit';
    const filename = explicit ? 'environment.explicit.txt' : 'environment.yml';
    downloadText(text, filename, explicit ? 'text/plain' : 'text/yaml');
  }

  private async _saveBeside(path: string, mode: IExportChoice['mode']) {
    let written: string;
    if (mode === 'explicit') {
      // The server writes only environment.yml files: write the list here.
      const { text } = await this._model.client.notebookSpec(path, mode);
      written = PathExt.join(PathExt.dirname(path), 'environment.explicit.txt');
      await this._app.serviceManager.contents.save(written, {
        type: 'file',
        format: 'text',
        content: text
      });
    } else {
      const result = await this._model.client.writeNotebookEnvironment(path, {
        target: 'file',
        mode,
        filename: 'environment.yml'
      });
      written = result.written[0];
    }
    // An editor already showing the file would otherwise see it "changed
    // on disk" at its next save.
    const open = this._docManager?.findWidget(written);
    if (open) {
      await open.context.revert();
    }
    if (this._docManager) {
      this._docManager.openOrReveal(written);
    }
    Notification.success(`Saved ${written}.`, { autoClose: 4000 });
    void this._model.refreshActiveNotebook();
  }

  private async _embed(panel: NotebookPanel, mode: IExportChoice['mode']) {
    const path = panel.context.path;
    const value = await this._model.client.embeddedMetadata(path, mode);
    const notebook = panel.model;
    if (!notebook || panel.isDisposed) {
      throw new Error(`${path} was closed before the export finished.`);
    }
    this._hostPlatform = reportedPlatform(value) ?? this._hostPlatform;
    // Into the open model, then saved by its context: no "file changed on
    // disk" conflict as a write on the server would cause.
    notebook.setMetadata(METADATA_KEY, value);
    await panel.context.save();
    Notification.success(
      `The environment is embedded in ${PathExt.basename(path)}.`,
      { autoClose: 4000 }
    );
    await this._model.refreshActiveNotebook();
  }

  /**
   * Save the notebook if the file on the server holds another
   * `metadata[key]` than the open model.
   */
  private async _saveIfStale(panel: NotebookPanel, key: string) {
    if (!panel.context.model.dirty) {
      return;
    }
    const saved = await this._app.serviceManager.contents.get(
      panel.context.path,
      { content: true, type: 'notebook' }
    );
    const onDisk = (saved.content as { metadata?: Record<string, unknown> })
      ?.metadata?.[key];
    const open = panel.model?.getMetadata(key);
    if (
      !JSONExt.deepEqual(
        (onDisk ?? null) as JSONValue,
        (open ?? null) as JSONValue
      )
    ) {
      await panel.context.save();
    }
  }

  /**
   * The notebook's environment exists already: use it (switch the notebook
   * to its kernel), restore a copy, or cancel.
   */
  private async _existingEnvironment(
    conflict: INameConflict,
    source: RestoreSource
  ): Promise<'use' | 'copy' | 'cancel'> {
    const panel = this._targetNotebook({ source });
    const kernel = conflict.kernels[0];
    const buttons = [
      Dialog.cancelButton(),
      Dialog.createButton({
        label: 'Restore a copy',
        ariaLabel: 'Restore a copy under a new name'
      })
    ];
    if (panel) {
      buttons.push(
        Dialog.okButton({
          label: `Use ${conflict.name}`,
          ariaLabel: `Switch the notebook to the kernel ${kernel}`
        })
      );
    }
    const body = document.createElement('div');
    body.dataset.testid = DialogTestIds.restoreExisting;
    body.textContent =
      `The environment ${conflict.name} exists already at ${conflict.prefix} ` +
      `(kernel ${kernel}). ` +
      (panel
        ? `Use it for ${PathExt.basename(panel.context.path)}, or restore a copy under a new name.`
        : 'Restore a copy under a new name?');
    const result = await showDialog({
      title: 'Environment already here',
      body: new Widget({ node: body }),
      buttons
    });
    if (result.button.accept && panel) {
      await panel.sessionContext.changeKernel({ name: kernel });
      Notification.success(
        `${PathExt.basename(panel.context.path)} now runs on ${kernel}.`,
        { autoClose: 5000 }
      );
      return 'use';
    }
    return result.button.label === 'Restore a copy' ? 'copy' : 'cancel';
  }

  private _targetNotebook(request: IRestoreRequest): NotebookPanel | null {
    const source = request.source;
    if ('notebook' in source && this._tracker) {
      const found = this._tracker.find(
        panel => panel.context.path === source.notebook
      );
      if (found) {
        return found;
      }
    }
    return this._tracker?.currentWidget ?? null;
  }

  private _app: JupyterFrontEnd;
  private _model: ReproModel;
  private _tracker: INotebookTracker | null;
  private async _exists(path: string): Promise<boolean> {
    try {
      await this._app.serviceManager.contents.get(path, { content: false });
      return true;
    } catch {
      return false;
    }
  }

  private _docManager: IDocumentManager | null;
  private _marks = new CellMarks();
  /**
   * The platform of the environments here, as the server last reported it
   * (an export's or a lock's `exported.platform`).
   */
  private _hostPlatform: string | null = null;
}

/**
 * The cells of a notebook panel, for `CellMarks`.
 */
function markable(panel: NotebookPanel): IMarkableNotebook {
  const widgets = panel.content.widgets;
  return {
    nodes: widgets.map(widget => widget.node),
    ids: widgets.map(widget => widget.model.id)
  };
}

/**
 * A namespace for `ReproActions` statics.
 */
export namespace ReproActions {
  /**
   * Options of the `ReproActions` constructor.
   */
  export interface IOptions {
    /**
     * The application (shell, service manager).
     */
    app: JupyterFrontEnd;

    /**
     * The model (REST client, settings, restore jobs).
     */
    model: ReproModel;

    /**
     * The notebook tracker, when the notebook plugin is there.
     */
    tracker: INotebookTracker | null;

    /**
     * The document manager, to open saved files.
     */
    docManager: IDocumentManager | null;
  }
}
