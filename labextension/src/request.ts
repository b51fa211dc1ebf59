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
 * Call the jupyter-repro REST API and return the successful response.
 *
 * @param endPoint - path below `{baseUrl}repro/`, e.g. `status`
 * @param init - initial values for the request (method, body, ...)
 * @param serverSettings - connection settings; the defaults when omitted
 * @returns the response, whose status is 2xx
 * @throws {ReproRequestError} on a network error or an error status; its
 *   message is the server's JSON `message` when there is one
 */
export async function fetchAPI(
  endPoint = '',
  init: RequestInit = {},
  serverSettings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<Response> {
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
  if (response.ok) {
    return response;
  }

  let data: unknown = null;
  try {
    data = JSON.parse(await response.text());
  } catch {
    // Not JSON (a proxy's error page, say): the status line has to do.
  }
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

/**
 * Call the jupyter-repro REST API and parse its JSON answer.
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
  const response = await fetchAPI(endPoint, init, serverSettings);
  const text = await Private.readText(response);
  if (text.length === 0) {
    return null as T;
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new ReproRequestError(
      `The server sent a response that is not JSON (from ${response.url || endPoint}).`,
      { status: response.status, response, url: response.url }
    );
  }
}

/**
 * Call the jupyter-repro REST API for a text answer (exported specs).
 *
 * @returns the body as text and the response (for its headers)
 * @throws {ReproRequestError} like `fetchAPI`
 */
export async function requestText(
  endPoint = '',
  init: RequestInit = {},
  serverSettings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<{ text: string; response: Response }> {
  const response = await fetchAPI(endPoint, init, serverSettings);
  return { text: await Private.readText(response), response };
}

/**
 * The endpoint of a notebook route: `notebooks/{path}/{action}`, each path
 * segment URL-encoded (the server decodes them).
 */
export function notebookEndpoint(path: string, action: string): string {
  const encoded = path
    .split('/')
    .filter(segment => segment.length > 0)
    .map(encodeURIComponent)
    .join('/');
  return `notebooks/${encoded}/${action}`;
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
   * The body of a successful response as text.
   *
   * @throws {ReproRequestError} when the connection breaks while reading
   */
  export async function readText(response: Response): Promise<string> {
    try {
      return await response.text();
    } catch (error) {
      throw new ReproRequestError(
        `The connection broke while reading the answer: ${describe(error)}`,
        { status: response.status, response, url: response.url }
      );
    }
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
