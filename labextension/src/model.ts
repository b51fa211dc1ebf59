import { ServerConnection } from '@jupyterlab/services';
import { JSONExt, JSONObject } from '@lumino/coreutils';
import { ISignal, Signal } from '@lumino/signaling';

import { ReproClient } from './client';
import { RestoreJob, toReproError, VerifyJob } from './jobs';
import { DEFAULT_LOCK_PLATFORMS } from './lock';
import { ReproRequestError } from './request';
import {
  ExportMode,
  IActiveNotebook,
  IDrift,
  IDriftRequest,
  IEnvironmentDetails,
  IEnvironmentSummary,
  IReproError,
  IReproModel,
  IReproSettings,
  IRestoreJob,
  IRestorePlan,
  IRestoreRequest,
  IServerStatus,
  IStripPolicy,
  IVerifyJob,
  IVerifyRequest,
  StatusPhase
} from './tokens';
import { FRONTEND_VERSION } from './version';

/**
 * The settings used until the setting registry has loaded.
 */
export const DEFAULT_SETTINGS: Readonly<IReproSettings> = Object.freeze({
  defaultExportMode: 'portable',
  defaultExportTarget: 'download',
  lockPlatforms: [...DEFAULT_LOCK_PLATFORMS]
});

/**
 * The words of an environments filter, lower-cased.
 */
export function filterWords(filter: string): string[] {
  return filter.toLowerCase().split(/\s+/).filter(Boolean);
}

/**
 * The lower-cased text an environment is matched against: name, kind,
 * Python version, kernels and prefix.
 */
export function searchText(env: IEnvironmentSummary): string {
  return [
    env.name,
    env.kind,
    env.python_version ? `python ${env.python_version}` : '',
    ...env.kernels,
    env.prefix,
    // Typing "shared" finds the administrator's environments.
    env.shared ? 'shared' : ''
  ]
    .join(' ')
    .toLowerCase();
}

/**
 * Whether every word is found in `text` (an empty filter matches all).
 */
export function matchesWords(text: string, words: readonly string[]): boolean {
  return words.every(word => text.includes(word));
}

/**
 * The environments matching `filter`, in their order.
 */
export function filterEnvironments(
  environments: readonly IEnvironmentSummary[],
  filter: string
): IEnvironmentSummary[] {
  const words = filterWords(filter);
  if (words.length === 0) {
    return environments.slice();
  }
  return environments.filter(env => matchesWords(searchText(env), words));
}

/**
 * The kernel name jupyter-repro gives the Python kernel of a named
 * environment (DESIGN "Kernel names", compatible with nb_conda_kernels).
 */
export function kernelNameFor(envName: string | null, isBase = false): string {
  if (isBase || envName === null || envName === 'base') {
    return 'conda-base-py';
  }
  return `conda-env-${envName}-py`.replace(/[^a-zA-Z0-9._-]/g, '_');
}

/**
 * Whether saving strips outputs, given the configured policy and the
 * notebook's own `metadata.keep_output` (nbstripout semantics).
 */
export function stripsOnSave(
  policy: IStripPolicy,
  notebookKeepOutput: unknown
): boolean {
  const keep =
    typeof notebookKeepOutput === 'boolean' && notebookOverrides(policy)
      ? notebookKeepOutput
      : policy.keep_output;
  return policy.on_save && !keep;
}

/**
 * Whether the notebook's own metadata may override the configured policy
 * (the server's `options.notebook_overrides`, true when absent).
 */
export function notebookOverrides(policy: IStripPolicy): boolean {
  return policy.options?.['notebook_overrides'] !== false;
}

/**
 * The notebook-level `keep_output` that makes saving strip (`strip`) or
 * keep outputs; `undefined` means "remove the key".
 */
export function keepOutputFor(
  policy: IStripPolicy,
  strip: boolean
): boolean | undefined {
  if (!strip) {
    return true;
  }
  return policy.keep_output ? false : undefined;
}

/**
 * Whether two `IActiveNotebook.embedded` values are the same (`undefined`,
 * "read the file", differs from every value).
 */
export function sameEmbedded(
  a: JSONObject | null | undefined,
  b: JSONObject | null | undefined
): boolean {
  if (a === undefined || b === undefined) {
    return a === b;
  }
  if (a === null || b === null) {
    return a === b;
  }
  return JSONExt.deepEqual(a, b);
}

/**
 * The default implementation of `IReproModel`.
 */
export class ReproModel implements IReproModel {
  constructor(options: ReproModel.IOptions = {}) {
    this.client =
      options.client ??
      new ReproClient(
        options.serverSettings ?? ServerConnection.makeSettings()
      );
    this.frontendVersion = options.frontendVersion ?? FRONTEND_VERSION;
    this._jobInterval = options.jobInterval ?? 500;
  }

  /**
   * The REST client the model uses.
   */
  readonly client: ReproClient;

  readonly frontendVersion: string;

  get phase(): StatusPhase {
    return this._phase;
  }

  get isLoading(): boolean {
    return this._phase === 'loading';
  }

  get status(): IServerStatus | null {
    return this._status;
  }

  get error(): IReproError | null {
    return this._error;
  }

  get versionMismatch(): boolean {
    return (
      this._status !== null && this._status.version !== this.frontendVersion
    );
  }

  get settings(): IReproSettings {
    return this._settings;
  }

  /**
   * Replace some of the settings (values are expected to be schema-valid).
   */
  updateSettings(settings: Partial<IReproSettings>): void {
    this._settings = { ...this._settings, ...settings };
    this._stateChanged.emit();
  }

  get stateChanged(): ISignal<IReproModel, void> {
    return this._stateChanged;
  }

  get environmentsPhase(): StatusPhase {
    return this._environmentsPhase;
  }

  get environments(): readonly IEnvironmentSummary[] {
    return this._environments;
  }

  get environmentsError(): IReproError | null {
    return this._environmentsError;
  }

  get filter(): string {
    return this._filter;
  }

  get filteredEnvironments(): readonly IEnvironmentSummary[] {
    return filterEnvironments(this._environments, this._filter);
  }

  get environmentsChanged(): ISignal<IReproModel, void> {
    return this._environmentsChanged;
  }

  get activeNotebook(): IActiveNotebook | null {
    return this._activeNotebook;
  }

  get activeEnvironment(): IEnvironmentSummary | null {
    const kernel = this._activeNotebook?.kernelName;
    if (!kernel) {
      return null;
    }
    return this._environments.find(env => env.kernels.includes(kernel)) ?? null;
  }

  get driftPhase(): StatusPhase {
    return this._driftPhase;
  }

  get drift(): IDrift | null {
    return this._drift;
  }

  get driftError(): IReproError | null {
    return this._driftError;
  }

  get stripPolicy(): IStripPolicy | null {
    return this._stripPolicy;
  }

  get stripPolicyError(): IReproError | null {
    return this._stripPolicyError;
  }

  get activeNotebookChanged(): ISignal<IReproModel, void> {
    return this._activeNotebookChanged;
  }

  get restoreJob(): IRestoreJob | null {
    return this._restoreJob;
  }

  get restoreChanged(): ISignal<IReproModel, void> {
    return this._restoreChanged;
  }

  get verifyJob(): IVerifyJob | null {
    return this._verifyJob;
  }

  get verifyChanged(): ISignal<IReproModel, void> {
    return this._verifyChanged;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  refresh(): Promise<void> {
    const environments = this.refreshEnvironments();
    if (!this._pending) {
      this._phase = 'loading';
      this._stateChanged.emit();
      this._pending = this._fetchStatus().finally(() => {
        this._pending = null;
      });
    }
    return Promise.all([this._pending, environments]).then(() => undefined);
  }

  refreshEnvironments(): Promise<void> {
    if (this._pendingEnvironments) {
      return this._pendingEnvironments;
    }
    this._environmentsPhase = 'loading';
    this._environmentsChanged.emit();
    this._pendingEnvironments = this._fetchEnvironments().finally(() => {
      this._pendingEnvironments = null;
    });
    return this._pendingEnvironments;
  }

  environmentDetails(name: string): Promise<IEnvironmentDetails> {
    return this.client.environment(name);
  }

  environmentSpec(name: string, mode: ExportMode): Promise<string> {
    return this.client.environmentSpec(name, mode);
  }

  setFilter(filter: string): void {
    if (filter === this._filter) {
      return;
    }
    this._filter = filter;
    this._environmentsChanged.emit();
  }

  setActiveNotebook(notebook: IActiveNotebook | null): Promise<void> {
    const current = this._activeNotebook;
    const samePath =
      current !== null && notebook !== null && current.path === notebook.path;
    const sameState =
      samePath &&
      current.kernelName === notebook.kernelName &&
      sameEmbedded(current.embedded, notebook.embedded);
    if (sameState && this._driftPhase !== 'idle') {
      return this._pendingActive ?? Promise.resolve();
    }
    this._activeNotebook = notebook ? { ...notebook } : null;
    if (samePath && this._driftPhase !== 'idle') {
      // The same notebook on another kernel, or with another spec in memory:
      // only its drift changed.
      return this.refreshDrift();
    }
    if (!samePath) {
      // Another notebook: what was known about the last one no longer applies.
      this._drift = null;
      this._driftError = null;
      this._stripPolicy = null;
      this._stripPolicyError = null;
    }
    return this.refreshActiveNotebook();
  }

  refreshActiveNotebook(): Promise<void> {
    const notebook = this._activeNotebook;
    const request = ++this._activeRequest;
    if (notebook === null) {
      this._driftPhase = 'idle';
      this._activeNotebookChanged.emit();
      return Promise.resolve();
    }
    const driftRequest = ++this._driftRequest;
    this._driftPhase = 'loading';
    this._activeNotebookChanged.emit();
    const pending = this._fetchActive(notebook, request, driftRequest);
    this._pendingActive = pending;
    return pending;
  }

  refreshDrift(options: { quiet?: boolean } = {}): Promise<void> {
    const notebook = this._activeNotebook;
    if (notebook === null) {
      return Promise.resolve();
    }
    const quiet = options.quiet === true;
    const request = ++this._driftRequest;
    if (!quiet) {
      this._driftPhase = 'loading';
      this._activeNotebookChanged.emit();
    }
    const pending = this._fetchDrift(notebook, request, quiet);
    if (!quiet) {
      this._pendingActive = pending;
    }
    return pending;
  }

  planRestore(request: IRestoreRequest): Promise<IRestorePlan> {
    return this.client.planRestore(request);
  }

  async startRestore(request: IRestoreRequest): Promise<IRestoreJob> {
    const running = this._restoreJob;
    if (running && !running.isFinished && !running.isDisposed) {
      throw new ReproRequestError(
        'A restore is already running: wait for it to finish or cancel it first.',
        { reason: 'restore running' }
      );
    }
    const first = await this.client.startRestore(request);
    if (this._restoreJob) {
      this._restoreJob.dispose();
    }
    const job = new RestoreJob({
      client: this.client,
      job: first,
      request,
      interval: this._jobInterval
    });
    this._restoreJob = job;
    job.changed.connect(this._onJobChanged, this);
    void job.finished.then(done => {
      if (done.state === 'succeeded' && !this._isDisposed) {
        void this.refreshEnvironments();
      }
    });
    this._restoreChanged.emit();
    return job;
  }

  async startVerify(request: IVerifyRequest): Promise<IVerifyJob> {
    const running = this._verifyJob;
    if (running && !running.isFinished && !running.isDisposed) {
      throw new ReproRequestError(
        `A verification of ${running.request.notebook} is running: wait for it to finish or cancel it first.`,
        { reason: 'verification running' }
      );
    }
    const first = await this.client.startVerify(request);
    if (this._verifyJob) {
      this._verifyJob.dispose();
    }
    const job = new VerifyJob({
      client: this.client,
      job: first,
      request,
      interval: this._jobInterval
    });
    this._verifyJob = job;
    job.changed.connect(this._onVerifyChanged, this);
    this._verifyChanged.emit();
    return job;
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._restoreJob?.dispose();
    this._verifyJob?.dispose();
    Signal.clearData(this);
  }

  private _onJobChanged(): void {
    this._restoreChanged.emit();
  }

  private _onVerifyChanged(): void {
    this._verifyChanged.emit();
  }

  private async _fetchStatus(): Promise<void> {
    let status: IServerStatus | null = null;
    let error: IReproError | null = null;
    try {
      status = Private.parseStatus(await this.client.status());
    } catch (reason) {
      error = toReproError(reason);
    }
    if (this._isDisposed) {
      return;
    }
    this._status = status;
    this._error = error;
    this._phase = error ? 'error' : 'ready';
    this._stateChanged.emit();
  }

  private async _fetchEnvironments(): Promise<void> {
    const hadActive = this.activeEnvironment;
    try {
      const data = await this.client.environments();
      if (this._isDisposed) {
        return;
      }
      this._environments = data.environments;
      this._environmentsError = null;
      this._environmentsPhase = 'ready';
    } catch (reason) {
      if (this._isDisposed) {
        return;
      }
      this._environmentsError = toReproError(reason);
      this._environmentsPhase = 'error';
    }
    this._environmentsChanged.emit();
    if (hadActive !== this.activeEnvironment) {
      this._activeNotebookChanged.emit();
    }
  }

  /**
   * The drift of the notebook as it is open; `null` without a request when
   * it has no kernel yet (a new notebook: nothing can be missing).
   */
  private _requestDrift(notebook: IActiveNotebook): Promise<IDrift | null> {
    if (!notebook.kernelName) {
      return Promise.resolve(null);
    }
    const body: IDriftRequest = { kernel: notebook.kernelName };
    if (notebook.embedded !== undefined) {
      body.metadata = notebook.embedded;
    }
    return this.client.openDrift(notebook.path, body);
  }

  private async _fetchDrift(
    notebook: IActiveNotebook,
    request: number,
    quiet: boolean
  ): Promise<void> {
    let drift: IDrift | null = null;
    let error: IReproError | null = null;
    try {
      drift = await this._requestDrift(notebook);
    } catch (reason) {
      error = toReproError(reason);
    }
    if (this._isDisposed || request !== this._driftRequest) {
      return; // a newer request (or another notebook) answers instead
    }
    if (quiet && error) {
      return; // a poll that failed (the server restarting): keep what is shown
    }
    const phase: StatusPhase = error ? 'error' : 'ready';
    const changed =
      phase !== this._driftPhase ||
      JSON.stringify(drift) !== JSON.stringify(this._drift) ||
      JSON.stringify(error) !== JSON.stringify(this._driftError);
    this._drift = drift;
    this._driftError = error;
    this._driftPhase = phase;
    if (!quiet) {
      this._pendingActive = null;
    }
    if (changed || !quiet) {
      this._activeNotebookChanged.emit();
    }
  }

  private async _fetchActive(
    notebook: IActiveNotebook,
    request: number,
    driftRequest: number
  ): Promise<void> {
    const [drift, policy] = await Promise.allSettled([
      this._requestDrift(notebook),
      this.client.stripPolicy(notebook.path)
    ]);
    if (this._isDisposed || request !== this._activeRequest) {
      // Another notebook became active meanwhile: its answer wins.
      return;
    }
    if (driftRequest !== this._driftRequest) {
      // A later drift request (a kernel change) answers for the drift.
    } else if (drift.status === 'fulfilled') {
      this._drift = drift.value;
      this._driftError = null;
      this._driftPhase = 'ready';
    } else {
      this._drift = null;
      this._driftError = toReproError(drift.reason);
      this._driftPhase = 'error';
    }
    if (policy.status === 'fulfilled') {
      this._stripPolicy = policy.value;
      this._stripPolicyError = null;
    } else {
      this._stripPolicy = null;
      this._stripPolicyError = toReproError(policy.reason);
    }
    this._pendingActive = null;
    this._activeNotebookChanged.emit();
  }

  private _phase: StatusPhase = 'idle';
  private _status: IServerStatus | null = null;
  private _error: IReproError | null = null;
  private _settings: IReproSettings = { ...DEFAULT_SETTINGS };
  private _pending: Promise<void> | null = null;
  private _environmentsPhase: StatusPhase = 'idle';
  private _environments: readonly IEnvironmentSummary[] = [];
  private _environmentsError: IReproError | null = null;
  private _pendingEnvironments: Promise<void> | null = null;
  private _filter = '';
  private _activeNotebook: IActiveNotebook | null = null;
  private _activeRequest = 0;
  private _driftRequest = 0;
  private _pendingActive: Promise<void> | null = null;
  private _driftPhase: StatusPhase = 'idle';
  private _drift: IDrift | null = null;
  private _driftError: IReproError | null = null;
  private _stripPolicy: IStripPolicy | null = null;
  private _stripPolicyError: IReproError | null = null;
  private _restoreJob: RestoreJob | null = null;
  private _verifyJob: VerifyJob | null = null;
  private _jobInterval: number;
  private _isDisposed = false;
  private _stateChanged = new Signal<IReproModel, void>(this);
  private _environmentsChanged = new Signal<IReproModel, void>(this);
  private _activeNotebookChanged = new Signal<IReproModel, void>(this);
  private _restoreChanged = new Signal<IReproModel, void>(this);
  private _verifyChanged = new Signal<IReproModel, void>(this);
}

/**
 * A namespace for `ReproModel` statics.
 */
export namespace ReproModel {
  /**
   * Options of the `ReproModel` constructor.
   */
  export interface IOptions {
    /**
     * Server connection settings; the defaults when omitted.
     */
    serverSettings?: ServerConnection.ISettings;

    /**
     * The REST client; one over `serverSettings` when omitted.
     */
    client?: ReproClient;

    /**
     * The frontend version to compare with the server's; the version in
     * `package.json` when omitted.
     */
    frontendVersion?: string;

    /**
     * Milliseconds between polls of a restore or verify job; 500 by
     * default.
     */
    jobInterval?: number;
  }
}

/**
 * Module-private helpers.
 */
namespace Private {
  /**
   * Check the shape of a status body and normalize it.
   *
   * @throws {ReproRequestError} if `data` is not a status body
   */
  export function parseStatus(data: unknown): IServerStatus {
    if (!isObject(data) || typeof data.version !== 'string') {
      throw new ReproRequestError(
        'The server sent an unexpected status (no "version").'
      );
    }
    const engine = isObject(data.engine) ? data.engine : {};
    const clis: Record<string, string | null> = {};
    if (isObject(data.clis)) {
      for (const [name, path] of Object.entries(data.clis)) {
        clis[name] = typeof path === 'string' && path.length > 0 ? path : null;
      }
    }
    return {
      version: data.version,
      engine: {
        name: typeof engine.name === 'string' ? engine.name : 'unknown',
        version: typeof engine.version === 'string' ? engine.version : '',
        embedded: engine.embedded === true
      },
      clis
    };
  }

  function isObject(value: unknown): value is Record<string, unknown> {
    return typeof value === 'object' && value !== null && !Array.isArray(value);
  }
}
