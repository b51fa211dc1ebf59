import { JSONObject, Token } from '@lumino/coreutils';
import { IDisposable } from '@lumino/disposable';
import { ISignal } from '@lumino/signaling';

/**
 * The id of the main jupyter-repro frontend plugin.
 *
 * Its settings schema lives in `schema/plugin.json`.
 */
export const PLUGIN_ID = 'jupyter-repro:plugin';

/**
 * The id of the Environments sidebar panel (also its layout-restorer key).
 */
export const ENVIRONMENTS_PANEL_ID = 'jupyter-repro-environments';

/**
 * Ids of the commands registered by jupyter-repro.
 */
export namespace CommandIDs {
  /**
   * Reveal and activate the Environments panel in the left sidebar.
   */
  export const openPanel = 'jupyter-repro:open-panel';

  /**
   * Export the environment of the active notebook's kernel (dialog: mode and
   * target).
   */
  export const exportEnvironment = 'jupyter-repro:export-environment';

  /**
   * Restore the environment embedded in the active notebook (dry run, then
   * a job with progress).
   */
  export const restoreEnvironment = 'jupyter-repro:restore-environment';

  /**
   * Restore an environment from an `environment*.yml` file; the file is the
   * `path` argument or the file selected in the file browser.
   */
  export const restoreFromFile = 'jupyter-repro:restore-from-file';

  /**
   * Toggle whether outputs of the active notebook are stripped on save
   * (the notebook-level `metadata.keep_output`).
   */
  export const toggleStripOnSave = 'jupyter-repro:toggle-strip-on-save';

  /**
   * Reload the server status, the environments and the active notebook's
   * drift.
   */
  export const refresh = 'jupyter-repro:refresh';

  /**
   * Install the jupyter-repro git filter into the active notebook's git
   * repository (local scope), after a confirmation.
   */
  export const installGitFilter = 'jupyter-repro:install-git-filter';

  /**
   * Lock the environment of the active notebook's kernel for several
   * platforms: the export dialog, opened on its "Lock for platforms" choice.
   */
  export const lock = 'jupyter-repro:lock';

  /**
   * Verify that the active notebook reproduces: the server runs it on a
   * kernel of its own and compares every code cell's outputs with those
   * saved (or their fingerprints); progress and the result in the
   * Environments panel. Arguments: `restore` (boolean: in an environment
   * restored from its lock or spec), `timeout` (seconds per cell), `kernel`.
   */
  export const verify = 'jupyter-repro:verify';

  /**
   * Write the last verification's record into its notebook's
   * `metadata.jupyter_repro.verified` and save the notebook.
   */
  export const recordVerification = 'jupyter-repro:record-verification';
}

/**
 * The environment solver/installer engine used by the server.
 */
export interface IEngineInfo {
  /**
   * Name of the engine, e.g. `rattler`.
   */
  name: string;

  /**
   * Version of the engine, e.g. `0.28.0`.
   */
  version: string;

  /**
   * Whether the engine is embedded in the server extension (`true`) or an
   * external program it drives (`false`).
   */
  embedded: boolean;
}

/**
 * Body of a successful `GET {baseUrl}repro/status` response.
 */
export interface IServerStatus {
  /**
   * Version of the `jupyter_repro` Python package running in the server.
   */
  version: string;

  /**
   * The engine the server uses to solve and install environments.
   */
  engine: IEngineInfo;

  /**
   * Conda-compatible command line tools the server looked for (`conda`,
   * `mamba`, `micromamba`, ...): an absolute path when found, `null` if not.
   */
  clis: Record<string, string | null>;

  /**
   * This machine's conda platform (`linux-64`, `osx-arm64`, ...), the one a
   * lock made here takes from the installed records; absent from older
   * servers.
   */
  platform?: string;
}

/**
 * Body of an error response of the jupyter-repro REST API.
 */
export interface IServerErrorBody {
  /**
   * Human-readable description of what went wrong.
   */
  message: string;

  /**
   * Short machine-oriented reason, when the server gives one.
   */
  reason?: string | null;
}

/**
 * How an environment is exported (see the settings schema).
 *
 * `explicit` is the server's `format=explicit` (exact packages as URLs with
 * checksums, one platform); the others are the server's `mode`.
 */
export type ExportMode = 'portable' | 'exact' | 'no-builds' | 'explicit';

/**
 * Where an exported environment goes (see the settings schema): a browser
 * download, a file beside the notebook, or the notebook's metadata.
 */
export type ExportTarget = 'download' | 'file' | 'metadata';

/**
 * The text formats of the export routes (`?format=`).
 */
export type ExportFormat = 'yaml' | 'explicit' | 'json';

/**
 * User settings of jupyter-repro, as declared in `schema/plugin.json`.
 */
export interface IReproSettings {
  /**
   * Export mode preselected in the export dialog.
   */
  defaultExportMode: ExportMode;

  /**
   * Export target preselected in the export dialog.
   */
  defaultExportTarget: ExportTarget;

  /**
   * Conda platforms preselected when locking (besides the environment's own
   * platform, when the server has reported it).
   */
  lockPlatforms: string[];
}

/**
 * The phase of a request the model makes on its own (status, environments,
 * drift, strip policy).
 */
export type StatusPhase = 'idle' | 'loading' | 'ready' | 'error';

/**
 * One environment of `GET {baseUrl}repro/environments`.
 */
export interface IEnvironmentSummary {
  /**
   * The environment's name (unique in the listing; the base is `base`).
   */
  name: string;

  /**
   * Absolute path of the environment's prefix on the server.
   */
  prefix: string;

  /**
   * What kind of environment it is, e.g. `conda`, `pixi` or `venv`.
   */
  kind: string;

  /**
   * Version of its Python interpreter, `null` when it has none.
   */
  python_version: string | null;

  /**
   * Names of the kernels it provides, e.g. `conda-env-analysis-py`.
   */
  kernels: string[];

  /**
   * Whether it is the base (root) environment.
   */
  is_base: boolean;

  /**
   * Whether the Jupyter server itself runs in it.
   */
  is_server_env: boolean;

  /**
   * Whether the server may write into it (false for a shared environment).
   */
  writable: boolean;

  /**
   * Whether it is in an administrator's shared folder (read-only: no
   * restore, lock or pack writes there). Absent from servers before 0.2.
   */
  shared?: boolean;
}

/**
 * A conda package installed in an environment.
 */
export interface ICondaPackage {
  /**
   * Package name.
   */
  name: string;

  /**
   * Installed version.
   */
  version: string;

  /**
   * Build string.
   */
  build: string;

  /**
   * Short name of the channel it came from (e.g. `conda-forge`), `null` when
   * unknown.
   */
  channel: string | null;
}

/**
 * A pip-installed distribution in an environment.
 */
export interface IPipPackage {
  /**
   * Distribution name.
   */
  name: string;

  /**
   * Installed version.
   */
  version: string;
}

/**
 * Body of `GET {baseUrl}repro/environments/{name}`: the listing's fields
 * and the installed packages.
 */
export interface IEnvironmentDetails extends IEnvironmentSummary {
  /**
   * The conda packages, as the environment's `conda-meta` records them.
   */
  conda_packages: ICondaPackage[];

  /**
   * The pip-installed distributions.
   */
  pip_packages: IPipPackage[];
}

/**
 * Body of `GET {baseUrl}repro/environments`.
 */
export interface IEnvironmentList {
  /**
   * Every discovered environment, base first.
   */
  environments: IEnvironmentSummary[];
}

/**
 * The drift states of a notebook, as the server reports them.
 */
export type DriftStatus =
  'in_sync' | 'drifted' | 'missing_environment' | 'no_spec';

/**
 * A dependency of the spec that the installed package does not satisfy.
 */
export interface IDriftChange {
  /**
   * Package name (`pip:<name>` for pip packages).
   */
  name: string;

  /**
   * The dependency as written in the spec (`python=3.10`, `numpy>=1.20,<2`).
   */
  spec: string;

  /**
   * The spec's constraint as written (`3.10`, `>=1.20,<2`).
   */
  spec_version: string;

  /**
   * The version installed in the environment (`=build` added when the spec
   * constrains the build).
   */
  installed_version: string;
}

/**
 * The spec a drift answer compared.
 */
export interface IDriftSpec {
  /**
   * Embedded in the notebook, or a file beside it.
   */
  source: 'embedded' | 'file';

  /**
   * The notebook or the file, relative to the server root.
   */
  path: string;
}

/**
 * Body of `GET {baseUrl}repro/notebooks/{path}/drift`: the notebook's spec
 * (embedded, else a sibling `environment.yml`) against the live environment
 * of its kernel.
 */
export interface IDrift {
  /**
   * The drift state.
   */
  status: DriftStatus;

  /**
   * Packages in the environment but not in the spec.
   */
  added: string[];

  /**
   * Packages in the spec but not in the environment.
   */
  removed: string[];

  /**
   * Dependencies the installed packages do not satisfy.
   */
  changed: IDriftChange[];

  /**
   * The spec compared, when there was one.
   */
  spec?: IDriftSpec;

  /**
   * Why the status is `missing_environment` or `no_spec`, when the server
   * says.
   */
  message?: string;
}

/**
 * Body of `POST {baseUrl}repro/notebooks/{path}/drift`: the notebook as it
 * is open; an absent key means "as in the file".
 */
export interface IDriftRequest {
  /**
   * The kernel the notebook's session runs.
   */
  kernel?: string | null;

  /**
   * The notebook's `metadata.jupyter_repro` in memory, `null` when it has
   * none.
   */
  metadata?: JSONObject | null;
}

/**
 * Body of `GET {baseUrl}repro/notebooks/{path}/git`: the git set-up of the
 * notebook's repository.
 */
export interface IGitStatus {
  /**
   * The repository's top folder relative to the server root (`.` for the
   * root), `null` when the notebook is in no repository inside the root.
   */
  repository: string | null;

  /**
   * Whether git runs the jupyter-repro filter on this notebook.
   */
  installed: boolean;

  /**
   * Whether an nbstripout set-up was found (filter or pre-commit hook).
   */
  nbstripout: boolean;

  /**
   * How: `filter` and `diff` (the notebook's attributes), `local` (the
   * repository's own installation), `nbstripout` (where it was found),
   * `message` (why there is no repository).
   */
  details: {
    git?: boolean;
    message?: string | null;
    filter?: string | null;
    diff?: string | null;
    configured?: boolean;
    local?: {
      installed: boolean;
      attributes_file: string;
      attribute_lines: string[];
    } | null;
    nbstripout?: string[];
  };
}

/**
 * Answer to `POST {baseUrl}repro/notebooks/{path}/git`: the new status and
 * what the installer printed.
 */
export interface IGitInstallResult extends IGitStatus {
  /**
   * The installer's output lines.
   */
  output: string[];
}

/**
 * Body of `POST {baseUrl}repro/notebooks/{path}/environment`.
 */
export interface IWriteEnvironmentRequest {
  /**
   * `file`: `filename` beside the notebook; `metadata`: embedded in the
   * notebook file on disk; `both`.
   */
  target: 'file' | 'metadata' | 'both';

  /**
   * Export mode (the server's modes only: no `explicit`).
   */
  mode?: Exclude<ExportMode, 'explicit'>;

  /**
   * A plain `.yml`/`.yaml` file name; `environment.yml` by default.
   */
  filename?: string;

  /**
   * Also embed the `@EXPLICIT` URLs of the environment's platform.
   */
  explicit?: boolean;
}

/**
 * Answer to `POST {baseUrl}repro/notebooks/{path}/environment`.
 */
export interface IWriteEnvironmentResult {
  /**
   * Server-root-relative paths of the files written.
   */
  written: string[];

  /**
   * The spec as JSON (the structure of `environment.yml`).
   */
  spec: JSONObject;
}

/**
 * The text of a notebook's environment spec, and where it came from.
 */
export interface INotebookSpecText {
  /**
   * The spec in the requested format.
   */
  text: string;

  /**
   * `environment`: exported from the kernel's environment now; `embedded`:
   * the spec carried by the notebook (its kernel is not on this machine).
   */
  source: 'environment' | 'embedded';
}

/**
 * When, where and how an embedded environment was exported.
 */
export interface IExportedInfo {
  /**
   * ISO 8601 UTC time to the second, e.g. `2024-05-01T12:00:00Z`.
   */
  at: string;

  /**
   * The environment's conda platform (subdir), e.g. `linux-64`.
   */
  platform: string;

  /**
   * The export mode (`portable`, `exact` or `no-builds`).
   */
  mode: string;

  /**
   * Version of jupyter-repro that exported it.
   */
  tool_version: string;
}

/**
 * The value of a notebook's `metadata.jupyter_repro`.
 */
export interface IEmbeddedEnvironment {
  /**
   * The `environment.yml` as JSON.
   */
  environment: JSONObject;

  /**
   * When, where and how it was exported.
   */
  exported: IExportedInfo;

  /**
   * The `@EXPLICIT` package URLs, by platform, when they were embedded too.
   */
  explicit?: Record<string, string[]>;
}

/**
 * Where the export dialog's lock goes: embedded in the open notebook, a
 * lock file beside the notebook, or both.
 */
export type LockTarget =
  'metadata' | 'conda-lock' | 'pixi' | 'metadata+conda-lock' | 'metadata+pixi';

/**
 * The lock file formats the server writes beside a notebook.
 */
export type LockFileFormat = 'conda-lock' | 'pixi';

/**
 * What a lock covered: the `summary` of the lock routes' answers.
 */
export interface ILockSummary {
  /**
   * The platforms locked.
   */
  platforms: string[];

  /**
   * The platforms asked for but not locked, with why.
   */
  skipped: Record<string, string>;

  /**
   * What else the user should know (a pip requirement left out, ...).
   */
  warnings: string[];

  /**
   * The date the other platforms were solved as of (ISO 8601), if any.
   */
  as_of: string | null;

  /**
   * The number of packages locked, by platform.
   */
  packages: Record<string, number>;
}

/**
 * Answer to `GET {baseUrl}repro/notebooks/{path}/lock?format=metadata`.
 */
export interface ILockMetadataAnswer {
  /**
   * The whole value to put in the notebook's `metadata.jupyter_repro`, with
   * its `lock`.
   */
  metadata: JSONObject;

  /**
   * What was locked.
   */
  summary: ILockSummary;
}

/**
 * Body of `POST {baseUrl}repro/notebooks/{path}/lock`.
 */
export interface IWriteLockRequest {
  /**
   * The platforms to lock.
   */
  platforms: string[];

  /**
   * Only `file` from the frontend: it embeds through the open notebook.
   */
  target: 'file';

  /**
   * The format of the file, `conda-lock.yml` or `pixi.lock`.
   */
  format: LockFileFormat;
}

/**
 * Answer to `POST {baseUrl}repro/notebooks/{path}/lock`.
 */
export interface IWriteLockResult {
  /**
   * Server-root-relative paths of the files written.
   */
  written: string[];

  /**
   * What was locked.
   */
  summary: ILockSummary;
}

/**
 * Where a restore takes its spec from (exactly one key).
 */
export type RestoreSource =
  | {
      /**
       * A server-root-relative notebook that embeds a spec.
       */
      notebook: string;
    }
  | {
      /**
       * A server-root-relative `environment.yml`.
       */
      file: string;
    }
  | {
      /**
       * The spec's text.
       */
      content: string;
    };

/**
 * Body of `POST {baseUrl}repro/restore`.
 */
export interface IRestoreRequest {
  /**
   * Where the spec comes from.
   */
  source: RestoreSource;

  /**
   * Name of the new environment (in the first writable envs dir); the
   * spec's name when omitted.
   */
  name?: string | null;

  /**
   * Absolute prefix of the new environment; not together with `name`.
   */
  prefix?: string | null;

  /**
   * `true`: answer the plan and write nothing.
   */
  dry_run?: boolean;
}

/**
 * A package the restore will install.
 */
export interface IPlannedPackage {
  /**
   * Package name.
   */
  name: string;

  /**
   * Package version.
   */
  version: string;

  /**
   * Build string.
   */
  build: string;

  /**
   * The channel it comes from, when known.
   */
  channel: string | null;

  /**
   * Download size in bytes, when known.
   */
  size: number | null;

  /**
   * Where it is downloaded from.
   */
  url: string;
}

/**
 * Answer to a dry-run `POST {baseUrl}repro/restore`.
 */
export interface IRestorePlan {
  /**
   * Absolute prefix the environment would be created at.
   */
  target: string;

  /**
   * Name of the new environment, `null` for a prefix-only target.
   */
  name: string | null;

  /**
   * The engine that would do the work, e.g. `rattler`.
   */
  engine: string;

  /**
   * The conda packages to install.
   */
  packages: IPlannedPackage[];

  /**
   * The pip requirements to install.
   */
  pip: string[];

  /**
   * The channels the packages are solved from.
   */
  channels: string[];

  /**
   * Things the user should know before confirming.
   */
  warnings: string[];

  /**
   * What already has the name or prefix asked for; `null` when it is free.
   */
  conflict: INameConflict | null;

  /**
   * A free, valid name to restore under when the asked (or the spec's own)
   * name cannot be used; `null` otherwise.
   */
  suggested_name: string | null;
}

/**
 * What already has a name: a listed environment, a folder in an envs dir,
 * or the prefix asked for.
 */
export interface INameConflict {
  /**
   * The name (`null` for a prefix).
   */
  name: string | null;

  /**
   * Where the existing environment or folder is.
   */
  prefix: string;

  /**
   * `environment`, `folder` or `prefix`.
   */
  reason: 'environment' | 'folder' | 'prefix';

  /**
   * The kernels of the existing environment.
   */
  kernels: string[];
}

/**
 * Body of `GET {baseUrl}repro/restore/name?name=`: whether a restore could
 * use a name now.
 */
export interface INameCheck {
  /**
   * The name checked.
   */
  name: string;

  /**
   * Where a restore under this name would go; `null` for an invalid name.
   */
  target: string | null;

  /**
   * Why the name is not a valid environment name.
   */
  problem: string | null;

  /**
   * What already has the name.
   */
  conflict: INameConflict | null;

  /**
   * A free, valid name made from it, when it cannot be used.
   */
  suggested_name: string | null;
}

/**
 * The states of a server job; the last three are terminal.
 */
export type JobState =
  'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

/**
 * The progress of a job.
 */
export interface IJobProgress {
  /**
   * What the job is doing now (e.g. `solving`, `downloading`), if known.
   */
  phase: string | null;

  /**
   * Units of work done in this phase.
   */
  done: number;

  /**
   * Units of work in this phase, `0` when unknown.
   */
  total: number;

  /**
   * Bytes downloaded so far, once a package download started.
   */
  bytes_done?: number;

  /**
   * Size of the packages being downloaded (those the cache lacked).
   */
  bytes_total?: number;

  /**
   * Packages downloaded so far.
   */
  downloaded?: number;

  /**
   * Packages downloaded or downloading.
   */
  downloading?: number;

  /**
   * Of a verify job in its `restore` phase: the restore's own phase
   * (`solve`, `download`, `link`, ...).
   */
  step?: string;

  /**
   * Of a verify job: every cell reported so far, in the order it ran.
   */
  cells?: IVerifyCellProgress[];
}

/**
 * What a verification says about one cell.
 */
export type VerifyCellStatus =
  'match' | 'differs' | 'error' | 'no_reference' | 'skipped';

/**
 * A cell of a running verification.
 */
export interface IVerifyCellProgress {
  /**
   * The cell's position in the notebook.
   */
  index: number;

  /**
   * The cell's id, when it has one.
   */
  id: string | null;

  /**
   * `running` until the cell has its result.
   */
  status: VerifyCellStatus | 'running';
}

/**
 * The result of a successful restore job.
 */
export interface IRestoreResult {
  /**
   * Absolute prefix of the new environment.
   */
  prefix: string;

  /**
   * Name of the new environment, `null` for a prefix-only one.
   */
  name?: string | null;

  /**
   * Number of conda packages installed.
   */
  packages?: number;

  /**
   * Number of pip packages installed.
   */
  pip?: number;
}

/**
 * Body of `GET {baseUrl}repro/jobs/{id}` (and of the 202 that starts one);
 * `TResult` is what a job of its kind answers when it succeeded.
 */
export interface IJob<TResult = IRestoreResult> {
  /**
   * The job's id.
   */
  id: string;

  /**
   * What kind of job it is, e.g. `restore`.
   */
  kind: string;

  /**
   * Its state.
   */
  state: JobState;

  /**
   * Its progress.
   */
  progress: IJobProgress;

  /**
   * The last lines of its log.
   */
  log: string[];

  /**
   * How many earlier log lines were dropped.
   */
  log_dropped: number;

  /**
   * The result once it succeeded, else `null`.
   */
  result: TResult | null;

  /**
   * Why it failed, else `null`.
   */
  error: { message: string; reason: string | null } | null;

  /**
   * Whether a cancel was asked for.
   */
  cancel_requested: boolean;

  /**
   * ISO time it was created.
   */
  created: string;

  /**
   * ISO time it started, `null` while queued.
   */
  started: string | null;

  /**
   * ISO time it finished, `null` until then.
   */
  finished: string | null;
}

/**
 * The body of `POST repro/pack`.
 */
export interface IPackRequest {
  /**
   * Notebooks to pack, relative to the server root (not with `environment`).
   */
  notebooks?: string[];

  /**
   * An environment to pack by name (not with `notebooks`).
   */
  environment?: string;

  /**
   * Conda platforms to pack; the environment's own when absent.
   */
  platforms?: string[];

  /**
   * `capsule` (the default) or `conda-pack` (an environment only).
   */
  format?: 'capsule' | 'conda-pack';
}

/**
 * A package that could not be packed, and why.
 */
export interface IPackMissing {
  platform: string;
  name: string;
  why: string;
}

/**
 * The result of a finished pack job; its archive is at
 * `GET repro/jobs/{id}/download`.
 */
export interface IPackResult {
  /**
   * The archive's file name, e.g. `analysis.capsule.tar.zst`.
   */
  filename: string;

  /**
   * Its size in bytes.
   */
  size: number;

  /**
   * What was packed (platforms, counts, sizes, warnings).
   */
  summary: Record<string, unknown>;

  /**
   * What could not be packed.
   */
  missing: IPackMissing[];
}

/**
 * Body of `POST {baseUrl}repro/verify`.
 */
export interface IVerifyRequest {
  /**
   * The notebook, relative to the server root.
   */
  notebook: string;

  /**
   * Run it in an environment restored from its lock or spec into a
   * temporary prefix (removed afterwards); not with `kernel`.
   */
  restore?: boolean;

  /**
   * Seconds a cell may run before it counts as an error.
   */
  timeout?: number;

  /**
   * The kernel to run it on; the notebook's `metadata.kernelspec.name` when
   * absent.
   */
  kernel?: string;
}

/**
 * One cell of a verification report.
 */
export interface IVerifyCell {
  /**
   * The cell's id, when it has one.
   */
  id: string | null;

  /**
   * The cell's position in the notebook.
   */
  index: number;

  /**
   * What the comparison found.
   */
  status: VerifyCellStatus;

  /**
   * Of a differing cell: a readable diff, or the changed numbers.
   */
  diff?: string | null;

  /**
   * Of a cell in error: the exception, or that it timed out.
   */
  error?: string | null;

  /**
   * Seconds the cell ran.
   */
  duration?: number | null;
}

/**
 * The record of a verification, as `metadata.jupyter_repro.verified`.
 */
export interface IVerifiedRecord {
  /**
   * When it ran (ISO 8601).
   */
  at: string;

  /**
   * The platform it ran on, e.g. `linux-64`.
   */
  platform: string | null;

  /**
   * The digest of the lock its environment came from, or `null`.
   */
  environment: string | null;

  /**
   * Cells by status.
   */
  result: Record<string, number>;
}

/**
 * The result of a verify job: the report, with the record to write.
 */
export interface IVerifyReport {
  /**
   * The notebook, relative to the server root.
   */
  notebook: string;

  /**
   * Where it ran.
   */
  environment: {
    kernel?: string | null;
    prefix?: string | null;
    lock_digest?: string | null;
    platform?: string | null;
  };

  /**
   * When it started (ISO 8601).
   */
  started?: string | null;

  /**
   * Seconds it took.
   */
  duration?: number | null;

  /**
   * Cells by status.
   */
  summary: Partial<Record<VerifyCellStatus, number>>;

  /**
   * Every cell compared (or skipped), in notebook order.
   */
  cells: IVerifyCell[];

  /**
   * The value "Record verification" writes to
   * `metadata.jupyter_repro.verified`.
   */
  verified_record: IVerifiedRecord;
}

/**
 * Body of `GET {baseUrl}repro/notebooks/{path}/strip-policy`: the
 * configuration-level strip policy of a notebook (server config and
 * `pyproject.toml`, not the notebook's own metadata).
 */
export interface IStripPolicy {
  /**
   * Whether saves strip outputs at all.
   */
  on_save: boolean;

  /**
   * The configured `keep_output`; the notebook's `metadata.keep_output`
   * overrides it.
   */
  keep_output: boolean;

  /**
   * Where the policy came from (e.g. the `pyproject.toml` used), most
   * specific last.
   */
  sources: string[];

  /**
   * Every resolved option, as nbstripout names them.
   */
  options: JSONObject;
}

/**
 * The notebook the model follows (the active one in the shell).
 */
export interface IActiveNotebook {
  /**
   * Server-root-relative path of the notebook.
   */
  path: string;

  /**
   * The kernel of the open notebook: its session's (a changed, unsaved
   * choice counts), else its `metadata.kernelspec.name`; `null` when it has
   * none yet (drift is then not asked for).
   */
  kernelName: string | null;

  /**
   * The open notebook's `metadata.jupyter_repro` (`null`: it has none);
   * when absent, the server reads the file on disk.
   */
  embedded?: JSONObject | null;
}

/**
 * A server job followed by the frontend: polls until the job is finished.
 */
export interface IServerJob<TRequest, TResult> extends IDisposable {
  /**
   * The job's id.
   */
  readonly id: string;

  /**
   * The last state received from the server.
   */
  readonly job: IJob<TResult>;

  /**
   * What the job was started with.
   */
  readonly request: TRequest;

  /**
   * Whether the job reached `succeeded`, `failed` or `cancelled`.
   */
  readonly isFinished: boolean;

  /**
   * The error of the last poll or cancel request, `null` when it worked.
   */
  readonly pollError: IReproError | null;

  /**
   * Emitted whenever `job` or `pollError` changes.
   */
  readonly changed: ISignal<IServerJob<TRequest, TResult>, void>;

  /**
   * Resolves with the finished job (or the last one known when polling
   * stops on an error or on dispose); never rejects.
   */
  readonly finished: Promise<IJob<TResult>>;

  /**
   * Ask the server to cancel the job (`DELETE`); polling goes on until the
   * job reports `cancelled`. Never rejects: errors land in `pollError`.
   */
  cancel(): Promise<void>;
}

/**
 * A restore job followed by the frontend.
 */
export type IRestoreJob = IServerJob<IRestoreRequest, IRestoreResult>;

/**
 * A verify job followed by the frontend.
 */
export type IVerifyJob = IServerJob<IVerifyRequest, IVerifyReport>;

/**
 * The jupyter-repro frontend model: server state, independent of any view.
 */
export interface IReproModel extends IDisposable {
  /**
   * Version of this frontend, read from its `package.json` at build time.
   */
  readonly frontendVersion: string;

  /**
   * Phase of the last status request: `idle` before the first one.
   */
  readonly phase: StatusPhase;

  /**
   * Whether a status request is in flight.
   */
  readonly isLoading: boolean;

  /**
   * The last status received from the server, or `null` if none was received
   * or the last request failed.
   */
  readonly status: IServerStatus | null;

  /**
   * The error of the last status request, or `null` if it succeeded or none
   * was made yet.
   */
  readonly error: IReproError | null;

  /**
   * Whether the server reported a version other than `frontendVersion`.
   *
   * `false` while the server version is unknown.
   */
  readonly versionMismatch: boolean;

  /**
   * The current user settings (defaults until the setting registry loads).
   */
  readonly settings: IReproSettings;

  /**
   * Emitted whenever any of the properties above changes.
   */
  readonly stateChanged: ISignal<IReproModel, void>;

  /**
   * Phase of the last environments request.
   */
  readonly environmentsPhase: StatusPhase;

  /**
   * The environments last listed by the server (empty until then; kept
   * while a refresh is in flight or after it failed).
   */
  readonly environments: readonly IEnvironmentSummary[];

  /**
   * The error of the last environments request, `null` if it worked.
   */
  readonly environmentsError: IReproError | null;

  /**
   * The text of the environments filter.
   */
  readonly filter: string;

  /**
   * The environments that match `filter`, in listing order.
   */
  readonly filteredEnvironments: readonly IEnvironmentSummary[];

  /**
   * Emitted when `environments`, `environmentsPhase`, `environmentsError`
   * or `filter` change.
   */
  readonly environmentsChanged: ISignal<IReproModel, void>;

  /**
   * The notebook followed by the model, `null` when none is active.
   */
  readonly activeNotebook: IActiveNotebook | null;

  /**
   * The environment of the active notebook's kernel, when listed.
   */
  readonly activeEnvironment: IEnvironmentSummary | null;

  /**
   * Phase of the last drift request of the active notebook.
   */
  readonly driftPhase: StatusPhase;

  /**
   * The active notebook's drift, `null` when unknown.
   */
  readonly drift: IDrift | null;

  /**
   * The error of the last drift request, `null` if it worked.
   */
  readonly driftError: IReproError | null;

  /**
   * The active notebook's configuration-level strip policy, `null` when
   * unknown.
   */
  readonly stripPolicy: IStripPolicy | null;

  /**
   * The error of the last strip-policy request, `null` if it worked.
   */
  readonly stripPolicyError: IReproError | null;

  /**
   * Emitted when `activeNotebook`, `activeEnvironment`, the drift or the
   * strip policy change.
   */
  readonly activeNotebookChanged: ISignal<IReproModel, void>;

  /**
   * The restore job followed last, `null` before the first.
   */
  readonly restoreJob: IRestoreJob | null;

  /**
   * Emitted when `restoreJob` is replaced or its job changes.
   */
  readonly restoreChanged: ISignal<IReproModel, void>;

  /**
   * The verify job followed last, `null` before the first.
   */
  readonly verifyJob: IVerifyJob | null;

  /**
   * Emitted when `verifyJob` is replaced or its job changes.
   */
  readonly verifyChanged: ISignal<IReproModel, void>;

  /**
   * Fetch the server status and the environments again.
   *
   * Never rejects: a failure is stored in `error`. Calls made while a request
   * is in flight share that request.
   */
  refresh(): Promise<void>;

  /**
   * Fetch the environments again. Never rejects (see `environmentsError`).
   */
  refreshEnvironments(): Promise<void>;

  /**
   * Fetch one listed environment with its packages.
   *
   * @throws {ReproRequestError} with the server's message
   */
  environmentDetails(name: string): Promise<IEnvironmentDetails>;

  /**
   * The spec of a listed environment, as text (`environment.yml`, or the
   * `@EXPLICIT` list for the `explicit` mode).
   *
   * @throws {ReproRequestError} with the server's message
   */
  environmentSpec(name: string, mode: ExportMode): Promise<string>;

  /**
   * Set the environments filter (matched against name, kind, Python
   * version, kernels and prefix; words must all match).
   */
  setFilter(filter: string): void;

  /**
   * Follow another notebook (`null`: none) and fetch its drift and strip
   * policy. Never rejects.
   */
  setActiveNotebook(notebook: IActiveNotebook | null): Promise<void>;

  /**
   * Fetch the active notebook's drift (and strip policy) again. Never
   * rejects.
   */
  refreshActiveNotebook(): Promise<void>;

  /**
   * Fetch the active notebook's drift again (not its strip policy). With
   * `quiet`, no loading phase is shown and `activeNotebookChanged` is
   * emitted only when the answer differs: for polling. Never rejects.
   */
  refreshDrift(options?: { quiet?: boolean }): Promise<void>;

  /**
   * Ask the server for a restore plan (dry run).
   *
   * @throws {ReproRequestError} with the server's message
   */
  planRestore(request: IRestoreRequest): Promise<IRestorePlan>;

  /**
   * Start a restore job and follow it as `restoreJob`.
   *
   * @throws {ReproRequestError} with the server's message
   */
  startRestore(request: IRestoreRequest): Promise<IRestoreJob>;

  /**
   * Start a verify job and follow it as `verifyJob` (one at a time).
   *
   * @throws {ReproRequestError} with the server's message
   */
  startVerify(request: IVerifyRequest): Promise<IVerifyJob>;
}

/**
 * An error of the jupyter-repro frontend, as shown to the user.
 */
export interface IReproError {
  /**
   * Human-readable message (the server's `message` when it sent one).
   */
  message: string;

  /**
   * HTTP status of the failed response, or `0` if no response was received.
   */
  status: number;

  /**
   * The server's `reason`, if any.
   */
  reason: string | null;
}

/**
 * The dependency-injection token of the jupyter-repro model, for plugins
 * that add features on top of it.
 */
export const IReproModel = new Token<IReproModel>(
  'jupyter-repro:IReproModel',
  'The jupyter-repro frontend model: server status, environments, the active notebook, restore and verify jobs.'
);
