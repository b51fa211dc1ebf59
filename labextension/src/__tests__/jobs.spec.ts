import { ReproClient } from '../client';
import { isTerminal, RestoreJob } from '../jobs';
import { IJob, IRestoreRequest } from '../tokens';
import { flush, jobBody, mockServer, settings } from './server';

const REQUEST: IRestoreRequest = { source: { file: 'environment.yml' } };

function job(state: string, extra: Record<string, unknown> = {}): IJob {
  return jobBody(state, extra) as unknown as IJob;
}

describe('isTerminal', () => {
  it('knows the final states', () => {
    expect(isTerminal('succeeded')).toBe(true);
    expect(isTerminal('failed')).toBe(true);
    expect(isTerminal('cancelled')).toBe(true);
    expect(isTerminal('queued')).toBe(false);
    expect(isTerminal('running')).toBe(false);
  });
});

describe('RestoreJob', () => {
  let server: ReturnType<typeof mockServer> | null = null;
  beforeEach(() => {
    jest.useFakeTimers({
      doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask']
    });
  });
  afterEach(() => {
    server?.restore();
    server = null;
    jest.useRealTimers();
  });

  it('polls until the job succeeds, then stops', async () => {
    const states = ['running', 'running', 'succeeded'];
    server = mockServer({
      'GET jobs/j1': () => ({
        body: jobBody(states.shift() ?? 'succeeded', {
          result: { prefix: '/envs/new', name: 'new' }
        })
      })
    });
    const restore = new RestoreJob({
      client: new ReproClient(settings()),
      job: job('queued'),
      request: REQUEST,
      interval: 100
    });
    const seen: string[] = [];
    restore.changed.connect(() => seen.push(restore.job.state));

    for (let i = 0; i < 3; i++) {
      jest.advanceTimersByTime(100);
      await flush();
    }
    expect(seen).toEqual(['running', 'running', 'succeeded']);
    expect(restore.isFinished).toBe(true);
    expect(restore.isPolling).toBe(false);
    await expect(restore.finished).resolves.toMatchObject({
      state: 'succeeded'
    });

    // No more requests once finished.
    const count = server.calls.length;
    jest.advanceTimersByTime(10000);
    await flush();
    expect(server.calls.length).toBe(count);
  });

  it.each(['failed', 'cancelled'])('stops on %s', async state => {
    server = mockServer({ 'GET jobs/j1': () => ({ body: jobBody(state) }) });
    const restore = new RestoreJob({
      client: new ReproClient(settings()),
      job: job('running'),
      request: REQUEST,
      interval: 50
    });
    jest.advanceTimersByTime(50);
    await flush();
    expect(restore.job.state).toBe(state);
    expect(restore.isPolling).toBe(false);
    jest.advanceTimersByTime(5000);
    await flush();
    expect(server.calls.length).toBe(1);
  });

  it('does not poll a job that is already finished', async () => {
    server = mockServer({});
    const restore = new RestoreJob({
      client: new ReproClient(settings()),
      job: job('succeeded'),
      request: REQUEST
    });
    jest.advanceTimersByTime(5000);
    await flush();
    expect(server.calls).toHaveLength(0);
    await expect(restore.finished).resolves.toMatchObject({
      state: 'succeeded'
    });
  });

  it('cancels with DELETE and polls until cancelled', async () => {
    let cancelled = false;
    server = mockServer({
      'DELETE jobs/j1': () => {
        cancelled = true;
        return {
          status: 202,
          body: jobBody('running', { cancel_requested: true })
        };
      },
      'GET jobs/j1': () => ({
        body: cancelled
          ? jobBody('cancelled', { cancel_requested: true })
          : jobBody('running')
      })
    });
    const restore = new RestoreJob({
      client: new ReproClient(settings()),
      job: job('running'),
      request: REQUEST,
      interval: 100
    });
    await restore.cancel();
    expect(server.calls.map(c => c.method)).toEqual(['DELETE']);
    expect(restore.job.cancel_requested).toBe(true);
    expect(restore.isFinished).toBe(false);

    jest.advanceTimersByTime(100);
    await flush();
    expect(restore.job.state).toBe('cancelled');
    expect(restore.isPolling).toBe(false);
  });

  it('keeps a cancel error in pollError and goes on polling', async () => {
    server = mockServer({
      'DELETE jobs/j1': () => ({
        status: 403,
        body: { message: 'forbidden', reason: null }
      }),
      'GET jobs/j1': () => ({ body: jobBody('succeeded') })
    });
    const restore = new RestoreJob({
      client: new ReproClient(settings()),
      job: job('running'),
      request: REQUEST,
      interval: 100
    });
    await restore.cancel();
    expect(restore.pollError).toMatchObject({
      message: 'forbidden',
      status: 403
    });
    jest.advanceTimersByTime(100);
    await flush();
    expect(restore.job.state).toBe('succeeded');
    expect(restore.pollError).toBeNull();
  });

  it('stops when the server forgot the job (404)', async () => {
    server = mockServer({
      'GET jobs/j1': () => ({
        status: 404,
        body: { message: 'no job j1', reason: 'job not found' }
      })
    });
    const restore = new RestoreJob({
      client: new ReproClient(settings()),
      job: job('running'),
      request: REQUEST,
      interval: 100
    });
    jest.advanceTimersByTime(100);
    await flush();
    expect(restore.pollError).toMatchObject({ status: 404 });
    expect(restore.isPolling).toBe(false);
    await expect(restore.finished).resolves.toMatchObject({ state: 'running' });
  });

  it('backs off on errors and gives up after maxErrors', async () => {
    server = mockServer({
      'GET jobs/j1': () => new TypeError('offline')
    });
    const restore = new RestoreJob({
      client: new ReproClient(settings()),
      job: job('running'),
      request: REQUEST,
      interval: 100,
      maxErrors: 3
    });
    for (let i = 0; i < 20; i++) {
      jest.advanceTimersByTime(100);
      await flush();
    }
    expect(server.calls).toHaveLength(3);
    expect(restore.pollError?.status).toBe(0);
    expect(restore.isPolling).toBe(false);
  });

  it('stops polling on dispose', async () => {
    server = mockServer({
      'GET jobs/j1': () => ({ body: jobBody('running') })
    });
    const restore = new RestoreJob({
      client: new ReproClient(settings()),
      job: job('running'),
      request: REQUEST,
      interval: 100
    });
    restore.dispose();
    jest.advanceTimersByTime(1000);
    await flush();
    expect(server.calls).toHaveLength(0);
    await expect(restore.finished).resolves.toMatchObject({ state: 'running' });
  });
});
