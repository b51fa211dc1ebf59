import { Widget } from '@lumino/widgets';

import { ReproModel } from '../model';
import { IEnvironmentSummary } from '../tokens';
import { EnvironmentsPanel } from '../widgets/environmentsPanel';
import { flush, mockServer, settings } from './server';

function environments(count: number): IEnvironmentSummary[] {
  return Array.from({ length: count }, (_, i) => ({
    name: `env-${i}<b>`,
    prefix: `/envs/env-${i}`,
    kind: i % 2 ? 'conda' : 'venv',
    python_version: `3.${i % 13}.0`,
    kernels: [`conda-env-env-${i}-py`],
    is_base: i === 0,
    is_server_env: false,
    writable: true
  }));
}

describe('EnvironmentsPanel', () => {
  let server: ReturnType<typeof mockServer> | null = null;
  let panel: EnvironmentsPanel | null = null;
  afterEach(() => {
    panel?.dispose();
    panel = null;
    server?.restore();
    server = null;
  });

  it('renders 500 environments, filters them and marks the active one', async () => {
    server = mockServer({
      'GET status': () => ({
        body: { version: '0.1.0', engine: { name: 'rattler' }, clis: {} }
      }),
      'GET environments': () => ({ body: { environments: environments(500) } }),
      'POST notebooks/nb.ipynb/drift': () => ({
        body: {
          status: 'drifted',
          added: ['numpy'],
          removed: [],
          changed: [
            {
              name: 'python',
              spec: 'python==3.11.0',
              spec_version: '==3.11.0',
              installed_version: '3.11.1'
            }
          ],
          spec: { source: 'file', path: 'environment.yml' }
        }
      }),
      'GET notebooks/nb.ipynb/strip-policy': () => ({
        body: { on_save: true, keep_output: false, sources: [], options: {} }
      })
    });
    const model = new ReproModel({ serverSettings: settings() });
    panel = new EnvironmentsPanel({ model });
    Widget.attach(panel, document.body);
    await model.refresh();
    await flush();

    const list = panel.node.querySelector('[data-testid="repro-env-list"]')!;
    const items = list.querySelectorAll('[data-testid="repro-env-item"]');
    expect(items).toHaveLength(500);
    expect(list.getAttribute('data-rendered')).toBe('true');
    // Names are text, not markup.
    expect(items[3].getAttribute('data-env-name')).toBe('env-3<b>');
    expect(items[3].querySelector('b')).toBeNull();

    model.setFilter('env-49');
    const shown = () =>
      Array.from(items)
        .filter(item => !(item as HTMLElement).hidden)
        .map(item => item.getAttribute('data-env-name'));
    expect(shown()).toEqual([
      'env-49<b>',
      ...Array.from({ length: 10 }, (_, i) => `env-49${i}<b>`)
    ]);
    expect(
      panel.node.querySelector('[data-testid="repro-env-count"]')!.textContent
    ).toBe('11 of 500');
    model.setFilter('');
    expect(shown()).toHaveLength(500);

    await model.setActiveNotebook({
      path: 'nb.ipynb',
      kernelName: 'conda-env-env-7-py'
    });
    const active = list.querySelector('.jp-mod-active');
    expect(active?.getAttribute('data-env-name')).toBe('env-7<b>');
    const badge = panel.node.querySelector(
      '[data-testid="repro-drift-badge"]'
    )!;
    expect(badge.getAttribute('data-drift-status')).toBe('drifted');
    const details = panel.node.querySelector(
      '[data-testid="repro-drift-details"]'
    ) as HTMLElement;
    expect(details.hidden).toBe(false);
    expect(details.textContent).toContain('numpy');
    expect(details.textContent).toContain('python==3.11.0: 3.11.1 installed');
    expect(details.textContent).toContain('Compared with environment.yml.');
  });
});
