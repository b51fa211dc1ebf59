import { ReproClient } from '../client';
import { failure, mockServer, settings } from './server';

const NB = 'work/analysis.ipynb';
const ENV = 'notebooks/work/analysis.ipynb/environment';

describe('ReproClient.exportQuery', () => {
  it('passes the server modes as mode and explicit as a format', () => {
    expect(ReproClient.exportQuery('portable')).toBe(
      'mode=portable&format=yaml'
    );
    expect(ReproClient.exportQuery('no-builds', 'json')).toBe(
      'mode=no-builds&format=json'
    );
    expect(ReproClient.exportQuery('explicit')).toBe('format=explicit');
  });
});

describe('ReproClient', () => {
  let server: ReturnType<typeof mockServer> | null = null;
  afterEach(() => {
    server?.restore();
    server = null;
  });

  it('reports where a notebook spec came from', async () => {
    server = mockServer({
      [`GET ${ENV}?mode=exact&format=yaml`]: () => ({
        body: 'name: a\n',
        headers: { 'X-Jupyter-Repro-Source': 'embedded' }
      })
    });
    const client = new ReproClient(settings());
    await expect(client.notebookSpec(NB, 'exact')).resolves.toEqual({
      text: 'name: a\n',
      source: 'embedded'
    });
  });

  it('takes the embedded metadata from the server when it offers it', async () => {
    const value = {
      environment: { name: 'a', dependencies: ['python=3.11'] },
      exported: {
        at: '2024-05-01T12:00:00Z',
        platform: 'linux-64',
        mode: 'portable',
        tool_version: '0.1.0'
      }
    };
    server = mockServer({
      [`GET ${ENV}?mode=portable&format=metadata&explicit=false`]: () => ({
        body: value
      })
    });
    const client = new ReproClient(settings());
    await expect(client.embeddedMetadata(NB, 'portable')).resolves.toEqual(
      value
    );
  });

  it('passes other errors of the metadata route on', async () => {
    server = mockServer({
      [`GET ${ENV}?mode=portable&format=metadata&explicit=false`]: () => ({
        status: 404,
        body: { message: 'kernel not installed', reason: 'kernel not found' }
      })
    });
    const client = new ReproClient(settings());
    const error = await failure(client.embeddedMetadata(NB, 'portable'));
    expect(error.message).toBe('kernel not installed');
  });

  it('starts a restore without dry run and plans with one', async () => {
    server = mockServer({
      'POST restore': call =>
        (call.body as { dry_run: boolean }).dry_run
          ? {
              body: {
                target: '/envs/a',
                name: 'a',
                engine: 'rattler',
                packages: [],
                pip: [],
                channels: [],
                warnings: []
              }
            }
          : { status: 202, body: { id: 'j9', state: 'queued' } }
    });
    const client = new ReproClient(settings());
    const plan = await client.planRestore({ source: { content: 'x' } });
    expect(plan.target).toBe('/envs/a');
    const job = await client.startRestore({
      source: { content: 'x' },
      name: 'b'
    });
    expect(job.id).toBe('j9');
    expect(server.calls[1].body).toEqual({
      source: { content: 'x' },
      name: 'b',
      dry_run: false
    });
  });
});
