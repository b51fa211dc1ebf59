import { ReproClient } from '../client';
import { ReproModel } from '../model';
import { IJob, IVerifyJob, IVerifyReport } from '../tokens';
import {
  CellMarks,
  cellStates,
  findCellIndex,
  sourcesDiffer,
  withVerified
} from '../verify';
import {
  badgeText,
  reportCounts,
  reproduces,
  summaryText,
  VerifyView
} from '../widgets/verifyView';
import { failure, flush, jobBody, mockServer, settings } from './server';

const RECORD = {
  at: '2024-05-01T12:00:00Z',
  platform: 'linux-64',
  environment: 'sha256:abc',
  result: { match: 2, differs: 1, error: 1, no_reference: 0, skipped: 1 }
};

function report(extra: Partial<IVerifyReport> = {}): IVerifyReport {
  return {
    notebook: 'dir/nb.ipynb',
    environment: {
      kernel: 'conda-env-work-py',
      prefix: '/envs/work',
      lock_digest: null,
      platform: 'linux-64'
    },
    started: '2024-05-01T12:00:00Z',
    duration: 4.2,
    summary: { match: 2, differs: 1, error: 1, no_reference: 0, skipped: 1 },
    cells: [
      { id: 'a', index: 0, status: 'match', duration: 0.1 },
      { id: 'b', index: 2, status: 'differs', diff: '-4\n+3', duration: 0.1 },
      {
        id: 'c',
        index: 3,
        status: 'error',
        error: 'ZeroDivisionError: division by zero',
        duration: 0.1
      },
      { id: null, index: 4, status: 'skipped', duration: 0 },
      { id: 'e', index: 5, status: 'match', duration: 0.1 }
    ],
    verified_record: RECORD,
    ...extra
  };
}

function verifyJob(
  state: string,
  extra: Record<string, unknown> = {}
): IJob<IVerifyReport> {
  return jobBody(state, {
    kind: 'verify',
    progress: { phase: null, done: 0, total: 0 },
    log: [],
    ...extra
  }) as unknown as IJob<IVerifyReport>;
}

describe('report counts', () => {
  it('counts the cells that match of those compared', () => {
    const counts = reportCounts(report());
    expect(counts.matching).toBe(2);
    expect(counts.compared).toBe(4);
    expect(badgeText(report())).toBe('Reproduces: 2 of 4 cells match');
    expect(reproduces(report())).toBe(false);
  });

  it('says "41 of 42" for a notebook with one differing cell', () => {
    const big = report({
      summary: { match: 41, differs: 1, error: 0, no_reference: 0, skipped: 3 }
    });
    expect(badgeText(big)).toBe('Reproduces: 41 of 42 cells match');
  });

  it('counts the cells when the summary is missing', () => {
    const counted = report({ summary: {} });
    expect(reportCounts(counted).byStatus).toEqual({
      match: 2,
      differs: 1,
      error: 1,
      no_reference: 0,
      skipped: 1
    });
  });

  it('reproduces when nothing differs or fails', () => {
    const clean = report({
      summary: { match: 3, differs: 0, error: 0, no_reference: 2, skipped: 0 }
    });
    expect(reproduces(clean)).toBe(true);
    expect(badgeText(clean)).toBe('Reproduces: 3 of 5 cells match');
  });

  it('names the other counts and where it ran', () => {
    const job = verifyJob('succeeded', {
      result: report(),
      started: '2024-05-01T12:00:00.000Z',
      finished: '2024-05-01T12:00:04.200Z'
    });
    expect(summaryText(job)).toBe(
      '1 differs, 1 error, 1 skipped. Ran on conda-env-work-py (linux-64) in 4.2 s.'
    );
  });
});

describe('VerifyView.phaseText', () => {
  it('tells the restore steps, the cells run, the end', () => {
    expect(
      VerifyView.phaseText(
        verifyJob('running', {
          progress: { phase: 'restore', step: 'download', done: 2, total: 5 }
        })
      )
    ).toBe('Restoring the environment: downloading 2 of 5 packages…');
    expect(
      VerifyView.phaseText(
        verifyJob('running', {
          progress: {
            phase: 'execute',
            done: 1,
            total: 3,
            cells: [
              { index: 1, id: 'a', status: 'match' },
              { index: 3, id: 'b', status: 'running' }
            ]
          }
        })
      )
    ).toBe('Running cell 4 (1 of 3 cells done)…');
    expect(VerifyView.phaseText(verifyJob('running'))).toBe(
      'Starting the kernel…'
    );
    expect(
      VerifyView.phaseText(
        verifyJob('succeeded', {
          started: '2024-05-01T12:00:00.000Z',
          finished: '2024-05-01T12:00:01.500Z'
        })
      )
    ).toBe('Done in 1.5 s.');
    expect(VerifyView.phaseText(verifyJob('cancelled'))).toBe('Cancelled.');
  });
});

describe('cells of a verification', () => {
  it('finds a cell by id, else by index', () => {
    const ids = ['x', 'a', null, 'b'];
    expect(findCellIndex(ids, { id: 'b', index: 0 })).toBe(3);
    expect(findCellIndex(ids, { id: 'gone', index: 2 })).toBe(2);
    expect(findCellIndex(ids, { id: null, index: 1 })).toBe(1);
    expect(findCellIndex(ids, { id: 'gone', index: 9 })).toBe(-1);
  });

  it('keeps the rest of metadata.jupyter_repro when recording', () => {
    const existing = { environment: { name: 'x' }, verified: { at: 'old' } };
    expect(withVerified(existing, RECORD)).toEqual({
      environment: { name: 'x' },
      verified: RECORD
    });
    expect(withVerified(undefined, RECORD)).toEqual({ verified: RECORD });
    expect(withVerified(['not', 'an', 'object'], RECORD)).toEqual({
      verified: RECORD
    });
  });

  it('takes the states from the progress, then from the report', () => {
    const cells = [{ index: 1, id: 'a', status: 'running' as const }];
    expect(
      cellStates(
        verifyJob('running', {
          progress: { phase: 'execute', done: 0, total: 1, cells }
        })
      )
    ).toEqual(cells);
    expect(
      cellStates(verifyJob('succeeded', { result: report() })).map(
        c => c.status
      )
    ).toEqual(['match', 'differs', 'error', 'skipped', 'match']);
  });

  it('asks to save only when the code differs from the file', () => {
    const saved = [
      { cell_type: 'markdown', source: ['# A\n', 'b'] },
      { cell_type: 'code', source: 'print(1)', outputs: [] }
    ];
    const same = [
      ['markdown', '# A\nb'],
      ['code', 'print(1)']
    ] as const;
    expect(sourcesDiffer(saved, same)).toBe(false);
    expect(
      sourcesDiffer(saved, [
        ['markdown', '# A\nb'],
        ['code', 'print(2)']
      ])
    ).toBe(true);
    expect(sourcesDiffer(saved, [['markdown', '# A\nb']])).toBe(true);
    expect(
      sourcesDiffer(saved, [
        ['raw', '# A\nb'],
        ['code', 'print(1)']
      ])
    ).toBe(true);
  });

  it('marks the notebook cells and clears the marks', () => {
    const nodes = [0, 1, 2].map(() => document.createElement('div'));
    const marks = new CellMarks();
    marks.show({ nodes, ids: ['a', 'b', 'c'] }, [
      { index: 0, id: 'a', status: 'match' },
      { index: 9, id: 'c', status: 'running' }
    ]);
    expect(nodes.map(n => n.dataset.reproVerify)).toEqual([
      'match',
      undefined,
      'running'
    ]);
    marks.show({ nodes, ids: ['a', 'b', 'c'] }, [
      { index: 2, id: 'c', status: 'differs' }
    ]);
    expect(nodes.map(n => n.dataset.reproVerify)).toEqual([
      undefined,
      undefined,
      'differs'
    ]);
    marks.clear();
    expect(nodes.every(n => n.dataset.reproVerify === undefined)).toBe(true);
  });
});

describe('verify jobs', () => {
  let server: ReturnType<typeof mockServer> | null = null;
  let view: VerifyView | null = null;
  beforeEach(() => {
    jest.useFakeTimers({
      doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask']
    });
  });
  afterEach(() => {
    view?.dispose();
    view?.node.remove();
    view = null;
    server?.restore();
    server = null;
    jest.useRealTimers();
  });

  it('posts the request and answers the job', async () => {
    server = mockServer({
      'POST verify': () => ({ status: 202, body: verifyJob('queued') })
    });
    const client = new ReproClient(settings());
    const job = await client.startVerify({
      notebook: 'dir/nb.ipynb',
      kernel: 'conda-env-work-py',
      timeout: 30
    });
    expect(job.kind).toBe('verify');
    expect(server.calls[0].body).toEqual({
      notebook: 'dir/nb.ipynb',
      kernel: 'conda-env-work-py',
      timeout: 30
    });
  });

  it("passes on the server's refusal", async () => {
    server = mockServer({
      'POST verify': () => ({
        status: 409,
        body: {
          message: 'dir/nb.ipynb is being verified already',
          reason: 'verification running'
        }
      })
    });
    const model = new ReproModel({ serverSettings: settings() });
    const error = await failure(
      model.startVerify({ notebook: 'dir/nb.ipynb' })
    );
    expect(error.status).toBe(409);
    expect(error.message).toContain('being verified already');
    expect(model.verifyJob).toBeNull();
  });

  it('shows the cells as they run, then the badge, the diffs and the record button', async () => {
    const answers: IJob<IVerifyReport>[] = [
      verifyJob('running', {
        progress: {
          phase: 'execute',
          done: 1,
          total: 4,
          cells: [
            { index: 0, id: 'a', status: 'match' },
            { index: 2, id: 'b', status: 'running' }
          ]
        }
      }),
      verifyJob('succeeded', {
        progress: { phase: 'execute', done: 4, total: 4 },
        result: report(),
        started: '2024-05-01T12:00:00.000Z',
        finished: '2024-05-01T12:00:04.200Z'
      })
    ];
    server = mockServer({
      'POST verify': () => ({ status: 202, body: verifyJob('queued') }),
      'GET jobs/j1': () => ({ body: answers.shift() })
    });
    const model = new ReproModel({
      serverSettings: settings(),
      jobInterval: 100
    });
    const jumps: string[] = [];
    const recorded: IVerifyJob[] = [];
    let dismissed = 0;
    view = new VerifyView({
      model,
      onJump: async (_, cell) => {
        jumps.push(`${cell.index}:${cell.id}`);
      },
      onRecord: async job => {
        recorded.push(job);
        return true;
      },
      canRecord: () => true,
      onDismiss: () => {
        dismissed += 1;
      }
    });
    document.body.append(view.node);
    const q = (id: string) =>
      view!.node.querySelector(`[data-testid="${id}"]`) as HTMLElement;
    expect(view.node.hidden).toBe(true);

    await model.startVerify({ notebook: 'dir/nb.ipynb' });
    expect(view.node.hidden).toBe(false);
    expect(q('repro-verify-phase').textContent).toBe('Waiting to start…');
    expect(q('repro-verify-record').hidden).toBe(true);

    jest.advanceTimersByTime(100);
    await flush();
    const chips = () =>
      Array.from(q('repro-verify-cells').children).map(
        c => (c as HTMLElement).dataset.status
      );
    expect(chips()).toEqual(['match', 'running']);
    expect(q('repro-verify-phase').textContent).toBe(
      'Running cell 3 (1 of 4 cells done)…'
    );
    expect(q('repro-verify-badge').hidden).toBe(true);
    expect(q('repro-verify-cancel').hidden).toBe(false);

    jest.advanceTimersByTime(100);
    await flush();
    const badge = q('repro-verify-badge');
    expect(badge.hidden).toBe(false);
    expect(badge.textContent).toBe('Reproduces: 2 of 4 cells match');
    expect(badge.dataset.result).toBe('differs');
    expect(chips()).toEqual(['match', 'differs', 'error', 'skipped', 'match']);
    expect(q('repro-verify-cancel').hidden).toBe(true);

    const problems = Array.from(
      view.node.querySelectorAll<HTMLElement>(
        '[data-testid="repro-verify-cell"]'
      )
    );
    expect(problems.map(p => [p.dataset.index, p.dataset.status])).toEqual([
      ['2', 'differs'],
      ['3', 'error']
    ]);
    const diff = problems[0].querySelector(
      '[data-testid="repro-verify-diff"]'
    )!;
    expect(diff.textContent).toBe('-4\n+3\n');
    expect(diff.querySelector('.jp-mod-removed')?.textContent).toBe('-4\n');
    expect(problems[1].textContent).toContain('ZeroDivisionError');

    problems[1]
      .querySelector<HTMLElement>('[data-testid="repro-verify-jump"]')!
      .click();
    expect(jumps).toEqual(['3:c']);

    const record = q('repro-verify-record');
    expect(record.hidden).toBe(false);
    expect((record as HTMLButtonElement).disabled).toBe(false);
    record.click();
    await flush();
    expect(recorded).toHaveLength(1);
    expect(recorded[0].job.result?.verified_record).toEqual(RECORD);
    expect((record as HTMLButtonElement).disabled).toBe(true);
    expect(record.textContent).toBe('Verification recorded');

    q('repro-verify-dismiss').click();
    expect(view.node.hidden).toBe(true);
    expect(dismissed).toBe(1);
  });

  it('says why a verification failed', async () => {
    server = mockServer({
      'POST verify': () => ({
        status: 202,
        body: verifyJob('failed', {
          error: {
            message: 'the kernel did not start',
            reason: 'verify error'
          }
        })
      })
    });
    const model = new ReproModel({ serverSettings: settings() });
    view = new VerifyView({ model, onRecord: async () => true });
    await model.startVerify({ notebook: 'nb.ipynb' });
    const result = view.node.querySelector<HTMLElement>(
      '[data-testid="repro-verify-result"]'
    )!;
    expect(result.hidden).toBe(false);
    expect(result.textContent).toBe('the kernel did not start');
    expect(
      view.node.querySelector<HTMLElement>(
        '[data-testid="repro-verify-record"]'
      )!.hidden
    ).toBe(true);
  });
});
