import { ReproClient } from '../client';
import { DEFAULT_SETTINGS } from '../model';
import {
  humanBytes,
  packDownloadUrl,
  packProgressText,
  packRequest,
  triggerDownload
} from '../pack';
import { IJob, IPackResult } from '../tokens';
import {
  DialogTestIds,
  ExportDialogBody,
  PackProgressBody
} from '../widgets/dialogs';
import { BASE_URL, failure, jobBody, mockServer, settings } from './server';

const NB = 'work/analysis.ipynb';

function byTestId<T extends HTMLElement = HTMLElement>(
  root: HTMLElement,
  id: string
): T {
  const node = root.querySelector<T>(`[data-testid="${id}"]`);
  if (!node) {
    throw new Error(`no [data-testid=${id}]`);
  }
  return node;
}

function packJob(
  state: string,
  extra: Record<string, unknown> = {}
): IJob<IPackResult> {
  return jobBody(state, {
    kind: 'pack',
    ...extra
  }) as unknown as IJob<IPackResult>;
}

describe('packRequest', () => {
  it('packs the notebook for the platforms checked, each once', () => {
    expect(packRequest(NB, ['linux-64', 'win-64', 'linux-64'])).toEqual({
      notebooks: [NB],
      platforms: ['linux-64', 'win-64']
    });
  });

  it('leaves the platforms to the server when none is checked', () => {
    expect(packRequest(NB, [])).toEqual({ notebooks: [NB] });
  });
});

describe('packDownloadUrl', () => {
  it('is the job download route below the base URL', () => {
    expect(packDownloadUrl(settings(), 'abc', '')).toBe(
      `${BASE_URL}repro/jobs/abc/download`
    );
  });

  it('carries the _xsrf cookie like JupyterLab file downloads', () => {
    const url = new URL(
      packDownloadUrl(settings(), 'a/b', 'x=1; _xsrf=2|tok; y=3')
    );
    expect(url.pathname).toBe('/lab-base/repro/jobs/a%2Fb/download');
    expect(url.searchParams.get('_xsrf')).toBe('2|tok');
  });
});

describe('triggerDownload', () => {
  it('clicks a hidden anchor with the file name, then removes it', () => {
    const clicked: HTMLAnchorElement[] = [];
    const spy = jest
      .spyOn(HTMLAnchorElement.prototype, 'click')
      .mockImplementation(function (this: HTMLAnchorElement) {
        clicked.push(this);
      });
    try {
      triggerDownload(`${BASE_URL}repro/jobs/j1/download`, 'a.capsule.tar.zst');
    } finally {
      spy.mockRestore();
    }
    expect(clicked).toHaveLength(1);
    expect(clicked[0].href).toBe(`${BASE_URL}repro/jobs/j1/download`);
    expect(clicked[0].download).toBe('a.capsule.tar.zst');
    expect(clicked[0].isConnected).toBe(false);
  });
});

describe('packProgressText', () => {
  it('says the phase and the counts', () => {
    expect(
      packProgressText(
        packJob('running', { progress: { phase: 'fetch', done: 3, total: 12 } })
      )
    ).toBe('Collecting packages: 3 of 12…');
    expect(
      packProgressText(
        packJob('running', { progress: { phase: 'lock', done: 0, total: 0 } })
      )
    ).toBe('Locking the environment…');
    expect(packProgressText(packJob('queued'))).toBe('Waiting to start…');
  });

  it('says what was packed, or why not', () => {
    const result = { filename: 'a.capsule.tar.zst', size: 2_500_000 };
    expect(packProgressText(packJob('succeeded', { result }))).toBe(
      'Packed a.capsule.tar.zst (2.5 MB).'
    );
    expect(
      packProgressText(
        packJob('failed', { error: { message: 'no lock', reason: 'x' } })
      )
    ).toBe('The pack failed: no lock');
    expect(humanBytes(512)).toBe('512 B');
  });
});

describe('ReproClient.startPack', () => {
  let server: ReturnType<typeof mockServer> | null = null;
  afterEach(() => {
    server?.restore();
    server = null;
  });

  it('POSTs repro/pack and answers the job', async () => {
    server = mockServer({
      'POST pack': () => ({ status: 202, body: packJob('queued') })
    });
    const client = new ReproClient(settings());
    const job = await client.startPack(packRequest(NB, ['linux-64']));
    expect(job.kind).toBe('pack');
    expect(server.calls).toHaveLength(1);
    expect(server.calls[0].method).toBe('POST');
    expect(server.calls[0].url).toBe(`${BASE_URL}repro/pack`);
    expect(server.calls[0].body).toEqual({
      notebooks: [NB],
      platforms: ['linux-64']
    });
  });

  it('rejects with the server message', async () => {
    server = mockServer({
      'POST pack': () => ({
        status: 404,
        body: { message: 'no kernel and no lock', reason: 'kernel not found' }
      })
    });
    const client = new ReproClient(settings());
    const error = await failure(client.startPack(packRequest(NB, [])));
    expect(error.status).toBe(404);
    expect(error.message).toContain('no kernel and no lock');
  });
});

describe('ExportDialogBody, choice "Download capsule (offline)"', () => {
  let body: ExportDialogBody | null = null;
  afterEach(() => {
    body?.dispose();
    body = null;
  });

  it('reuses the platform checkboxes and hides the lock target', () => {
    body = new ExportDialogBody({
      notebookPath: NB,
      choice: { mode: 'portable', target: 'download' },
      lockPlatforms: ['linux-64', 'win-64'],
      currentPlatform: 'linux-64'
    });
    const node = body.node;
    const capsule = byTestId<HTMLInputElement>(
      node,
      DialogTestIds.exportCapsule
    );
    expect(capsule.parentElement?.textContent).toContain(
      'Download capsule (offline)'
    );
    capsule.checked = true;
    capsule.dispatchEvent(new Event('change'));
    expect(byTestId(node, DialogTestIds.lockOptions).hidden).toBe(false);
    expect(
      byTestId(node, DialogTestIds.lockTarget).closest('[hidden]')
    ).not.toBeNull();
    expect(byTestId(node, 'repro-export-mode').closest('[hidden]')).not.toBe(
      null
    );
    expect(byTestId(node, DialogTestIds.lockHint).textContent).toContain(
      'offline'
    );
    const value = body.getValue();
    expect(value.kind).toBe('capsule');
    expect(value.lock?.platforms).toEqual(['linux-64', 'win-64']);
    expect(packRequest(NB, value.lock!.platforms)).toEqual({
      notebooks: [NB],
      platforms: ['linux-64', 'win-64']
    });
  });

  it('opens on the capsule choice when asked', () => {
    body = new ExportDialogBody({
      notebookPath: NB,
      choice: { mode: 'portable', target: 'download', kind: 'capsule' },
      lockPlatforms: DEFAULT_SETTINGS.lockPlatforms
    });
    expect(body.getValue().kind).toBe('capsule');
  });
});

describe('PackProgressBody', () => {
  it('shows progress, then the outcome with what was not packed', () => {
    const body = new PackProgressBody({
      platforms: ['linux-64'],
      notebookPath: NB
    });
    const progress = byTestId(body.node, DialogTestIds.packProgress);
    body.setProgress('Collecting packages: 1 of 2…');
    expect(progress.textContent).toBe('Collecting packages: 1 of 2…');
    body.showOutcome('done', 'Packed a.capsule.tar.zst (1.0 KB).', [
      { platform: 'linux-64', name: 'mypkg', why: 'an editable install' }
    ]);
    expect(progress.dataset.state).toBe('done');
    expect(body.node.textContent).toContain(
      'linux-64 mypkg: an editable install'
    );
    body.dispose();
  });
});
