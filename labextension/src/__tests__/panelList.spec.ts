import { Widget } from '@lumino/widgets';

import { ReproModel } from '../model';
import { IEnvironmentSummary } from '../tokens';
import {
  compareEnvironments,
  kindChoices,
  matchesFilter,
  NO_FILTER,
  sortEnvironments,
  visibleEnvironments
} from '../widgets/environmentList';
import { EnvironmentsPanel, TestIds } from '../widgets/environmentsPanel';
import { env, flush, mockServer, settings } from './server';

/**
 * Listed in the server's order, which is not the panel's.
 */
const LISTING: IEnvironmentSummary[] = [
  env('zeta'),
  env('env10', { kind: 'pixi' }),
  env('tools', { kind: 'venv', kernels: [] }),
  env('base', { prefix: '/opt/conda', is_base: true }),
  env('Alpha'),
  env('env2', { kind: 'pixi', kernels: [] }),
  env('legacy', { kind: 'virtualenv-ish', python_version: null, kernels: [] })
];

const SORTED = ['base', 'Alpha', 'env2', 'env10', 'legacy', 'tools', 'zeta'];

describe('environment list order and filters', () => {
  it('sorts the base first, then by name with numbers compared as numbers', () => {
    expect(sortEnvironments(LISTING).map(e => e.name)).toEqual(SORTED);
    // The listing itself is left as it is.
    expect(LISTING[0].name).toBe('zeta');
  });

  it('breaks ties by exact name, then prefix, so the order is stable', () => {
    const a = env('data', { prefix: '/b' });
    const b = env('data', { prefix: '/a' });
    const c = env('Data');
    expect(sortEnvironments([a, c, b])).toEqual([c, b, a]);
    expect(compareEnvironments(a, a)).toBe(0);
  });

  it('offers the known kinds and any other kind listed', () => {
    expect(kindChoices([])).toEqual(['conda', 'pixi', 'venv']);
    expect(kindChoices(LISTING)).toEqual([
      'conda',
      'pixi',
      'venv',
      'virtualenv-ish'
    ]);
  });

  it('filters by kind, by kernel and by text together', () => {
    const names = (filter: Partial<typeof NO_FILTER>) =>
      visibleEnvironments(LISTING, { ...NO_FILTER, ...filter }).map(
        e => e.name
      );
    expect(names({})).toEqual(SORTED);
    expect(names({ kind: 'pixi' })).toEqual(['env2', 'env10']);
    expect(names({ kernel: 'no-kernel' })).toEqual(['env2', 'legacy', 'tools']);
    expect(names({ kernel: 'with-kernel' })).toEqual([
      'base',
      'Alpha',
      'env10',
      'zeta'
    ]);
    expect(names({ kind: 'pixi', kernel: 'no-kernel' })).toEqual(['env2']);
    expect(names({ text: 'ENV', kind: 'pixi' })).toEqual(['env2', 'env10']);
    expect(names({ text: 'nothing-like-this' })).toEqual([]);
    expect(matchesFilter(LISTING[0], { ...NO_FILTER, kind: 'venv' })).toBe(
      false
    );
  });
});

describe('EnvironmentsPanel list', () => {
  let server: ReturnType<typeof mockServer> | null = null;
  let panel: EnvironmentsPanel | null = null;
  let listing: IEnvironmentSummary[] = LISTING;

  afterEach(() => {
    panel?.dispose();
    panel = null;
    server?.restore();
    server = null;
    listing = LISTING;
  });

  async function open(): Promise<{
    model: ReproModel;
    panel: EnvironmentsPanel;
  }> {
    server = mockServer({
      'GET status': () => ({
        body: { version: '0.1.0', engine: { name: 'rattler' }, clis: {} }
      }),
      'GET environments': () => ({ body: { environments: listing } }),
      'GET environments/Alpha': () => ({
        body: { ...env('Alpha'), conda_packages: [], pip_packages: [] }
      }),
      'GET environments/env2': () => ({
        body: {
          ...env('env2', { kind: 'pixi', kernels: [] }),
          conda_packages: [],
          pip_packages: []
        }
      })
    });
    const model = new ReproModel({ serverSettings: settings() });
    panel = new EnvironmentsPanel({ model });
    Widget.attach(panel, document.body);
    await model.refresh();
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

  function rows(): HTMLElement[] {
    return Array.from(
      panel!.node.querySelectorAll<HTMLElement>(
        `[data-testid="${TestIds.envItem}"]`
      )
    );
  }

  function shownNames(): string[] {
    return rows()
      .filter(row => !row.hidden)
      .map(row => row.dataset.envName!);
  }

  function select(id: string, value: string): void {
    const node = byTestId<HTMLSelectElement>(id);
    node.value = value;
    node.dispatchEvent(new Event('change'));
  }

  function key(target: HTMLElement, name: string): KeyboardEvent {
    const event = new KeyboardEvent('keydown', {
      key: name,
      bubbles: true,
      cancelable: true
    });
    target.dispatchEvent(event);
    return event;
  }

  it('renders the rows sorted, as a listbox of options', async () => {
    const { panel } = await open();
    expect(rows().map(row => row.dataset.envName)).toEqual(SORTED);
    expect(panel.visibleNames).toEqual(SORTED);
    const list = byTestId(TestIds.envList);
    expect(list.getAttribute('role')).toBe('listbox');
    expect(list.getAttribute('aria-label')).toBe('Environments');
    for (const row of rows()) {
      expect(row.getAttribute('role')).toBe('option');
    }
  });

  it('filters by kind and by "no kernel", with the count', async () => {
    const { panel } = await open();
    const kinds = Array.from(
      byTestId<HTMLSelectElement>(TestIds.envKindFilter).options
    ).map(option => option.value);
    expect(kinds).toEqual(['', 'conda', 'pixi', 'venv', 'virtualenv-ish']);

    select(TestIds.envKindFilter, 'pixi');
    expect(shownNames()).toEqual(['env2', 'env10']);
    expect(byTestId(TestIds.envCount).textContent).toBe('2 of 7');

    select(TestIds.envKernelFilter, 'no-kernel');
    expect(shownNames()).toEqual(['env2']);

    select(TestIds.envKindFilter, '');
    expect(shownNames()).toEqual(['env2', 'legacy', 'tools']);
    expect(panel.listFilter).toEqual({
      text: '',
      kind: '',
      kernel: 'no-kernel'
    });
    expect(byTestId(TestIds.envNoMatches).hidden).toBe(true);
  });

  it('says "no matches" and clears every filter on request', async () => {
    const { model } = await open();
    select(TestIds.envKindFilter, 'venv');
    model.setFilter('no-such-environment');
    expect(shownNames()).toEqual([]);
    const noMatches = byTestId(TestIds.envNoMatches);
    expect(noMatches.hidden).toBe(false);
    expect(noMatches.textContent).toContain(
      'No environments match the filters.'
    );
    expect(byTestId(TestIds.envCount).textContent).toBe('0 of 7');

    const clear = byTestId<HTMLButtonElement>(TestIds.envClearFilters);
    expect(clear.hidden).toBe(false);
    clear.click();
    expect(shownNames()).toEqual(SORTED);
    expect(model.filter).toBe('');
    expect(byTestId<HTMLSelectElement>(TestIds.envKindFilter).value).toBe('');
    expect(byTestId<HTMLInputElement>(TestIds.envFilter).value).toBe('');
    expect(noMatches.hidden).toBe(true);
    expect(document.activeElement).toBe(byTestId(TestIds.envFilter));
  });

  it('says so when the server lists no environment', async () => {
    listing = [];
    await open();
    const noMatches = byTestId(TestIds.envNoMatches);
    expect(noMatches.hidden).toBe(false);
    expect(noMatches.textContent).toContain('No environments were found.');
    expect(byTestId(TestIds.envClearFilters).hidden).toBe(true);
  });

  it('moves between visible rows with the arrow keys (roving tabindex)', async () => {
    await open();
    const all = rows();
    const tabbable = () =>
      rows()
        .filter(row => row.tabIndex === 0)
        .map(row => row.dataset.envName);
    const focused = () =>
      (document.activeElement as HTMLElement).dataset.envName;
    // One row in the tab order: the first.
    expect(tabbable()).toEqual(['base']);
    expect(all[0].getAttribute('aria-selected')).toBe('true');

    all[0].focus();
    expect(key(all[0], 'ArrowDown').defaultPrevented).toBe(true);
    expect(focused()).toBe('Alpha');
    expect(tabbable()).toEqual(['Alpha']);
    expect(all[0].getAttribute('aria-selected')).toBe('false');
    expect(all[1].getAttribute('aria-selected')).toBe('true');

    key(document.activeElement as HTMLElement, 'End');
    expect(focused()).toBe('zeta');
    key(document.activeElement as HTMLElement, 'ArrowDown');
    expect(focused()).toBe('zeta');
    key(document.activeElement as HTMLElement, 'Home');
    expect(focused()).toBe('base');
    key(document.activeElement as HTMLElement, 'ArrowUp');
    expect(focused()).toBe('base');
    key(document.activeElement as HTMLElement, 'PageDown');
    expect(focused()).toBe('zeta');

    // Hidden rows are skipped; a hidden focused row hands the tab stop on.
    select(TestIds.envKernelFilter, 'no-kernel');
    expect(tabbable()).toEqual(['env2']);
    rows()[2].focus();
    key(rows()[2], 'ArrowDown');
    expect(focused()).toBe('legacy');
    key(document.activeElement as HTMLElement, 'ArrowDown');
    expect(focused()).toBe('tools');
    key(document.activeElement as HTMLElement, 'ArrowUp');
    key(document.activeElement as HTMLElement, 'ArrowUp');
    expect(focused()).toBe('env2');

    // Other keys are left to the browser and JupyterLab.
    expect(
      key(document.activeElement as HTMLElement, 'a').defaultPrevented
    ).toBe(false);
  });

  it('opens the details with Enter or Space and returns with Escape', async () => {
    const { panel } = await open();
    const alpha = rows()[1];
    alpha.focus();
    expect(key(alpha, 'Enter').defaultPrevented).toBe(true);
    const details = byTestId('repro-env-details');
    expect(details.hidden).toBe(false);
    expect(details.dataset.envName).toBe('Alpha');
    expect(panel.node.querySelector('.jp-ReproEnvs-listPart')).toHaveProperty(
      'hidden',
      true
    );
    // The focus moves into the details, on its title.
    expect(document.activeElement).toBe(byTestId('repro-env-details-title'));
    await panel.detailsView!.ready;

    key(document.activeElement as HTMLElement, 'Escape');
    expect(details.hidden).toBe(true);
    expect(document.activeElement).toBe(alpha);
    expect(alpha.tabIndex).toBe(0);

    // Space opens it too; the Back button returns as Escape does.
    rows()[2].focus();
    key(rows()[2], ' ');
    expect(details.dataset.envName).toBe('env2');
    byTestId<HTMLButtonElement>('repro-env-details-back').click();
    expect(details.hidden).toBe(true);
    expect(document.activeElement).toBe(rows()[2]);
  });

  it('opens the details of a clicked row', async () => {
    const { panel } = await open();
    rows()[1].querySelector<HTMLElement>('.jp-ReproEnv-kernels')!.click();
    expect(panel.detailsView?.environment?.name).toBe('Alpha');
    expect(byTestId('repro-env-details').hidden).toBe(false);
    expect(panel.openDetails('no-such-env')).toBe(false);
  });

  it('keeps the focused row when the listing is refreshed', async () => {
    const { model } = await open();
    const zeta = rows()[6];
    zeta.focus();
    listing = [...LISTING, env('aaa')];
    await model.refreshEnvironments();
    await flush();
    expect(rows().map(row => row.dataset.envName)).toEqual([
      'base',
      'aaa',
      ...SORTED.slice(1)
    ]);
    const focused = document.activeElement as HTMLElement;
    expect(focused.dataset.envName).toBe('zeta');
    expect(focused.tabIndex).toBe(0);
    expect(focused).not.toBe(zeta);
  });
});
