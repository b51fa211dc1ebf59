import { ServerConnection } from '@jupyterlab/services';
import { ReproRequestError } from '../request';
import { IEnvironmentSummary } from '../tokens';

/**
 * A recorded request.
 */
export interface ICall {
  url: string;
  method: string;
  body: unknown;
}

/**
 * What a route handler answers: a status, a body (JSON unless a string)
 * and headers; or an Error to simulate a network failure.
 */
export type Answer =
  { status?: number; body?: unknown; headers?: Record<string, string> } | Error;

/**
 * A route: the method and the path below `repro/` (query included).
 */
export type Handler = (call: ICall) => Answer | Promise<Answer>;

export const BASE_URL = 'http://localhost:8888/lab-base/';

/**
 * Server settings for the tests.
 */
export function settings(): ServerConnection.ISettings {
  return ServerConnection.makeSettings({ baseUrl: BASE_URL });
}

/**
 * Replace `ServerConnection.makeRequest` (the one network boundary) with
 * `routes`, keyed `METHOD path`. Unknown routes answer 404 without a body.
 */
export function mockServer(routes: Record<string, Handler>): {
  calls: ICall[];
  restore: () => void;
} {
  const calls: ICall[] = [];
  const spy = jest
    .spyOn(ServerConnection, 'makeRequest')
    .mockImplementation(async (url: string, init: RequestInit) => {
      const method = (init.method ?? 'GET').toUpperCase();
      const path = url.slice(`${BASE_URL}repro/`.length);
      const body =
        typeof init.body === 'string' ? JSON.parse(init.body) : undefined;
      const call = { url, method, body };
      calls.push(call);
      const handler = routes[`${method} ${path}`];
      if (!handler) {
        return new Response('', { status: 404, statusText: 'Not Found' });
      }
      const answer = await handler(call);
      if (answer instanceof Error) {
        throw answer;
      }
      const payload =
        answer.body === undefined
          ? ''
          : typeof answer.body === 'string'
            ? answer.body
            : JSON.stringify(answer.body);
      return new Response(payload, {
        status: answer.status ?? 200,
        headers: answer.headers
      });
    });
  return { calls, restore: () => spy.mockRestore() };
}

/**
 * A job body in a given state.
 */
export function jobBody(
  state: string,
  extra: Record<string, unknown> = {}
): Record<string, unknown> {
  return {
    id: 'j1',
    kind: 'restore',
    state,
    progress: { phase: 'installing', done: 1, total: 3 },
    log: ['line'],
    log_dropped: 0,
    result: null,
    error: null,
    cancel_requested: false,
    created: '2024-05-01T12:00:00Z',
    started: null,
    finished: null,
    ...extra
  };
}

/**
 * The ReproRequestError `promise` rejects with (fails the test if it
 * resolves or rejects with something else).
 */
export async function failure(
  promise: Promise<unknown>
): Promise<ReproRequestError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ReproRequestError) {
      return error;
    }
    throw new Error(`expected a ReproRequestError, got ${String(error)}`);
  }
  throw new Error('expected the request to fail');
}

/**
 * Let mocked responses settle: their bodies are read by streams that
 * finish on later turns of the event loop (not faked by the tests).
 */
export async function flush(): Promise<void> {
  const { setImmediate } = jest.requireActual('timers') as {
    setImmediate: (callback: () => void) => void;
  };
  for (let i = 0; i < 5; i++) {
    await new Promise<void>(resolve => setImmediate(resolve));
  }
}

/**
 * A listed conda environment called `name`, with a Python kernel.
 */
export function env(
  name: string,
  extra: Partial<IEnvironmentSummary> = {}
): IEnvironmentSummary {
  return {
    name,
    prefix: `/opt/conda/envs/${name}`,
    kind: 'conda',
    python_version: '3.11.4',
    kernels: [`conda-env-${name}-py`],
    is_base: false,
    is_server_env: false,
    writable: true,
    ...extra
  };
}
