import { PromiseDelegate } from '@lumino/coreutils';
import { ISignal, Signal } from '@lumino/signaling';

import { ReproClient } from './client';
import { ReproRequestError } from './request';
import {
  IJob,
  IReproError,
  IRestoreRequest,
  IRestoreResult,
  IServerJob,
  IVerifyReport,
  IVerifyRequest,
  JobState
} from './tokens';

/**
 * The job states after which nothing changes any more.
 */
export const TERMINAL_STATES: readonly JobState[] = [
  'succeeded',
  'failed',
  'cancelled'
];

/**
 * Whether a job state is final.
 */
export function isTerminal(state: JobState): boolean {
  return TERMINAL_STATES.includes(state);
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

/**
 * A job on the server, polled with `GET repro/jobs/{id}` until it reaches a
 * terminal state.
 */
export class ServerJob<TRequest, TResult> implements IServerJob<
  TRequest,
  TResult
> {
  constructor(options: ServerJob.IOptions<TRequest, TResult>) {
    this._client = options.client;
    this._job = options.job;
    this.id = options.job.id;
    this.request = options.request;
    this._interval = options.interval ?? 500;
    this._maxErrors = options.maxErrors ?? 5;
    if (this.isFinished) {
      this._finished.resolve(this._job);
    } else {
      this._schedule();
    }
  }

  readonly id: string;

  readonly request: TRequest;

  get job(): IJob<TResult> {
    return this._job;
  }

  get isFinished(): boolean {
    return isTerminal(this._job.state);
  }

  get pollError(): IReproError | null {
    return this._pollError;
  }

  get changed(): ISignal<IServerJob<TRequest, TResult>, void> {
    return this._changed;
  }

  get finished(): Promise<IJob<TResult>> {
    return this._finished.promise;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /**
   * Whether the job is still polled (not finished, not given up, not
   * disposed).
   */
  get isPolling(): boolean {
    return this._timer !== null || this._inFlight;
  }

  async cancel(): Promise<void> {
    if (this.isFinished || this._isDisposed) {
      return;
    }
    try {
      const job = await this._client.cancelJob<TResult>(this.id);
      this._update(job, null);
    } catch (error) {
      this._update(this._job, toReproError(error));
    }
    // A poll that gave up (errors) starts again: the cancel must be seen.
    if (!this.isFinished && !this.isPolling && !this._isDisposed) {
      this._errors = 0;
      this._schedule();
    }
  }

  /**
   * Poll once now (also restarts polling after it gave up on errors).
   * Never rejects.
   */
  async poll(): Promise<void> {
    if (this.isFinished || this._isDisposed || this._inFlight) {
      return;
    }
    this._clearTimer();
    this._inFlight = true;
    try {
      const job = await this._client.job<TResult>(this.id);
      this._errors = 0;
      this._update(job, null);
    } catch (error) {
      this._errors += 1;
      const stop =
        (error instanceof ReproRequestError && error.status === 404) ||
        this._errors >= this._maxErrors;
      this._update(this._job, toReproError(error));
      if (stop) {
        // Forgotten by the server, or unreachable: stop, keep what we know.
        this._inFlight = false;
        this._finished.resolve(this._job);
        return;
      }
    }
    this._inFlight = false;
    if (!this.isFinished) {
      this._schedule();
    }
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._clearTimer();
    this._finished.resolve(this._job);
    Signal.clearData(this);
  }

  private _update(job: IJob<TResult>, error: IReproError | null): void {
    if (this._isDisposed) {
      return;
    }
    this._job = job;
    this._pollError = error;
    if (this.isFinished) {
      this._clearTimer();
      this._finished.resolve(job);
    }
    this._changed.emit();
  }

  private _schedule(): void {
    if (this._isDisposed || this._timer !== null) {
      return;
    }
    // Back off while the server does not answer.
    const delay = this._interval * Math.min(2 ** this._errors, 8);
    this._timer = setTimeout(() => {
      this._timer = null;
      void this.poll();
    }, delay);
  }

  private _clearTimer(): void {
    if (this._timer !== null) {
      clearTimeout(this._timer);
      this._timer = null;
    }
  }

  private _client: ReproClient;
  private _job: IJob<TResult>;
  private _interval: number;
  private _maxErrors: number;
  private _errors = 0;
  private _inFlight = false;
  private _timer: ReturnType<typeof setTimeout> | null = null;
  private _pollError: IReproError | null = null;
  private _isDisposed = false;
  private _finished = new PromiseDelegate<IJob<TResult>>();
  private _changed = new Signal<IServerJob<TRequest, TResult>, void>(this);
}

/**
 * A namespace for `ServerJob` statics.
 */
export namespace ServerJob {
  /**
   * Options of the `ServerJob` constructor.
   */
  export interface IOptions<TRequest, TResult> {
    /**
     * The REST client that polls and cancels.
     */
    client: ReproClient;

    /**
     * The job as the server first reported it (the 202 body).
     */
    job: IJob<TResult>;

    /**
     * What the job was started with.
     */
    request: TRequest;

    /**
     * Milliseconds between polls; 500 by default.
     */
    interval?: number;

    /**
     * Consecutive failed polls after which polling stops; 5 by default.
     */
    maxErrors?: number;
  }
}

/**
 * A restore job on the server (`POST repro/restore`).
 */
export class RestoreJob extends ServerJob<IRestoreRequest, IRestoreResult> {}

/**
 * A namespace for `RestoreJob` statics.
 */
export namespace RestoreJob {
  /**
   * Options of the `RestoreJob` constructor.
   */
  export type IOptions = ServerJob.IOptions<IRestoreRequest, IRestoreResult>;
}

/**
 * A verify job on the server (`POST repro/verify`).
 */
export class VerifyJob extends ServerJob<IVerifyRequest, IVerifyReport> {}

/**
 * A namespace for `VerifyJob` statics.
 */
export namespace VerifyJob {
  /**
   * Options of the `VerifyJob` constructor.
   */
  export type IOptions = ServerJob.IOptions<IVerifyRequest, IVerifyReport>;
}
