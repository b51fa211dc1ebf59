import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { IReproError, IServerErrorBody } from './tokens';

/**
 * The URL namespace of the jupyter-repro server extension.
 */
export const API_NAMESPACE = 'repro';

/**
 * An error raised by `requestAPI`.
 *
 * `message` is the server's JSON `message` when the server sent one.
 */
export class ReproRequestError extends Error implements IReproError {
  constructor(
    message: string,
    options: {
      status?: number;
      reason?: string | null;
      response?: Response | null;
      url?: string;
    } = {}
  ) {
    super(message);
    this.name = 'ReproRequestError';
    this.status = options.status ?? 0;
    this.reason = options.reason ?? null;
    this.response = options.response ?? null;
    this.url = options.url ?? '';
  }

  /**
   * HTTP status of the response, or `0` if no response was received.
   */
  readonly status: number;

  /**
   * The server's `reason`, if any.
   */
  readonly reason: string | null;

  /**
   * The failed response, if one was received.
   */
  readonly response: Response | null;

  /**
   * The requested URL.
   */
  readonly url: string;
}

/**
 * Call the jupyter-repro REST API.
 *
 * @param endPoint - path below `{baseUrl}repro/`, e.g. `status`
 * @param init - initial values for the request (method, body, ...)
 * @param serverSettings - connection settings; the defaults when omitted
 * @returns the response body parsed as JSON (`null` for an empty body)
 * @throws {ReproRequestError} on a network error, an error status or a
 *   body that is not JSON
 */
export async function requestAPI<T>(
  endPoint = '',
  init: RequestInit = {},
  serverSettings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const url = URLExt.join(serverSettings.baseUrl, API_NAMESPACE, endPoint);

  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, serverSettings);
  } catch (error) {
    throw new ReproRequestError(
      `Could not reach the Jupyter server: ${Private.describe(error)}`,
      { url }
    );
  }

  const text = await response.text();
  let data: unknown = null;
  let parsed = true;
  if (text.length > 0) {
    try {
      data = JSON.parse(text);
    } catch {
      parsed = false;
    }
  }

  if (!response.ok) {
    const body = Private.asErrorBody(data);
    throw new ReproRequestError(
      body?.message || Private.statusMessage(response),
      {
        status: response.status,
        reason: body?.reason ?? null,
        response,
        url
      }
    );
  }

  if (!parsed) {
    throw new ReproRequestError(
      `The server sent a response that is not JSON (from ${url}).`,
      { status: response.status, response, url }
    );
  }
  return data as T;
}

/**
 * Module-private helpers.
 */
namespace Private {
  /**
   * Return `data` if it looks like a jupyter-repro error body.
   */
  export function asErrorBody(data: unknown): IServerErrorBody | null {
    if (
      typeof data === 'object' &&
      data !== null &&
      typeof (data as IServerErrorBody).message === 'string'
    ) {
      const body = data as IServerErrorBody;
      return {
        message: body.message,
        reason: typeof body.reason === 'string' ? body.reason : null
      };
    }
    return null;
  }

  /**
   * A message for an error response without a JSON `message`.
   */
  export function statusMessage(response: Response): string {
    const status = `${response.status}${response.statusText ? ` ${response.statusText}` : ''}`;
    if (response.status === 404) {
      return (
        `The jupyter-repro server extension did not answer (${status}). ` +
        'Check that it is installed and enabled, then restart the server.'
      );
    }
    return `The server answered ${status}.`;
  }

  /**
   * A short description of anything thrown.
   */
  export function describe(error: unknown): string {
    if (error instanceof Error) {
      return error.message;
    }
    return String(error);
  }
}
