import { ServerConnection } from '@jupyterlab/services';
import { ISignal, Signal } from '@lumino/signaling';

import { requestAPI, ReproRequestError } from './request';
import {
  IReproError,
  IReproModel,
  IReproSettings,
  IServerStatus,
  StatusPhase
} from './tokens';
import { FRONTEND_VERSION } from './version';

/**
 * The settings used until the setting registry has loaded.
 */
export const DEFAULT_SETTINGS: Readonly<IReproSettings> = Object.freeze({
  defaultExportMode: 'portable',
  defaultExportTarget: 'download'
});

/**
 * The default implementation of `IReproModel`.
 */
export class ReproModel implements IReproModel {
  constructor(options: ReproModel.IOptions = {}) {
    this._serverSettings =
      options.serverSettings ?? ServerConnection.makeSettings();
    this.frontendVersion = options.frontendVersion ?? FRONTEND_VERSION;
  }

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

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  refresh(): Promise<void> {
    if (this._pending) {
      return this._pending;
    }
    this._phase = 'loading';
    this._stateChanged.emit();
    this._pending = this._fetchStatus().finally(() => {
      this._pending = null;
    });
    return this._pending;
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    Signal.clearData(this);
  }

  private async _fetchStatus(): Promise<void> {
    let status: IServerStatus | null = null;
    let error: IReproError | null = null;
    try {
      const data = await requestAPI<unknown>(
        'status',
        { method: 'GET' },
        this._serverSettings
      );
      status = Private.parseStatus(data);
    } catch (reason) {
      error = Private.toReproError(reason);
    }
    if (this._isDisposed) {
      return;
    }
    this._status = status;
    this._error = error;
    this._phase = error ? 'error' : 'ready';
    this._stateChanged.emit();
  }

  private _serverSettings: ServerConnection.ISettings;
  private _phase: StatusPhase = 'idle';
  private _status: IServerStatus | null = null;
  private _error: IReproError | null = null;
  private _settings: IReproSettings = { ...DEFAULT_SETTINGS };
  private _pending: Promise<void> | null = null;
  private _isDisposed = false;
  private _stateChanged = new Signal<IReproModel, void>(this);
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
     * The frontend version to compare with the server's; the version in
     * `package.json` when omitted.
     */
    frontendVersion?: string;
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

  /**
   * Turn anything thrown into an `IReproError`.
   */
  export function toReproError(reason: unknown): IReproError {
    if (reason instanceof ReproRequestError) {
      return {
        message: reason.message,
        status: reason.status,
        reason: reason.reason
      };
    }
    const message = reason instanceof Error ? reason.message : String(reason);
    return { message, status: 0, reason: null };
  }

  function isObject(value: unknown): value is Record<string, unknown> {
    return typeof value === 'object' && value !== null && !Array.isArray(value);
  }
}
