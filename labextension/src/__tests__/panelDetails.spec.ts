import { Clipboard } from '@jupyterlab/apputils';
import { CommandRegistry } from '@lumino/commands';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';
import { Widget } from '@lumino/widgets';

import { ReproModel } from '../model';
import {
  ICondaPackage,
  IEnvironmentDetails,
  IEnvironmentSummary
} from '../tokens';
import {
  channelsOf,
  DetailsTestIds,
  exportFilename,
  KernelCommands,
  packageSearchText
} from '../widgets/environmentDetails';
import { EnvironmentsPanel } from '../widgets/environmentsPanel';
import { Answer, flush, mockServer, settings } from './server';

const WORK: IEnvironmentSummary = {
  name: 'work',
  prefix: '/opt/conda/envs/work',
  kind: 'conda',
  python_version: '3.11.4',
  kernels: ['conda-env-work-py', 'conda-env-work-r'],
  is_base: false,
  is_server_env: false,
  writable: false
};

const TOOLS: IEnvironmentSummary = {
  name: 'tools & <more>',
  prefix: '/opt/conda/envs/tools',
  kind: 'venv',
  python_version: null,
  kernels: [],
  is_base: false,
  is_server_env: false,
  writable: true
};

function conda(
  name: string,
  version: string,
  channel: string | null = 'conda-forge'
): ICondaPackage {
  return { name, version, build: `${name}_0`, channel };
}

const WORK_DETAILS: IEnvironmentDetails = {
  ...WORK,
  conda_packages: [
    conda('numpy', '1.26.4'),
    conda('pandas', '2.2.1'),
    conda('private-pkg', '0.1', 'https://repo.example/internal'),
    conda('python', '3.11.4'),
    conda('local-build', '1.0', null),
    conda('scipy<b>', '1.12', 'bioconda')
  ],
  pip_packages: [
    { name: 'requests', version: '2.31.0' },
    { name: 'numpy-financial', version: '1.0.0' }
  ]
};

/**
 * The text of a blob (jsdom's Blob has no `text()`).
 */
function blobText(blob: Blob): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result as string);
    reader.onerror = () => reject(reader.error);
    reader.readAsText(blob);
  });
}

describe('environment details helpers', () => {
  it('derives the channels: distinct, in order, unknown ones left out', () => {
    expect(channelsOf(WORK_DETAILS.conda_packages)).toEqual([
      'conda-forge',
      'https://repo.example/internal',
      'bioconda'
    ]);
    expect(channelsOf([])).toEqual([]);
  });

  it('searches packages by name, version, build and channel', () => {
    expect(packageSearchText(conda('NumPy', '1.26.4'))).toBe(
      'numpy 1.26.4 NumPy_0 conda-forge'.toLowerCase()
    );
    expect(packageSearchText({ name: 'requests', version: '2.31.0' })).toBe(
      'requests 2.31.0  pypi'
    );
  });

  it('names downloads after the environment', () => {
    expect(exportFilename('work', 'portable')).toBe('environment-work.yml');
    expect(exportFilename('work', 'explicit')).toBe(
      'environment-work.explicit.txt'
    );
    expect(exportFilename('a b/c', 'exact')).toBe('environment-a_b_c.yml');
  });
});

describe('EnvironmentsPanel details', () => {
  let server: ReturnType<typeof mockServer> | null = null;
  let panel: EnvironmentsPanel | null = null;
  let executed: { id: string; args: ReadonlyPartialJSONObject }[] = [];
  let detailsAnswer: () => Answer = () => ({ body: WORK_DETAILS });
  let listing: IEnvironmentSummary[] = [WORK, TOOLS];

  afterEach(() => {
    panel?.dispose();
    panel = null;
    server?.restore();
    server = null;
    executed = [];
    detailsAnswer = () => ({ body: WORK_DETAILS });
    listing = [WORK, TOOLS];
    jest.restoreAllMocks();
  });

  function commands(): CommandRegistry {
    const registry = new CommandRegistry();
    for (const id of [KernelCommands.newNotebook, KernelCommands.newConsole]) {
      registry.addCommand(id, {
        execute: args => {
          executed.push({ id, args });
          if (args['fail']) {
            throw new Error('no');
          }
        }
      });
    }
    return registry;
  }

  async function open(
    name: string,
    registry: CommandRegistry | undefined = commands()
  ): Promise<{ model: ReproModel; panel: EnvironmentsPanel }> {
    server = mockServer({
      'GET status': () => ({
        body: { version: '0.1.0', engine: { name: 'rattler' }, clis: {} }
      }),
      'GET environments': () => ({ body: { environments: listing } }),
      'GET environments/work': () => detailsAnswer(),
      [`GET environments/${encodeURIComponent(TOOLS.name)}`]: () => ({
        body: { ...TOOLS, conda_packages: [], pip_packages: [] }
      }),
      'GET environments/work/export?mode=portable&format=yaml': () => ({
        body: 'name: work\ndependencies:\n  - numpy=1.26.4\n',
        headers: { 'Content-Type': 'text/yaml' }
      }),
      'GET environments/work/export?format=explicit': () => ({
        status: 422,
        body: { message: 'no URLs recorded', reason: 'not exportable' }
      })
    });
    const model = new ReproModel({ serverSettings: settings() });
    panel = new EnvironmentsPanel({ model, commands: registry });
    Widget.attach(panel, document.body);
    await model.refresh();
    await flush();
    expect(panel.openDetails(name)).toBe(true);
    await panel.detailsView!.ready;
    await flush();
    return { model, panel };
  }

  function byTestId<T extends HTMLElement = HTMLElement>(id: string): T {
    const node = panel!.node.querySelector(`[data-testid="${id}"]`);
    if (!node) {
      throw new Error(`no element ${id}`);
    }
    return node as T;
  }

  function packageRows(): HTMLElement[] {
    return Array.from(
      panel!.node.querySelectorAll<HTMLElement>(
        `[data-testid="${DetailsTestIds.packageRow}"]`
      )
    );
  }

  function shownPackages(): string[] {
    return packageRows()
      .filter(row => !row.hidden)
      .map(row => `${row.dataset.packageSource}:${row.dataset.packageName}`);
  }

  it('shows prefix, kind, Python, kernels, channels and the packages', async () => {
    await open('work');
    const view = byTestId(DetailsTestIds.view);
    expect(view.dataset.envName).toBe('work');
    expect(view.getAttribute('aria-busy')).toBe('false');
    expect(byTestId(DetailsTestIds.title).textContent).toBe('work');
    expect(view.textContent).toContain('read-only');
    expect(byTestId(DetailsTestIds.prefix).textContent).toBe(
      '/opt/conda/envs/work'
    );
    expect(byTestId(DetailsTestIds.kind).textContent).toBe('conda');
    expect(byTestId(DetailsTestIds.python).textContent).toBe('3.11.4');
    expect(byTestId(DetailsTestIds.kernels).textContent).toBe(
      'conda-env-work-pyconda-env-work-r'
    );
    expect(byTestId(DetailsTestIds.channels).textContent).toBe(
      'conda-forge, https://repo.example/internal, bioconda'
    );
    expect(shownPackages()).toEqual([
      'conda:numpy',
      'conda:pandas',
      'conda:private-pkg',
      'conda:python',
      'conda:local-build',
      'conda:scipy<b>',
      'pip:requests',
      'pip:numpy-financial'
    ]);
    // Values are text, not markup.
    expect(view.querySelector('tbody b')).toBeNull();
    const numpy = packageRows()[0];
    expect(numpy.textContent).toContain('1.26.4');
    expect(numpy.textContent).toContain('numpy_0');
    expect(numpy.textContent).toContain('conda-forge');
    expect(byTestId(DetailsTestIds.packageCount).textContent).toBe('8');
    expect(byTestId(DetailsTestIds.condaPackages).hidden).toBe(false);
    expect(byTestId(DetailsTestIds.pipPackages).hidden).toBe(false);
    expect(view.textContent).toContain('Conda packages (6)');
    expect(view.textContent).toContain('pip packages (2)');
    // Two kernels: a choice, and both kernel actions.
    expect(byTestId(DetailsTestIds.kernel).hidden).toBe(false);
    expect(byTestId(DetailsTestIds.openNotebook).hidden).toBe(false);
    expect(byTestId(DetailsTestIds.openConsole).hidden).toBe(false);
    expect(byTestId(DetailsTestIds.noKernel).hidden).toBe(true);
  });

  it('searches the packages, with the count and "no packages match"', async () => {
    const { panel } = await open('work');
    const search = byTestId<HTMLInputElement>(DetailsTestIds.packageSearch);
    search.value = 'numpy';
    search.dispatchEvent(new Event('input'));
    expect(shownPackages()).toEqual(['conda:numpy', 'pip:numpy-financial']);
    expect(byTestId(DetailsTestIds.packageCount).textContent).toBe('2 of 8');

    panel.detailsView!.search('bioconda');
    expect(shownPackages()).toEqual(['conda:scipy<b>']);
    panel.detailsView!.search('pypi 2.31');
    expect(shownPackages()).toEqual(['pip:requests']);
    expect(byTestId(DetailsTestIds.packagesNoMatches).hidden).toBe(true);

    panel.detailsView!.search('tensorflow');
    expect(shownPackages()).toEqual([]);
    expect(byTestId(DetailsTestIds.packagesNoMatches).hidden).toBe(false);
    expect(byTestId(DetailsTestIds.packageCount).textContent).toBe('0 of 8');

    // Another environment starts with an empty search.
    panel.closeDetails();
    panel.openDetails(TOOLS.name);
    await panel.detailsView!.ready;
    expect(search.value).toBe('');
  });

  it('shows an environment without kernel or pip packages', async () => {
    await open(TOOLS.name);
    expect(byTestId(DetailsTestIds.title).textContent).toBe(TOOLS.name);
    expect(byTestId(DetailsTestIds.python).textContent).toBe('none');
    expect(byTestId(DetailsTestIds.kernels).textContent).toBe('none');
    expect(byTestId(DetailsTestIds.channels).textContent).toBe('none known');
    expect(byTestId(DetailsTestIds.openNotebook).hidden).toBe(true);
    expect(byTestId(DetailsTestIds.openConsole).hidden).toBe(true);
    expect(byTestId(DetailsTestIds.noKernel).hidden).toBe(false);
    expect(byTestId(DetailsTestIds.pipPackages).hidden).toBe(true);
    expect(byTestId(DetailsTestIds.packageCount).textContent).toBe('0');
    expect(byTestId(DetailsTestIds.packagesNoMatches).hidden).toBe(true);
  });

  it('shows a failed package request and retries it', async () => {
    detailsAnswer = () => ({
      status: 404,
      body: { message: 'No environment is called "work".' }
    });
    const { panel } = await open('work');
    const error = byTestId(DetailsTestIds.packagesError);
    expect(panel.detailsView!.phase).toBe('error');
    expect(error.hidden).toBe(false);
    expect(error.textContent).toContain('No environment is called "work".');
    // The summary is still shown.
    expect(byTestId(DetailsTestIds.prefix).textContent).toBe(
      '/opt/conda/envs/work'
    );

    detailsAnswer = () => ({ body: WORK_DETAILS });
    byTestId<HTMLButtonElement>(DetailsTestIds.packagesRetry).click();
    expect(byTestId(DetailsTestIds.packagesLoading).hidden).toBe(false);
    await panel.detailsView!.ready;
    expect(error.hidden).toBe(true);
    expect(byTestId(DetailsTestIds.packagesLoading).hidden).toBe(true);
    expect(shownPackages()).toHaveLength(8);
  });

  it('fetches the packages once, and again after the listing changed', async () => {
    const { model, panel } = await open('work');
    const fetches = () =>
      server!.calls.filter(call => call.url.endsWith('repro/environments/work'))
        .length;
    expect(fetches()).toBe(1);
    panel.closeDetails();
    panel.openDetails('work');
    expect(fetches()).toBe(1);

    await model.refreshEnvironments();
    await flush();
    await panel.detailsView!.ready;
    expect(fetches()).toBe(2);
    expect(shownPackages()).toHaveLength(8);

    // Gone from the listing: said so, no packages.
    listing = [TOOLS];
    await model.refreshEnvironments();
    await flush();
    expect(byTestId(DetailsTestIds.message).textContent).toContain(
      '"work" is no longer listed'
    );
    expect(shownPackages()).toEqual([]);
  });

  it('downloads the spec of the environment shown', async () => {
    const created: Blob[] = [];
    (URL as any).createObjectURL = jest.fn((blob: Blob) => {
      created.push(blob);
      return 'blob:spec';
    });
    (URL as any).revokeObjectURL = jest.fn();
    const clicked: { href: string; download: string }[] = [];
    jest
      .spyOn(HTMLAnchorElement.prototype, 'click')
      .mockImplementation(function (this: HTMLAnchorElement) {
        clicked.push({ href: this.href, download: this.download });
      });
    await open('work');
    const mode = byTestId<HTMLSelectElement>(DetailsTestIds.exportMode);
    expect(mode.value).toBe('portable');
    byTestId<HTMLButtonElement>(DetailsTestIds.exportButton).click();
    await flush();
    expect(clicked).toEqual([
      { href: 'blob:spec', download: 'environment-work.yml' }
    ]);
    expect(await blobText(created[0])).toBe(
      'name: work\ndependencies:\n  - numpy=1.26.4\n'
    );
    expect(byTestId(DetailsTestIds.message).textContent).toBe(
      'Downloaded environment-work.yml.'
    );

    // A refusal is shown with the server's message.
    mode.value = 'explicit';
    mode.dispatchEvent(new Event('change'));
    byTestId<HTMLButtonElement>(DetailsTestIds.exportButton).click();
    await flush();
    expect(clicked).toHaveLength(1);
    const message = byTestId(DetailsTestIds.message);
    expect(message.textContent).toBe(
      'Could not export "work": no URLs recorded'
    );
    expect(message.classList.contains('jp-mod-error')).toBe(true);
  });

  it('opens a notebook or a console on the chosen kernel', async () => {
    await open('work');
    byTestId<HTMLButtonElement>(DetailsTestIds.openNotebook).click();
    const kernel = byTestId<HTMLSelectElement>(DetailsTestIds.kernel);
    kernel.value = 'conda-env-work-r';
    byTestId<HTMLButtonElement>(DetailsTestIds.openConsole).click();
    await flush();
    expect(executed).toEqual([
      {
        id: KernelCommands.newNotebook,
        args: { kernelName: 'conda-env-work-py' }
      },
      {
        id: KernelCommands.newConsole,
        args: { kernelPreference: { name: 'conda-env-work-r' } }
      }
    ]);
  });

  it('hides the kernel actions when JupyterLab has no such commands', async () => {
    await open('work', new CommandRegistry());
    expect(byTestId(DetailsTestIds.openNotebook).hidden).toBe(true);
    expect(byTestId(DetailsTestIds.openConsole).hidden).toBe(true);
  });

  it('copies the prefix to the clipboard', async () => {
    const copy = jest
      .spyOn(Clipboard, 'copyToSystem')
      .mockImplementation(() => undefined);
    await open('work');
    byTestId<HTMLButtonElement>(DetailsTestIds.copyPrefix).click();
    expect(copy).toHaveBeenCalledWith('/opt/conda/envs/work');
    expect(byTestId(DetailsTestIds.message).textContent).toBe(
      'Prefix copied to the clipboard.'
    );
  });

  it('labels every control of the details view', async () => {
    await open('work');
    const controls = Array.from(
      byTestId(DetailsTestIds.view).querySelectorAll<HTMLElement>(
        'button, input, select'
      )
    );
    expect(controls.length).toBeGreaterThanOrEqual(8);
    for (const control of controls) {
      expect(control.getAttribute('aria-label')).toBeTruthy();
      expect(control.tabIndex).toBeGreaterThanOrEqual(0);
    }
  });
});
