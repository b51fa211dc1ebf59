import { ServerConnection } from '@jupyterlab/services';

import {
  notebookEndpoint,
  requestAPI,
  requestText,
  ReproRequestError
} from './request';
import {
  ExportFormat,
  ExportMode,
  IDrift,
  IDriftRequest,
  IEmbeddedEnvironment,
  IEnvironmentDetails,
  IEnvironmentList,
  IGitInstallResult,
  IGitStatus,
  IJob,
  ILockMetadataAnswer,
  INameCheck,
  INotebookSpecText,
  IPackRequest,
  IPackResult,
  IRestorePlan,
  IRestoreRequest,
  IRestoreResult,
  IStripPolicy,
  IVerifyReport,
  IVerifyRequest,
  IWriteEnvironmentRequest,
  IWriteEnvironmentResult,
  IWriteLockRequest,
  IWriteLockResult
} from './tokens';

/**
 * Typed calls of every jupyter-repro REST route; one method per route, no
 * state besides the connection settings.
 */
export class ReproClient {
  constructor(serverSettings?: ServerConnection.ISettings) {
    this.serverSettings = serverSettings ?? ServerConnection.makeSettings();
  }

  /**
   * The connection settings every call uses.
   */
  readonly serverSettings: ServerConnection.ISettings;

  /**
   * `GET repro/status` (not checked: see the model's parser).
   */
  status(): Promise<unknown> {
    return this._json<unknown>('status');
  }

  /**
   * `GET repro/environments`.
   */
  async environments(): Promise<IEnvironmentList> {
    const data = await this._json<IEnvironmentList>('environments');
    if (!data || !Array.isArray(data.environments)) {
      throw new ReproRequestError(
        'The server sent an unexpected environment listing (no "environments").'
      );
    }
    return data;
  }

  /**
   * `GET repro/environments/{name}`: one environment with its packages.
   */
  async environment(name: string): Promise<IEnvironmentDetails> {
    const data = await this._json<IEnvironmentDetails>(
      `environments/${encodeURIComponent(name)}`
    );
    if (
      !data ||
      !Array.isArray(data.conda_packages) ||
      !Array.isArray(data.pip_packages)
    ) {
      throw new ReproRequestError(
        `The server sent unexpected details of environment "${name}" (no package lists).`
      );
    }
    return data;
  }

  /**
   * `GET repro/environments/{name}/export?mode=&format=`: the spec of a
   * listed environment, as text.
   */
  async environmentSpec(
    name: string,
    mode: ExportMode,
    format: ExportFormat = 'yaml'
  ): Promise<string> {
    const query = ReproClient.exportQuery(mode, format);
    const { text } = await requestText(
      `environments/${encodeURIComponent(name)}/export?${query}`,
      { method: 'GET' },
      this.serverSettings
    );
    return text;
  }

  /**
   * `GET repro/notebooks/{path}/environment?mode=&format=`: the spec of the
   * environment of the notebook's kernel, as text.
   */
  async notebookSpec(
    path: string,
    mode: ExportMode,
    format: Exclude<ExportFormat, 'explicit'> = 'yaml'
  ): Promise<INotebookSpecText> {
    const query = ReproClient.exportQuery(mode, format);
    const { text, response } = await requestText(
      `${notebookEndpoint(path, 'environment')}?${query}`,
      { method: 'GET' },
      this.serverSettings
    );
    const source =
      response.headers.get('X-Jupyter-Repro-Source') === 'embedded'
        ? 'embedded'
        : 'environment';
    return { text, source };
  }

  /**
   * `POST repro/notebooks/{path}/environment`: write the spec beside the
   * notebook and/or into the notebook file on disk.
   */
  writeNotebookEnvironment(
    path: string,
    body: IWriteEnvironmentRequest
  ): Promise<IWriteEnvironmentResult> {
    return this._json<IWriteEnvironmentResult>(
      notebookEndpoint(path, 'environment'),
      { method: 'POST', body: JSON.stringify(body) }
    );
  }

  /**
   * The value the server embeds as `metadata.jupyter_repro` for the
   * notebook's environment, without writing anything:
   * `GET repro/notebooks/{path}/environment?format=metadata`. The frontend
   * writes it into the open notebook, so the file never changes under it.
   */
  embeddedMetadata(
    path: string,
    mode: ExportMode
  ): Promise<IEmbeddedEnvironment> {
    const explicit = mode === 'explicit';
    const specMode = explicit ? 'exact' : mode;
    return this._json<IEmbeddedEnvironment>(
      `${notebookEndpoint(path, 'environment')}?mode=${specMode}` +
        `&format=metadata&explicit=${explicit}`
    );
  }

  /**
   * The lock of the notebook's environment for `platforms`, as the value to
   * embed in its `metadata.jupyter_repro`, without writing anything:
   * `GET repro/notebooks/{path}/lock?platform=P&platform=Q&format=metadata`.
   * The frontend writes it into the open notebook.
   */
  lockMetadata(
    path: string,
    platforms: readonly string[]
  ): Promise<ILockMetadataAnswer> {
    return this._json<ILockMetadataAnswer>(
      `${notebookEndpoint(path, 'lock')}?${ReproClient.lockQuery(platforms, 'metadata')}`
    );
  }

  /**
   * `POST repro/notebooks/{path}/lock`: lock the notebook's environment and
   * write the lock file beside the notebook.
   */
  writeLock(path: string, body: IWriteLockRequest): Promise<IWriteLockResult> {
    return this._json<IWriteLockResult>(notebookEndpoint(path, 'lock'), {
      method: 'POST',
      body: JSON.stringify(body)
    });
  }

  /**
   * `GET repro/notebooks/{path}/drift`.
   */
  drift(path: string): Promise<IDrift> {
    return this._json<IDrift>(notebookEndpoint(path, 'drift'));
  }

  /**
   * `POST repro/notebooks/{path}/drift`: the drift of the notebook as it is
   * open (its session's kernel, the spec in memory).
   */
  openDrift(path: string, body: IDriftRequest): Promise<IDrift> {
    return this._json<IDrift>(notebookEndpoint(path, 'drift'), {
      method: 'POST',
      body: JSON.stringify(body)
    });
  }

  /**
   * `GET repro/notebooks/{path}/git`: the git set-up of the notebook's
   * repository.
   */
  gitStatus(path: string): Promise<IGitStatus> {
    return this._json<IGitStatus>(notebookEndpoint(path, 'git'));
  }

  /**
   * `POST repro/notebooks/{path}/git` `{"action": "install"}`: install the
   * git filter into the notebook's repository.
   */
  installGitFilter(path: string): Promise<IGitInstallResult> {
    return this._json<IGitInstallResult>(notebookEndpoint(path, 'git'), {
      method: 'POST',
      body: JSON.stringify({ action: 'install' })
    });
  }

  /**
   * `GET repro/notebooks/{path}/strip-policy`.
   */
  stripPolicy(path: string): Promise<IStripPolicy> {
    return this._json<IStripPolicy>(notebookEndpoint(path, 'strip-policy'));
  }

  /**
   * `POST repro/restore` with `dry_run: true`: the plan.
   */
  planRestore(request: IRestoreRequest): Promise<IRestorePlan> {
    return this._json<IRestorePlan>('restore', {
      method: 'POST',
      body: JSON.stringify({ ...request, dry_run: true })
    });
  }

  /**
   * `GET repro/restore/name?name=`: whether a restore could use `name` now.
   */
  checkRestoreName(name: string): Promise<INameCheck> {
    return this._json<INameCheck>(
      `restore/name?name=${encodeURIComponent(name)}`,
      { method: 'GET' }
    );
  }

  /**
   * `POST repro/restore`: start a job (202); the job as first reported.
   */
  async startRestore(request: IRestoreRequest): Promise<IJob> {
    const job = await this._json<IJob>('restore', {
      method: 'POST',
      body: JSON.stringify({ ...request, dry_run: false })
    });
    if (!job || typeof job.id !== 'string') {
      throw new ReproRequestError('The server started a job but sent no id.');
    }
    return job;
  }

  /**
   * `POST repro/verify`: start a verify job (202); the job as first
   * reported.
   */
  async startVerify(request: IVerifyRequest): Promise<IJob<IVerifyReport>> {
    const job = await this._json<IJob<IVerifyReport>>('verify', {
      method: 'POST',
      body: JSON.stringify(request)
    });
    if (!job || typeof job.id !== 'string') {
      throw new ReproRequestError('The server started a job but sent no id.');
    }
    return job;
  }

  /**
   * `POST repro/pack`: start a pack job (202); the job as first reported.
   */
  async startPack(request: IPackRequest): Promise<IJob<IPackResult>> {
    const job = await this._json<IJob<IPackResult>>('pack', {
      method: 'POST',
      body: JSON.stringify(request)
    });
    if (!job || typeof job.id !== 'string') {
      throw new ReproRequestError('The server started a job but sent no id.');
    }
    return job;
  }

  /**
   * `GET repro/jobs/{id}`; `TResult` is the result of a job of its kind.
   */
  job<TResult = IRestoreResult>(id: string): Promise<IJob<TResult>> {
    return this._json<IJob<TResult>>(`jobs/${encodeURIComponent(id)}`);
  }

  /**
   * `DELETE repro/jobs/{id}`: ask for a cancel; the job as it is now.
   */
  cancelJob<TResult = IRestoreResult>(id: string): Promise<IJob<TResult>> {
    return this._json<IJob<TResult>>(`jobs/${encodeURIComponent(id)}`, {
      method: 'DELETE'
    });
  }

  /**
   * The query of the export routes for a UI mode: `explicit` is a format.
   */
  static exportQuery(mode: ExportMode, format: ExportFormat = 'yaml'): string {
    if (mode === 'explicit') {
      return 'format=explicit';
    }
    return `mode=${encodeURIComponent(mode)}&format=${encodeURIComponent(format)}`;
  }

  /**
   * The query of the lock routes: one `platform=` per platform, then the
   * format.
   */
  static lockQuery(platforms: readonly string[], format: string): string {
    return [
      ...platforms.map(p => `platform=${encodeURIComponent(p)}`),
      `format=${encodeURIComponent(format)}`
    ].join('&');
  }

  private _json<T>(endPoint: string, init: RequestInit = {}): Promise<T> {
    return requestAPI<T>(
      endPoint,
      { method: 'GET', ...init },
      this.serverSettings
    );
  }
}
