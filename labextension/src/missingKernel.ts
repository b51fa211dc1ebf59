import { JupyterFrontEnd } from '@jupyterlab/application';
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { Widget } from '@lumino/widgets';

import { METADATA_KEY, ReproActions } from './actions';
import { besideCandidates } from './besideFiles';
import { resolveBaseAlias } from './kernelAlias';
import { IRestoreResult, RestoreSource } from './tokens';

/**
 * The `data-testid` of the offer shown for a notebook whose kernel is not
 * installed here.
 */
export const MISSING_KERNEL_TESTID = 'repro-missing-kernel';

async function besideFile(
  app: JupyterFrontEnd,
  notebookPath: string
): Promise<string | null> {
  for (const candidate of besideCandidates(notebookPath)) {
    try {
      await app.serviceManager.contents.get(candidate, { content: false });
      return candidate;
    } catch {
      // not there: the next one
    }
  }
  return null;
}

/**
 * Offer to restore the environment of every opened notebook whose kernel is
 * not installed here but which carries its environment (embedded, or a lock
 * file or `environment.yml` beside it), instead of JupyterLab's list of every
 * kernel: the reason, then "Restore environment" (plan, progress, then the
 * notebook switches to the new kernel).
 */
export function offerRestoreForMissingKernels(
  app: JupyterFrontEnd,
  tracker: INotebookTracker,
  actions: ReproActions
): void {
  tracker.widgetAdded.connect((_, panel) => {
    // `ready` resolves before the context asks the session for a kernel
    // (it first makes a checkpoint): the preference set here still counts.
    void panel.context.ready.then(() => Private.check(app, panel, actions));
  });
}

namespace Private {
  /**
   * Where the notebook's environment travels, if anywhere.
   */
  interface ICarried {
    source: RestoreSource;
    description: string;
  }

  export async function check(
    app: JupyterFrontEnd,
    panel: NotebookPanel,
    actions: ReproActions
  ): Promise<void> {
    const kernelspec = panel.model?.getMetadata('kernelspec') as
      { name?: unknown } | undefined;
    const name = typeof kernelspec?.name === 'string' ? kernelspec.name : '';
    if (!name) {
      return;
    }
    const manager = app.serviceManager.kernelspecs;
    const specs = manager.specs?.kernelspecs;
    if (
      !specs ||
      name in specs ||
      resolveBaseAlias(name, manager.specs) !== null
    ) {
      return; // known here (or not known yet: JupyterLab decides as usual)
    }
    const embedded = panel.model?.getMetadata(METADATA_KEY) as
      { environment?: unknown } | undefined;
    const path = panel.context.path;
    let carried: ICarried | null = null;
    if (embedded && typeof embedded.environment === 'object') {
      carried = {
        source: { notebook: path },
        description: `the notebook ${path}`
      };
    }
    // Asked before anything awaits: the session reads the preference soon.
    const before = panel.sessionContext.kernelPreference;
    if (carried) {
      panel.sessionContext.kernelPreference = { ...before, canStart: false };
    }
    if (!carried) {
      const beside = await besideFile(app, path);
      if (beside === null) {
        return; // nothing to restore from: JupyterLab's kernel choice
      }
      carried = { source: { file: beside }, description: beside };
      panel.sessionContext.kernelPreference = { ...before, canStart: false };
    }
    await offer(app, panel, actions, name, carried, before);
  }

  async function offer(
    app: JupyterFrontEnd,
    panel: NotebookPanel,
    actions: ReproActions,
    kernel: string,
    carried: ICarried,
    preference: NotebookPanel['sessionContext']['kernelPreference']
  ): Promise<void> {
    const node = document.createElement('div');
    node.dataset.testid = MISSING_KERNEL_TESTID;
    const where =
      'notebook' in carried.source
        ? 'The notebook carries its environment'
        : `${carried.description} describes its environment`;
    node.textContent =
      `The kernel of ${PathExt.basename(panel.context.path)}, ${kernel}, ` +
      `is not installed here. ${where}: restore it to run the notebook as ` +
      'it was run.';
    const result = await showDialog({
      title: 'Kernel not installed here',
      body: new Widget({ node }),
      buttons: [
        Dialog.cancelButton({ label: 'Not now' }),
        Dialog.createButton({
          label: 'Choose another kernel',
          ariaLabel: 'Choose a kernel installed here'
        }),
        Dialog.okButton({
          label: 'Restore environment',
          ariaLabel: 'Restore the notebook environment'
        })
      ]
    });
    // From then on the notebook starts kernels as it would have. While a restore
    // runs it must not: JupyterLab would ask for another kernel over the plan.
    const startAsBefore = (): void => {
      panel.sessionContext.kernelPreference = {
        ...panel.sessionContext.kernelPreference,
        canStart: preference.canStart
      };
    };
    if (result.button.accept) {
      try {
        const done = await actions.restore(carried.source, carried.description);
        if (done?.state === 'succeeded' && done.result) {
          await actions.switchKernel(done.result as unknown as IRestoreResult, {
            source: carried.source
          });
        }
      } finally {
        startAsBefore();
      }
    } else {
      startAsBefore();
      if (result.button.label === 'Choose another kernel') {
        await app.commands.execute('notebook:change-kernel');
      }
    }
  }
}
