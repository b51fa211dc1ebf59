import {
  filterEnvironments,
  filterWords,
  keepOutputFor,
  kernelNameFor,
  matchesWords,
  ReproModel,
  searchText,
  stripsOnSave
} from '../model';
import { IStripPolicy } from '../tokens';
import { env, failure, flush, jobBody, mockServer, settings } from './server';

const ENVS = [
  env('base', {
    prefix: '/opt/conda',
    is_base: true,
    kernels: ['conda-base-py']
  }),
  env('analysis'),
  env('ml-gpu', { python_version: '3.10.2' }),
  env('tools', { kind: 'venv', python_version: null, kernels: [] })
];

const POLICY: IStripPolicy = {
  on_save: true,
  keep_output: false,
  sources: [],
  options: {}
};

describe('filter', () => {
  it('splits and lower-cases the words', () => {
    expect(filterWords('  ML  Gpu ')).toEqual(['ml', 'gpu']);
    expect(filterWords('')).toEqual([]);
  });

  it('matches every word anywhere in the searchable text', () => {
    const text = searchText(ENVS[2]);
    expect(matchesWords(text, ['gpu', '3.10'])).toBe(true);
    expect(matchesWords(text, ['gpu', '3.11'])).toBe(false);
    expect(matchesWords(text, [])).toBe(true);
  });

  it('filters by name, kind, Python version and kernel, keeping order', () => {
    const names = (filter: string) =>
      filterEnvironments(ENVS, filter).map(e => e.name);
    expect(names('')).toEqual(['base', 'analysis', 'ml-gpu', 'tools']);
    expect(names('ANA')).toEqual(['analysis']);
    expect(names('venv')).toEqual(['tools']);
    expect(names('python 3.11')).toEqual(['base', 'analysis']);
    expect(names('conda-base-py')).toEqual(['base']);
    expect(names('nothing-like-this')).toEqual([]);
  });
});

describe('kernelNameFor', () => {
  it('follows the kernel naming contract', () => {
    expect(kernelNameFor('analysis')).toBe('conda-env-analysis-py');
    expect(kernelNameFor('my env+1')).toBe('conda-env-my_env_1-py');
    expect(kernelNameFor('base')).toBe('conda-base-py');
    expect(kernelNameFor(null)).toBe('conda-base-py');
  });
});

describe('strip policy', () => {
  it('strips on save unless a keep_output says otherwise', () => {
    expect(stripsOnSave(POLICY, undefined)).toBe(true);
    expect(stripsOnSave(POLICY, true)).toBe(false);
    expect(stripsOnSave({ ...POLICY, keep_output: true }, undefined)).toBe(
      false
    );
    expect(stripsOnSave({ ...POLICY, keep_output: true }, false)).toBe(true);
    expect(stripsOnSave({ ...POLICY, on_save: false }, false)).toBe(false);
    // Not a boolean: ignored, like nbstripout does.
    expect(stripsOnSave(POLICY, 'yes')).toBe(true);
    // The server may forbid notebook overrides.
    const fixed = { ...POLICY, options: { notebook_overrides: false } };
    expect(stripsOnSave(fixed, true)).toBe(true);
  });

  it('toggles through the notebook-level keep_output', () => {
    expect(keepOutputFor(POLICY, false)).toBe(true);
    expect(keepOutputFor(POLICY, true)).toBeUndefined();
    const keeps = { ...POLICY, keep_output: true };
    expect(keepOutputFor(keeps, true)).toBe(false);
    for (const policy of [POLICY, keeps]) {
      for (const strip of [true, false]) {
        expect(stripsOnSave(policy, keepOutputFor(policy, strip))).toBe(strip);
      }
    }
  });
});

describe('ReproModel', () => {
  let server: ReturnType<typeof mockServer> | null = null;
  let model: ReproModel | null = null;
  afterEach(() => {
    model?.dispose();
    model = null;
    server?.restore();
    server = null;
    jest.useRealTimers();
  });

  it('loads the status and the environments', async () => {
    server = mockServer({
      'GET status': () => ({
        body: {
          version: '0.1.0',
          engine: { name: 'rattler', version: '0.28', embedded: true },
          clis: { conda: null }
        }
      }),
      'GET environments': () => ({ body: { environments: ENVS } })
    });
    model = new ReproModel({
      serverSettings: settings(),
      frontendVersion: '0.1.0'
    });
    const phases: string[] = [];
    model.environmentsChanged.connect(() =>
      phases.push(model!.environmentsPhase)
    );
    await model.refresh();
    expect(model.phase).toBe('ready');
    expect(model.versionMismatch).toBe(false);
    expect(model.environments.map(e => e.name)).toEqual(ENVS.map(e => e.name));
    expect(phases).toEqual(['loading', 'ready']);
  });

  it('keeps the listing and stores the error when a refresh fails', async () => {
    let fail = false;
    server = mockServer({
      'GET environments': () =>
        fail
          ? { status: 500, body: { message: 'disk on fire', reason: null } }
          : { body: { environments: ENVS } }
    });
    model = new ReproModel({ serverSettings: settings() });
    await model.refreshEnvironments();
    fail = true;
    await model.refreshEnvironments();
    expect(model.environmentsPhase).toBe('error');
    expect(model.environmentsError).toEqual({
      message: 'disk on fire',
      status: 500,
      reason: null
    });
    expect(model.environments).toHaveLength(ENVS.length);
  });

  it('filters and signals filter changes once', async () => {
    server = mockServer({
      'GET environments': () => ({ body: { environments: ENVS } })
    });
    model = new ReproModel({ serverSettings: settings() });
    await model.refreshEnvironments();
    let signals = 0;
    model.environmentsChanged.connect(() => signals++);
    model.setFilter('ml');
    model.setFilter('ml');
    expect(signals).toBe(1);
    expect(model.filteredEnvironments.map(e => e.name)).toEqual(['ml-gpu']);
  });

  it('follows the drift of the active notebook through its states', async () => {
    let drift: Record<string, unknown> = {
      status: 'in_sync',
      added: [],
      removed: [],
      changed: []
    };
    server = mockServer({
      'GET environments': () => ({ body: { environments: ENVS } }),
      'POST notebooks/nb.ipynb/drift': () => ({ body: drift }),
      'GET notebooks/nb.ipynb/strip-policy': () => ({ body: POLICY })
    });
    model = new ReproModel({ serverSettings: settings() });
    await model.refreshEnvironments();
    const seen: string[] = [];
    model.activeNotebookChanged.connect(() =>
      seen.push(`${model!.driftPhase}:${model!.drift?.status ?? '-'}`)
    );

    await model.setActiveNotebook({
      path: 'nb.ipynb',
      kernelName: 'conda-env-analysis-py'
    });
    expect(model.activeEnvironment?.name).toBe('analysis');
    expect(model.stripPolicy).toEqual(POLICY);

    drift = {
      status: 'drifted',
      added: ['numpy'],
      removed: [],
      changed: [
        {
          name: 'python',
          spec: 'python=3.11.4',
          spec_version: '3.11.4',
          installed_version: '3.11.5'
        }
      ]
    };
    await model.refreshActiveNotebook();
    expect(model.drift?.changed[0].installed_version).toBe('3.11.5');

    drift = {
      status: 'missing_environment',
      added: [],
      removed: [],
      changed: [],
      message: 'gone'
    };
    await model.refreshActiveNotebook();
    expect(model.drift?.message).toBe('gone');

    await model.setActiveNotebook(null);
    expect(model.drift).toBeNull();
    expect(model.activeEnvironment).toBeNull();

    expect(seen).toEqual([
      'loading:-',
      'ready:in_sync',
      'loading:in_sync',
      'ready:drifted',
      'loading:drifted',
      'ready:missing_environment',
      'idle:-'
    ]);
  });

  it('stores drift and strip-policy errors separately', async () => {
    server = mockServer({
      'POST notebooks/nb.ipynb/drift': () => ({
        status: 422,
        body: { message: 'line 3: bad spec', reason: 'invalid spec' }
      })
    });
    model = new ReproModel({ serverSettings: settings() });
    await model.setActiveNotebook({ path: 'nb.ipynb', kernelName: 'k' });
    expect(model.driftPhase).toBe('error');
    expect(model.driftError).toEqual({
      message: 'line 3: bad spec',
      status: 422,
      reason: 'invalid spec'
    });
    expect(model.stripPolicy).toBeNull();
    expect(model.stripPolicyError?.status).toBe(404);
  });

  it('ignores the answer for a notebook that is no longer active', async () => {
    let release: () => void = () => undefined;
    const slow = new Promise<void>(resolve => (release = resolve));
    server = mockServer({
      'POST notebooks/old.ipynb/drift': async () => {
        await slow;
        return {
          body: { status: 'drifted', added: ['x'], removed: [], changed: [] }
        };
      },
      'POST notebooks/new.ipynb/drift': () => ({
        body: { status: 'in_sync', added: [], removed: [], changed: [] }
      })
    });
    model = new ReproModel({ serverSettings: settings() });
    const first = model.setActiveNotebook({
      path: 'old.ipynb',
      kernelName: 'k'
    });
    await model.setActiveNotebook({ path: 'new.ipynb', kernelName: 'k' });
    release();
    await first;
    expect(model.activeNotebook?.path).toBe('new.ipynb');
    expect(model.drift?.status).toBe('in_sync');
  });

  it('follows a restore job and refreshes the environments on success', async () => {
    jest.useFakeTimers({
      doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask']
    });
    let listed = [ENVS[0]];
    let polls = 0;
    server = mockServer({
      'POST restore': () => ({ status: 202, body: jobBody('queued') }),
      'GET jobs/j1': () => {
        polls++;
        if (polls < 2) {
          return { body: jobBody('running') };
        }
        listed = ENVS;
        return {
          body: jobBody('succeeded', { result: { prefix: '/x', name: 'x' } })
        };
      },
      'GET environments': () => ({ body: { environments: listed } })
    });
    model = new ReproModel({ serverSettings: settings(), jobInterval: 10 });
    let changes = 0;
    model.restoreChanged.connect(() => changes++);
    const job = await model.startRestore({ source: { content: 'x' } });
    expect(model.restoreJob).toBe(job);

    // A second restore is refused while the first runs.
    const refused = await failure(
      model.startRestore({ source: { content: 'y' } })
    );
    expect(refused.reason).toBe('restore running');

    for (let i = 0; i < 3; i++) {
      jest.advanceTimersByTime(10);
      await flush();
    }
    expect(job.job.state).toBe('succeeded');
    await flush();
    expect(model.environments).toHaveLength(ENVS.length);
    expect(changes).toBeGreaterThanOrEqual(3);
  });
});
