import { DriftWatch } from '../driftWatch';
import { ReproModel, sameEmbedded } from '../model';
import { IStripPolicy } from '../tokens';
import { flush, jobBody, mockServer, settings } from './server';

const POLICY: IStripPolicy = {
  on_save: true,
  keep_output: false,
  sources: [],
  options: {}
};

const IN_SYNC = { status: 'in_sync', added: [], removed: [], changed: [] };
const DRIFTED = {
  status: 'drifted',
  added: ['pkgc'],
  removed: [],
  changed: []
};
const SPEC = { environment: { dependencies: ['python'] } };

/**
 * A document whose visibility the test sets.
 */
class FakeDocument extends EventTarget {
  visibilityState: DocumentVisibilityState = 'visible';

  setVisibility(state: DocumentVisibilityState): void {
    this.visibilityState = state;
    this.dispatchEvent(new Event('visibilitychange'));
  }
}

describe('the drift of the open notebook', () => {
  let server: ReturnType<typeof mockServer> | null = null;
  let model: ReproModel | null = null;
  let watch: DriftWatch | null = null;
  afterEach(() => {
    watch?.dispose();
    watch = null;
    model?.dispose();
    model = null;
    server?.restore();
    server = null;
    jest.useRealTimers();
  });

  it('sends the session kernel and the spec in memory', async () => {
    server = mockServer({
      'POST notebooks/dir/nb.ipynb/drift': () => ({ body: IN_SYNC }),
      'GET notebooks/dir/nb.ipynb/strip-policy': () => ({ body: POLICY })
    });
    model = new ReproModel({ serverSettings: settings() });

    await model.setActiveNotebook({
      path: 'dir/nb.ipynb',
      kernelName: 'conda-env-a-py',
      embedded: SPEC
    });

    const posts = server.calls.filter(c => c.method === 'POST');
    expect(posts.map(c => c.body)).toEqual([
      { kernel: 'conda-env-a-py', metadata: SPEC }
    ]);
    expect(model.drift?.status).toBe('in_sync');
  });

  it('leaves the metadata out when the file decides, null when none', async () => {
    server = mockServer({
      'POST notebooks/nb.ipynb/drift': () => ({ body: IN_SYNC }),
      'GET notebooks/nb.ipynb/strip-policy': () => ({ body: POLICY })
    });
    model = new ReproModel({ serverSettings: settings() });

    await model.setActiveNotebook({ path: 'nb.ipynb', kernelName: 'k' });
    await model.setActiveNotebook({
      path: 'nb.ipynb',
      kernelName: 'k',
      embedded: null
    });

    const bodies = server.calls
      .filter(c => c.method === 'POST')
      .map(c => c.body);
    expect(bodies).toEqual([{ kernel: 'k' }, { kernel: 'k', metadata: null }]);
  });

  it('asks nothing for a notebook without a kernel yet', async () => {
    server = mockServer({
      'GET notebooks/Untitled.ipynb/strip-policy': () => ({ body: POLICY })
    });
    model = new ReproModel({ serverSettings: settings() });

    await model.setActiveNotebook({
      path: 'Untitled.ipynb',
      kernelName: null,
      embedded: null
    });

    expect(server.calls.filter(c => c.url.includes('/drift'))).toHaveLength(0);
    expect(model.drift).toBeNull();
    expect(model.driftError).toBeNull();
    expect(model.driftPhase).toBe('ready');
    expect(model.stripPolicy).toEqual(POLICY);
  });

  it('asks again for the drift only when the kernel or the spec changes', async () => {
    let drift: unknown = IN_SYNC;
    server = mockServer({
      'POST notebooks/nb.ipynb/drift': () => ({ body: drift }),
      'GET notebooks/nb.ipynb/strip-policy': () => ({ body: POLICY })
    });
    model = new ReproModel({ serverSettings: settings() });
    const state = { path: 'nb.ipynb', kernelName: 'a', embedded: SPEC };
    await model.setActiveNotebook(state);

    // The same state (a keep_output toggle, say): nothing asked.
    await model.setActiveNotebook({ ...state, embedded: { ...SPEC } });
    expect(server.calls).toHaveLength(2);

    // Another kernel: the drift, not the strip policy.
    drift = DRIFTED;
    await model.setActiveNotebook({ ...state, kernelName: 'b' });
    expect(server.calls).toHaveLength(3);
    expect(server.calls[2].body).toEqual({ kernel: 'b', metadata: SPEC });
    expect(model.drift?.status).toBe('drifted');

    // Another spec in memory (an export embedded it).
    const other = { environment: { dependencies: ['python', 'pkgc'] } };
    drift = IN_SYNC;
    await model.setActiveNotebook({
      ...state,
      kernelName: 'b',
      embedded: other
    });
    expect(server.calls).toHaveLength(4);
    expect(server.calls[3].body).toEqual({ kernel: 'b', metadata: other });
    expect(model.drift?.status).toBe('in_sync');
  });

  it('signals a quiet refresh only when the answer changed', async () => {
    let drift: unknown = IN_SYNC;
    let fail = false;
    server = mockServer({
      'POST notebooks/nb.ipynb/drift': () =>
        fail ? new Error('connection refused') : { body: drift },
      'GET notebooks/nb.ipynb/strip-policy': () => ({ body: POLICY })
    });
    model = new ReproModel({ serverSettings: settings() });
    await model.setActiveNotebook({ path: 'nb.ipynb', kernelName: 'k' });
    const seen: string[] = [];
    model.activeNotebookChanged.connect(() =>
      seen.push(`${model!.driftPhase}:${model!.drift?.status ?? '-'}`)
    );

    await model.refreshDrift({ quiet: true });
    await model.refreshDrift({ quiet: true });
    expect(seen).toEqual([]);

    drift = DRIFTED;
    await model.refreshDrift({ quiet: true });
    expect(seen).toEqual(['ready:drifted']);

    // A failed poll keeps what is shown.
    fail = true;
    await model.refreshDrift({ quiet: true });
    expect(seen).toEqual(['ready:drifted']);
    expect(model.driftError).toBeNull();

    // A loud refresh shows its phases.
    fail = false;
    drift = IN_SYNC;
    await model.refreshDrift();
    expect(seen).toEqual(['ready:drifted', 'loading:drifted', 'ready:in_sync']);
  });

  it('keeps the answer of the latest drift request', async () => {
    let release: () => void = () => undefined;
    const slow = new Promise<void>(resolve => (release = resolve));
    server = mockServer({
      'POST notebooks/nb.ipynb/drift': async call => {
        if ((call.body as { kernel: string }).kernel === 'old') {
          await slow;
          return { body: DRIFTED };
        }
        return { body: IN_SYNC };
      },
      'GET notebooks/nb.ipynb/strip-policy': () => ({ body: POLICY })
    });
    model = new ReproModel({ serverSettings: settings() });
    await model.setActiveNotebook({ path: 'nb.ipynb', kernelName: 'x' });
    const first = model.setActiveNotebook({
      path: 'nb.ipynb',
      kernelName: 'old'
    });
    await model.setActiveNotebook({ path: 'nb.ipynb', kernelName: 'new' });
    release();
    await first;
    expect(model.drift?.status).toBe('in_sync');
  });

  it('compares embedded values', () => {
    expect(sameEmbedded(undefined, undefined)).toBe(true);
    expect(sameEmbedded(undefined, null)).toBe(false);
    expect(sameEmbedded(null, null)).toBe(true);
    expect(sameEmbedded(SPEC, { ...SPEC })).toBe(true);
    expect(sameEmbedded(SPEC, null)).toBe(false);
  });

  describe('DriftWatch', () => {
    it('polls while the drift is on screen and the tab visible', async () => {
      jest.useFakeTimers({
        doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask']
      });
      let drift: unknown = IN_SYNC;
      server = mockServer({
        'POST notebooks/nb.ipynb/drift': () => ({ body: drift }),
        'GET notebooks/nb.ipynb/strip-policy': () => ({ body: POLICY })
      });
      model = new ReproModel({ serverSettings: settings() });
      await model.setActiveNotebook({ path: 'nb.ipynb', kernelName: 'k' });
      let visible = true;
      const doc = new FakeDocument();
      watch = new DriftWatch({
        model,
        isVisible: () => visible,
        interval: 1000,
        document: doc as unknown as Document
      });
      const posts = () => server!.calls.filter(c => c.method === 'POST').length;
      const before = posts();

      // Installed on disk: seen by the next poll.
      drift = DRIFTED;
      jest.advanceTimersByTime(1000);
      await flush();
      expect(posts()).toBe(before + 1);
      expect(model.drift?.status).toBe('drifted');

      // The panel hidden: no requests.
      visible = false;
      jest.advanceTimersByTime(5000);
      await flush();
      expect(posts()).toBe(before + 1);

      // Shown again: checked at once.
      visible = true;
      watch.poke();
      jest.advanceTimersByTime(0);
      await flush();
      expect(posts()).toBe(before + 2);

      // The tab in the background: no requests; back: at once.
      doc.setVisibility('hidden');
      jest.advanceTimersByTime(5000);
      await flush();
      expect(posts()).toBe(before + 2);
      doc.setVisibility('visible');
      jest.advanceTimersByTime(0);
      await flush();
      expect(posts()).toBe(before + 3);
      expect(watch.checks).toBe(3);
    });

    it('sends nothing for a notebook without a kernel', async () => {
      jest.useFakeTimers({
        doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask']
      });
      server = mockServer({
        'GET notebooks/nb.ipynb/strip-policy': () => ({ body: POLICY })
      });
      model = new ReproModel({ serverSettings: settings() });
      await model.setActiveNotebook({ path: 'nb.ipynb', kernelName: null });
      watch = new DriftWatch({
        model,
        isVisible: () => true,
        interval: 100,
        document: new FakeDocument() as unknown as Document
      });
      jest.advanceTimersByTime(1000);
      await flush();
      expect(server.calls.filter(c => c.url.includes('/drift'))).toHaveLength(
        0
      );
    });

    it('checks the drift when a restore job finishes', async () => {
      jest.useFakeTimers({
        doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask']
      });
      let drift: unknown = {
        status: 'missing_environment',
        added: [],
        removed: [],
        changed: []
      };
      let polls = 0;
      server = mockServer({
        'POST notebooks/nb.ipynb/drift': () => ({ body: drift }),
        'GET notebooks/nb.ipynb/strip-policy': () => ({ body: POLICY }),
        'POST restore': () => ({ status: 202, body: jobBody('queued') }),
        'GET jobs/j1': () => {
          polls++;
          if (polls < 2) {
            return { body: jobBody('running') };
          }
          drift = IN_SYNC; // the environment exists now
          return {
            body: jobBody('succeeded', { result: { prefix: '/x', name: 'x' } })
          };
        },
        'GET environments': () => ({ body: { environments: [] } })
      });
      model = new ReproModel({ serverSettings: settings(), jobInterval: 10 });
      await model.setActiveNotebook({ path: 'nb.ipynb', kernelName: 'k' });
      expect(model.drift?.status).toBe('missing_environment');
      watch = new DriftWatch({
        model,
        isVisible: () => false, // not even on screen
        interval: 60_000,
        document: new FakeDocument() as unknown as Document
      });
      await model.startRestore({ source: { notebook: 'nb.ipynb' } });
      for (let i = 0; i < 3; i++) {
        jest.advanceTimersByTime(10);
        await flush();
      }
      await flush();
      expect(model.drift?.status).toBe('in_sync');
    });
  });
});
