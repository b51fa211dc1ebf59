import { Token } from '@lumino/coreutils';
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
  export const openEnvironments = 'jupyter-repro:open-environments';
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
 */
export type ExportMode = 'portable' | 'exact' | 'no-builds' | 'explicit';

/**
 * Where an exported environment goes (see the settings schema).
 */
export type ExportTarget = 'download' | 'file' | 'metadata';

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
}

/**
 * The phase of the last status request.
 */
export type StatusPhase = 'idle' | 'loading' | 'ready' | 'error';

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
   * Fetch the server status again.
   *
   * Never rejects: a failure is stored in `error`. Calls made while a request
   * is in flight share that request.
   */
  refresh(): Promise<void>;
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
 * that add features (environment list, export, restore) on top of it.
 */
export const IReproModel = new Token<IReproModel>(
  'jupyter-repro:IReproModel',
  'The jupyter-repro frontend model: server status and settings.'
);
