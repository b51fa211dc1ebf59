import { Widget } from '@lumino/widgets';

import { filterEnvironments, ReproModel } from '../model';
import { IEnvironmentSummary } from '../tokens';
import {
  DetailsTestIds,
  environmentBadges,
  SHARED_TITLE
} from '../widgets/environmentDetails';
import { EnvironmentsPanel, TestIds } from '../widgets/environmentsPanel';
import { env, flush, mockServer, settings } from './server';

// An administrator's environment: read-only, in a shared folder.
const COURSE = env('course', {
  prefix: '/srv/conda/envs/course',
  writable: false,
  shared: true
});
// The user's own, and one the server cannot write but is not shared.
const MINE = env('mine');
const LOCKED = env('locked', { writable: false });
// A server older than the `shared` field.
const OLD = env('old');
delete OLD.shared;

describe('environmentBadges', () => {
  it('says shared (read-only) instead of read-only for a shared environment', () => {
    expect(environmentBadges(COURSE).map(b => b.label)).toEqual(['shared']);
    expect(environmentBadges(COURSE)[0].title).toBe(SHARED_TITLE);
    expect(SHARED_TITLE).toContain('read-only');
    expect(environmentBadges(LOCKED).map(b => b.label)).toEqual(['read-only']);
    expect(environmentBadges(MINE)).toEqual([]);
    expect(environmentBadges(OLD)).toEqual([]);
    const base: IEnvironmentSummary = {
      ...COURSE,
      is_base: true,
      is_server_env: true
    };
    expect(environmentBadges(base).map(b => b.label)).toEqual([
      'base',
      'server',
      'shared'
    ]);
  });

  it('lets the filter find shared environments by typing "shared"', () => {
    const names = filterEnvironments([MINE, COURSE, LOCKED, OLD], 'shared').map(
      e => e.name
    );
    expect(names).toEqual(['course']);
  });
});

describe('the shared badge in the panel', () => {
  let server: ReturnType<typeof mockServer> | null = null;
  let panel: EnvironmentsPanel | null = null;
  afterEach(() => {
    panel?.dispose();
    panel = null;
    server?.restore();
    server = null;
  });

  async function showPanel(): Promise<EnvironmentsPanel> {
    server = mockServer({
      'GET status': () => ({
        body: { version: '0.1.0', engine: { name: 'rattler' }, clis: {} }
      }),
      'GET environments': () => ({
        body: { environments: [MINE, COURSE, LOCKED] }
      }),
      'GET environments/course': () => ({
        body: { ...COURSE, conda_packages: [], pip_packages: [] }
      })
    });
    const model = new ReproModel({ serverSettings: settings() });
    panel = new EnvironmentsPanel({ model });
    Widget.attach(panel, document.body);
    await model.refresh();
    await flush();
    return panel;
  }

  function row(node: HTMLElement, name: string): HTMLElement {
    const found = node.querySelector<HTMLElement>(
      `[data-testid="${TestIds.envItem}"][data-env-name="${name}"]`
    );
    if (!found) {
      throw new Error(`no row ${name}`);
    }
    return found;
  }

  it('marks only the shared environment, with a read-only title', async () => {
    const shown = await showPanel();

    const badge = row(shown.node, 'course').querySelector<HTMLElement>(
      `[data-testid="${TestIds.envSharedBadge}"]`
    );
    expect(badge).not.toBeNull();
    expect(badge!.textContent).toBe('shared');
    expect(badge!.title).toBe(SHARED_TITLE);
    expect(badge!.getAttribute('aria-label')).toBe('shared, read-only');
    expect(badge!.classList.contains('jp-mod-shared')).toBe(true);
    // "shared" says read-only itself: no second badge.
    expect(row(shown.node, 'course').textContent).not.toContain('read-only');

    for (const name of ['mine', 'locked']) {
      expect(
        row(shown.node, name).querySelector(
          `[data-testid="${TestIds.envSharedBadge}"]`
        )
      ).toBeNull();
    }
    expect(row(shown.node, 'locked').textContent).toContain('read-only');
  });

  it('shows the badge in the details view too', async () => {
    const shown = await showPanel();
    expect(shown.openDetails('course')).toBe(true);
    await shown.detailsView!.ready;
    await flush();

    const badge = shown.node.querySelector<HTMLElement>(
      `[data-testid="${DetailsTestIds.sharedBadge}"]`
    );
    expect(badge).not.toBeNull();
    expect(badge!.textContent).toBe('shared');
    expect(badge!.title).toBe(SHARED_TITLE);
  });
});
