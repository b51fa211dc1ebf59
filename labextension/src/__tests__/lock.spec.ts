import { Dialog } from '@jupyterlab/apputils';
import { NotebookPanel } from '@jupyterlab/notebook';
import { JSONObject } from '@lumino/coreutils';

import { isEnvironmentFile, ReproActions } from '../actions';
import { besideCandidates } from '../besideFiles';
import { ReproClient } from '../client';
import {
  DEFAULT_LOCK_PLATFORMS,
  lockedText,
  lockingText,
  lockPlatformsSetting,
  lockSteps,
  platformChoices,
  reportedPlatform
} from '../lock';
import { DEFAULT_SETTINGS, ReproModel } from '../model';
import { ILockSummary } from '../tokens';
import {
  DialogTestIds,
  ExportDialogBody,
  LockProgressBody
} from '../widgets/dialogs';
import { failure, flush, mockServer, settings } from './server';

const NB = 'work/analysis.ipynb';
const LOCK = 'notebooks/work/analysis.ipynb/lock';

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

function platformBoxes(root: HTMLElement): HTMLInputElement[] {
  return Array.from(
    root.querySelectorAll<HTMLInputElement>(
      `[data-testid^="${DialogTestIds.lockPlatformPrefix}"]`
    )
  );
}

function checkedPlatforms(root: HTMLElement): string[] {
  return platformBoxes(root)
    .filter(box => box.checked)
    .map(box => box.value);
}

function summary(extra: Partial<ILockSummary> = {}): ILockSummary {
  return {
    platforms: ['linux-64'],
    skipped: {},
    warnings: [],
    as_of: '2024-05-01T12:00:00Z',
    packages: { 'linux-64': 12 },
    ...extra
  };
}

describe('the lockPlatforms setting', () => {
  it('defaults to the four platforms the server locks besides its own', () => {
    expect(DEFAULT_SETTINGS.lockPlatforms).toEqual([
      'linux-64',
      'osx-64',
      'osx-arm64',
      'win-64'
    ]);
    expect(lockPlatformsSetting(undefined)).toEqual([
      ...DEFAULT_LOCK_PLATFORMS
    ]);
  });

  it('keeps the valid platforms once each, in order', () => {
    expect(
      lockPlatformsSetting([
        'win-64',
        'noarch',
        'linux-aarch64',
        'win-64',
        'Linux 64',
        7,
        'osx-arm64'
      ])
    ).toEqual(['win-64', 'linux-aarch64', 'osx-arm64']);
    expect(lockPlatformsSetting([])).toEqual([]);
  });

  it("takes the environment's platform from what the server embedded", () => {
    expect(
      reportedPlatform({ exported: { platform: 'osx-arm64', mode: 'x' } })
    ).toBe('osx-arm64');
    expect(reportedPlatform({ exported: { platform: 'noarch' } })).toBeNull();
    expect(reportedPlatform({ environment: {} })).toBeNull();
    expect(reportedPlatform(undefined)).toBeNull();
  });

  it('checks the current platform first, then the setting', () => {
    expect(platformChoices('linux-s390x', ['win-64', 'linux-64'])).toEqual({
      shown: [
        'linux-64',
        'linux-aarch64',
        'linux-ppc64le',
        'osx-64',
        'osx-arm64',
        'win-64',
        'win-arm64',
        'linux-s390x'
      ],
      checked: ['linux-s390x', 'win-64', 'linux-64']
    });
    expect(platformChoices(null, DEFAULT_LOCK_PLATFORMS).checked).toEqual([
      ...DEFAULT_LOCK_PLATFORMS
    ]);
  });
});

describe('ExportDialogBody, choice "Lock for platforms"', () => {
  let body: ExportDialogBody | null = null;
  afterEach(() => {
    body?.dispose();
    body = null;
  });

  it('opens on the spec choice by default, as before', () => {
    body = new ExportDialogBody({
      notebookPath: NB,
      choice: { mode: 'exact', target: 'file' },
      lockPlatforms: DEFAULT_SETTINGS.lockPlatforms
    });
    const node = body.node;
    expect(byTestId<HTMLInputElement>(node, 'repro-export-spec').checked).toBe(
      true
    );
    expect(byTestId<HTMLInputElement>(node, 'repro-export-lock').checked).toBe(
      false
    );
    expect(byTestId(node, 'repro-lock-options').hidden).toBe(true);
    expect(byTestId(node, 'repro-export-mode').closest('[hidden]')).toBeNull();
    const value = body.getValue();
    expect(value.kind).toBe('spec');
    expect(value.mode).toBe('exact');
    expect(value.target).toBe('file');
  });

  it('checks the platforms of the settings, the current one first', () => {
    body = new ExportDialogBody({
      notebookPath: NB,
      choice: { mode: 'portable', target: 'download', kind: 'lock' },
      lockPlatforms: ['linux-64', 'osx-arm64', 'win-64', 'osx-64'],
      currentPlatform: 'linux-aarch64'
    });
    const node = body.node;
    expect(byTestId<HTMLInputElement>(node, 'repro-export-lock').checked).toBe(
      true
    );
    expect(byTestId(node, 'repro-lock-options').hidden).toBe(false);
    expect(byTestId(node, 'repro-export-mode').closest('[hidden]')).not.toBe(
      null
    );
    // Every offered platform has a checkbox with a stable test id.
    for (const platform of [
      'linux-64',
      'linux-aarch64',
      'osx-64',
      'osx-arm64',
      'win-64',
      'win-arm64'
    ]) {
      const box = byTestId<HTMLInputElement>(
        node,
        `repro-lock-platform-${platform}`
      );
      expect(box.type).toBe('checkbox');
      expect(box.value).toBe(platform);
    }
    expect(checkedPlatforms(node).sort()).toEqual(
      ['linux-64', 'linux-aarch64', 'osx-64', 'osx-arm64', 'win-64'].sort()
    );
    expect(byTestId(node, 'repro-lock-hint').textContent).toContain(
      'own platform (linux-aarch64) is locked as installed'
    );
    const target = byTestId<HTMLSelectElement>(node, 'repro-lock-target');
    expect(Array.from(target.options, o => o.value)).toEqual([
      'metadata',
      'conda-lock',
      'pixi',
      'metadata+conda-lock',
      'metadata+pixi'
    ]);
    expect(target.value).toBe('metadata');
  });

  it('returns the platforms checked and the target chosen', () => {
    body = new ExportDialogBody({
      notebookPath: NB,
      choice: { mode: 'portable', target: 'download', kind: 'lock' },
      lockPlatforms: DEFAULT_SETTINGS.lockPlatforms
    });
    const node = body.node;
    expect(checkedPlatforms(node)).toEqual([...DEFAULT_LOCK_PLATFORMS]);
    for (const box of platformBoxes(node)) {
      box.checked = box.value === 'linux-64' || box.value === 'win-64';
      box.dispatchEvent(new Event('change'));
    }
    const target = byTestId<HTMLSelectElement>(node, 'repro-lock-target');
    target.value = 'metadata+pixi';
    target.dispatchEvent(new Event('change'));
    expect(body.getValue()).toEqual({
      mode: 'portable',
      target: 'download',
      kind: 'lock',
      lock: { platforms: ['linux-64', 'win-64'], target: 'metadata+pixi' }
    });
  });

  it('marks an empty choice as an error, so the dialog cannot accept it', () => {
    body = new ExportDialogBody({
      notebookPath: NB,
      choice: { mode: 'portable', target: 'download', kind: 'lock' },
      lockPlatforms: []
    });
    const hint = byTestId(body.node, 'repro-lock-hint');
    expect(checkedPlatforms(body.node)).toEqual([]);
    expect(hint.textContent).toBe('Choose at least one platform.');
    expect(hint.classList.contains('jp-mod-error')).toBe(true);
    // The spec choice is not held back by the lock's fields.
    const spec = byTestId<HTMLInputElement>(body.node, 'repro-export-spec');
    spec.checked = true;
    spec.dispatchEvent(new Event('change'));
    expect(body.node.querySelector('.jp-mod-error')).toBeNull();
  });

  it("names the dialog's accept button after the choice", async () => {
    body = new ExportDialogBody({
      notebookPath: NB,
      choice: { mode: 'portable', target: 'download', kind: 'lock' },
      lockPlatforms: DEFAULT_SETTINGS.lockPlatforms
    });
    const dialog = new Dialog({
      title: 'Export environment',
      body,
      buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Export' })]
    });
    const shown = dialog.launch();
    await dialog.ready;
    const label = () =>
      dialog.node.querySelector('.jp-mod-accept .jp-Dialog-buttonLabel')!
        .textContent;
    expect(label()).toBe('Lock');
    const spec = byTestId<HTMLInputElement>(body.node, 'repro-export-spec');
    spec.checked = true;
    spec.dispatchEvent(new Event('change'));
    expect(label()).toBe('Export');
    dialog.reject();
    await shown;
    body = null; // disposed with the dialog
  });
});

describe('lock steps and texts', () => {
  it('maps each target to its requests', () => {
    expect(lockSteps('metadata')).toEqual([{ kind: 'metadata' }]);
    expect(lockSteps('pixi')).toEqual([
      { kind: 'file', format: 'pixi', filename: 'pixi.lock' }
    ]);
    expect(lockSteps('metadata+conda-lock')).toEqual([
      { kind: 'metadata' },
      { kind: 'file', format: 'conda-lock', filename: 'conda-lock.yml' }
    ]);
  });

  it('says how many platforms are locked and what came out', () => {
    expect(lockingText(4)).toBe('Locking for 4 platforms…');
    expect(lockingText(1)).toBe('Locking for 1 platform…');
    expect(
      lockedText(
        summary({
          platforms: ['linux-64', 'osx-64', 'win-64'],
          packages: { 'linux-64': 12, 'osx-64': 1, 'win-64': 9 }
        })
      )
    ).toBe(
      'Locked for linux-64 (12 packages), osx-64 (1 package) and win-64 (9 packages).'
    );
  });
});

describe('ReproClient lock requests', () => {
  let server: ReturnType<typeof mockServer> | null = null;
  afterEach(() => {
    server?.restore();
    server = null;
  });

  it('repeats the platform parameter, then asks for the metadata form', async () => {
    expect(ReproClient.lockQuery(['linux-64', 'win-64'], 'metadata')).toBe(
      'platform=linux-64&platform=win-64&format=metadata'
    );
    const answer = {
      metadata: { environment: { name: 'work' }, lock: { version: 1 } },
      summary: summary({
        platforms: ['linux-64'],
        skipped: { 'win-64': 'cannot be solved: nothing provides python' }
      })
    };
    server = mockServer({
      [`GET ${LOCK}?platform=linux-64&platform=win-64&format=metadata`]:
        () => ({
          body: answer
        })
    });
    const client = new ReproClient(settings());
    await expect(
      client.lockMetadata(NB, ['linux-64', 'win-64'])
    ).resolves.toEqual(answer);
    expect(server.calls).toHaveLength(1);
    const url = new URL(server.calls[0].url);
    expect(url.pathname).toBe(
      '/lab-base/repro/notebooks/work/analysis.ipynb/lock'
    );
    expect(url.searchParams.getAll('platform')).toEqual(['linux-64', 'win-64']);
    expect(url.searchParams.get('format')).toBe('metadata');
  });

  it('posts the platforms, the file target and the format', async () => {
    server = mockServer({
      [`POST ${LOCK}`]: () => ({
        body: { written: ['work/pixi.lock'], summary: summary() }
      })
    });
    const client = new ReproClient(settings());
    const result = await client.writeLock(NB, {
      platforms: ['linux-64', 'osx-arm64'],
      target: 'file',
      format: 'pixi'
    });
    expect(result.written).toEqual(['work/pixi.lock']);
    expect(server.calls[0].method).toBe('POST');
    expect(server.calls[0].body).toEqual({
      platforms: ['linux-64', 'osx-arm64'],
      target: 'file',
      format: 'pixi'
    });
  });

  it("passes the server's message on", async () => {
    server = mockServer({
      [`GET ${LOCK}?platform=win-64&format=metadata`]: () => ({
        status: 422,
        body: {
          message:
            'cannot lock this environment for any platform asked for (win-64: cannot be solved: nothing provides python)'
        }
      })
    });
    const client = new ReproClient(settings());
    const error = await failure(client.lockMetadata(NB, ['win-64']));
    expect(error.status).toBe(422);
    expect(error.message).toBe(
      'cannot lock this environment for any platform asked for (win-64: cannot be solved: nothing provides python)'
    );
  });
});

describe('LockProgressBody', () => {
  it('shows the progress, then the platforms locked and each one skipped', () => {
    const body = new LockProgressBody({
      platforms: ['linux-64', 'osx-64', 'osx-arm64', 'win-64'],
      notebookPath: NB
    });
    const progress = byTestId(body.node, 'repro-lock-progress');
    const result = byTestId(body.node, 'repro-lock-result');
    expect(progress.textContent).toBe('Locking for 4 platforms…');
    expect(result.hidden).toBe(true);
    expect(body.finished).toBe(false);

    body.showOutcome(
      {
        summary: summary({
          platforms: ['linux-64', 'osx-64'],
          packages: { 'linux-64': 12, 'osx-64': 11 },
          skipped: {
            'osx-arm64': 'cannot be solved: nothing provides python',
            'win-64': 'cannot be solved: nothing provides pkga'
          },
          warnings: ['the pip requirement ./local is left out']
        }),
        done: ['Embedded in analysis.ipynb and saved.'],
        error: null
      },
      12_300
    );
    expect(body.finished).toBe(true);
    expect(progress.textContent).toBe('Locked in 12 s.');
    expect(result.hidden).toBe(false);
    expect(result.dataset.state).toBe('done');
    expect(result.dataset.locked).toBe('linux-64 osx-64');
    expect(result.textContent).toContain(
      'Locked for linux-64 (12 packages) and osx-64 (11 packages).'
    );
    expect(result.textContent).toContain(
      'Embedded in analysis.ipynb and saved.'
    );
    const skipped = Array.from(
      result.querySelectorAll<HTMLElement>('[data-testid="repro-lock-skipped"]')
    );
    expect(skipped.map(item => item.dataset.platform)).toEqual([
      'osx-arm64',
      'win-64'
    ]);
    expect(skipped[1].textContent).toBe(
      'win-64: cannot be solved: nothing provides pkga'
    );
    expect(byTestId(result, 'repro-lock-warning').textContent).toBe(
      'the pip requirement ./local is left out'
    );
    body.dispose();
  });

  it("shows the server's error readably", () => {
    const body = new LockProgressBody({
      platforms: ['win-64'],
      notebookPath: NB
    });
    body.showOutcome(
      {
        summary: null,
        done: [],
        error:
          'cannot lock this environment for any platform asked for (win-64: cannot be solved: nothing provides python)'
      },
      800
    );
    const result = byTestId(body.node, 'repro-lock-result');
    expect(result.dataset.state).toBe('failed');
    expect(byTestId(body.node, 'repro-lock-progress').textContent).toBe(
      'The lock failed.'
    );
    const error = byTestId(result, 'repro-lock-error');
    expect(error.getAttribute('role')).toBe('alert');
    expect(error.textContent).toBe(
      'Could not lock the environment: cannot lock this environment for any platform asked for (win-64: cannot be solved: nothing provides python)'
    );
    // Not the dialog's validation class: the Close button stays enabled.
    expect(body.node.querySelector('.jp-mod-error')).toBeNull();
    body.dispose();
  });
});

describe('ReproActions.lockEnvironment', () => {
  let server: ReturnType<typeof mockServer> | null = null;
  afterEach(() => {
    server?.restore();
    server = null;
    document.body.innerHTML = '';
  });

  /**
   * A notebook panel as far as the lock uses it: path, model metadata, save.
   */
  function fakePanel(): {
    panel: NotebookPanel;
    metadata: Record<string, unknown>;
    saves: number[];
  } {
    const metadata: Record<string, unknown> = {};
    const saves: number[] = [];
    const model = {
      dirty: false,
      getMetadata: (key: string) => metadata[key],
      setMetadata: (key: string, value: unknown) => {
        metadata[key] = value;
      }
    };
    const panel = {
      isDisposed: false,
      model,
      context: {
        path: NB,
        model,
        save: async () => {
          saves.push(Object.keys(metadata).length);
        }
      }
    } as unknown as NotebookPanel;
    return { panel, metadata, saves };
  }

  it('embeds the metadata the server answers into the open notebook, then writes the file', async () => {
    const value: JSONObject = {
      environment: { name: 'work' },
      exported: { platform: 'linux-64' },
      lock: { version: 1, platforms: { 'linux-64': {} } }
    };
    const lockSummary = summary({
      skipped: { 'win-64': 'cannot be solved: nothing provides python' }
    });
    server = mockServer({
      [`GET ${LOCK}?platform=linux-64&platform=win-64&format=metadata`]:
        () => ({
          body: { metadata: value, summary: lockSummary }
        }),
      [`POST ${LOCK}`]: () => ({
        body: { written: ['work/conda-lock.yml'], summary: lockSummary }
      })
    });
    const model = new ReproModel({ serverSettings: settings() });
    const actions = new ReproActions({
      app: {} as never,
      model,
      tracker: null,
      docManager: null
    });
    const { panel, metadata, saves } = fakePanel();
    const outcome = await actions.lockEnvironment(panel, {
      platforms: ['linux-64', 'win-64'],
      target: 'metadata+conda-lock'
    });
    expect(outcome.error).toBeNull();
    expect(metadata['jupyter_repro']).toEqual(value);
    expect(saves).toEqual([1]);
    expect(outcome.done).toEqual([
      'Embedded in analysis.ipynb and saved.',
      'Wrote work/conda-lock.yml.'
    ]);
    expect(server.calls.map(c => c.method)).toEqual(['GET', 'POST']);
    expect(server.calls[1].body).toEqual({
      platforms: ['linux-64', 'win-64'],
      target: 'file',
      format: 'conda-lock'
    });
    const result = document.querySelector<HTMLElement>(
      '[data-testid="repro-lock-result"]'
    )!;
    expect(result.hidden).toBe(false);
    expect(result.dataset.locked).toBe('linux-64');
    expect(
      result.querySelector('[data-testid="repro-lock-skipped"]')!.textContent
    ).toBe('win-64: cannot be solved: nothing provides python');
    const close = document.querySelector<HTMLElement>(
      '[data-testid="repro-lock-close"]'
    )!;
    close.click();
    await flush();
    model.dispose();
  });

  it('shows an error of the server in the dialog and leaves the notebook alone', async () => {
    server = mockServer({
      [`GET ${LOCK}?platform=linux-64&format=metadata`]: () => ({
        status: 422,
        body: { message: '/envs/venv is not a conda environment' }
      })
    });
    const model = new ReproModel({ serverSettings: settings() });
    const actions = new ReproActions({
      app: {} as never,
      model,
      tracker: null,
      docManager: null
    });
    const { panel, metadata, saves } = fakePanel();
    const outcome = await actions.lockEnvironment(panel, {
      platforms: ['linux-64'],
      target: 'metadata'
    });
    expect(outcome.error).toBe('/envs/venv is not a conda environment');
    expect(metadata).toEqual({});
    expect(saves).toEqual([]);
    const error = document.querySelector('[data-testid="repro-lock-error"]')!;
    expect(error.textContent).toContain(
      '/envs/venv is not a conda environment'
    );
    document
      .querySelector<HTMLElement>('[data-testid="repro-lock-close"]')!
      .click();
    await flush();
    model.dispose();
  });
});

describe('files a restore starts from', () => {
  it('offers lock files and environment files in the file browser', () => {
    for (const name of [
      'environment.yml',
      'environment-gpu.yaml',
      'conda-lock.yml',
      'analysis.conda-lock.yml',
      'pixi.lock',
      'sub/dir/pixi.lock'
    ]) {
      expect([name, isEnvironmentFile(name)]).toEqual([name, true]);
    }
    for (const name of ['notes.yml', 'pixi.toml', 'conda-lock.txt', 'x.lock']) {
      expect([name, isEnvironmentFile(name)]).toEqual([name, false]);
    }
  });

  it('looks beside a notebook in the server order: its lock, a lock, the spec', () => {
    expect(besideCandidates('work/analysis.ipynb')).toEqual([
      'work/analysis.conda-lock.yml',
      'work/conda-lock.yml',
      'work/pixi.lock',
      'work/environment.yml'
    ]);
  });
});
