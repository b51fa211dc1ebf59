import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';
import { JSONObject } from '@lumino/coreutils';
import { MessageLoop } from '@lumino/messaging';
import { Signal } from '@lumino/signaling';

import { isEnvironmentFile, ReproActions, reportErrors } from './actions';
import { DriftWatch } from './driftWatch';
import { environmentsIcon } from './icons';
import { BaseKernelAlias } from './kernelAlias';
import { lockPlatformsSetting } from './lock';
import { offerRestoreForMissingKernels } from './missingKernel';
import { DEFAULT_SETTINGS, ReproModel } from './model';
import {
  CommandIDs,
  ENVIRONMENTS_PANEL_ID,
  ExportMode,
  ExportTarget,
  IReproModel,
  IReproSettings,
  PLUGIN_ID
} from './tokens';
import { EnvironmentsPanel } from './widgets/environmentsPanel';
import {
  GitStatusItem,
  GitStatusModel,
  installGitFilter
} from './widgets/gitStatus';
import { StripStatus } from './widgets/stripStatus';

export * from './tokens';
export {
  fetchAPI,
  notebookEndpoint,
  requestAPI,
  requestText,
  ReproRequestError
} from './request';
export { ReproClient } from './client';
export { RestoreJob, ServerJob, VerifyJob } from './jobs';
export { ReproModel } from './model';
export { EnvironmentsPanel } from './widgets/environmentsPanel';
export { environmentsIcon } from './icons';

/**
 * The palette category of every jupyter-repro command.
 */
const CATEGORY = 'Environments';

/**
 * The jupyter-repro frontend: model, Environments sidebar panel, export and
 * restore commands, the strip-on-save status-bar item.
 */
const plugin: JupyterFrontEndPlugin<IReproModel> = {
  id: PLUGIN_ID,
  description:
    'Reproducible environments for Jupyter: the Environments panel, export, restore, strip-on-save status.',
  autoStart: true,
  provides: IReproModel,
  optional: [
    ILayoutRestorer,
    ICommandPalette,
    ISettingRegistry,
    INotebookTracker,
    IStatusBar,
    IFileBrowserFactory,
    IDocumentManager
  ],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    settingRegistry: ISettingRegistry | null,
    tracker: INotebookTracker | null,
    statusBar: IStatusBar | null,
    browserFactory: IFileBrowserFactory | null,
    docManager: IDocumentManager | null
  ): IReproModel => {
    const { commands } = app;
    const model = new ReproModel({
      serverSettings: app.serviceManager.serverSettings
    });
    const actions = new ReproActions({ app, model, tracker, docManager });
    if (tracker) {
      offerRestoreForMissingKernels(app, tracker, actions);
    }

    const panel = new EnvironmentsPanel({
      model,
      commands,
      onSwitchKernel: (result, request) =>
        reportErrors('Could not switch the kernel', () =>
          actions.switchKernel(result, request)
        ),
      canSwitchKernel: (result, request) =>
        result !== null && actions.canSwitchKernel(request),
      verify: {
        onJump: (job, cell) =>
          reportErrors('Could not show the cell', () =>
            actions.jumpToCell(job, cell)
          ),
        onRecord: async job => {
          let recorded = false;
          await reportErrors('Could not record the verification', async () => {
            recorded = await actions.recordVerification(job);
          });
          return recorded;
        },
        canRecord: job => actions.canRecordVerification(job),
        onDismiss: () => actions.clearVerifyMarks()
      }
    });
    app.shell.add(panel, 'left', { rank: 400 });

    // Notebooks naming `conda-root-py` start the base environment's kernel
    // without a kernel prompt.
    app.docRegistry.addWidgetExtension(
      'Notebook',
      new BaseKernelAlias(
        () => app.serviceManager.kernelspecs.specs,
        () => {
          const base = model.environments.find(env => env.is_base);
          return base ? { serverIsBase: base.is_server_env } : null;
        }
      )
    );

    // The drift shown follows the environment on disk: checked every few
    // seconds while the panel is shown, at once when it is shown again.
    const driftWatch = new DriftWatch({
      model,
      isVisible: () => panel.isVisible
    });
    MessageLoop.installMessageHook(panel, (_, msg) => {
      if (msg.type === 'after-show') {
        driftWatch.poke();
      }
      return true;
    });
    const git = new GitStatusModel(model.client);
    if (restorer) {
      restorer.add(panel, ENVIRONMENTS_PANEL_ID);
    }

    const hasNotebook = () => !!tracker?.currentWidget;

    commands.addCommand(CommandIDs.openPanel, {
      label: 'Show Environments panel',
      caption: 'Show the jupyter-repro Environments panel',
      icon: args => (args['isPalette'] ? undefined : environmentsIcon),
      execute: () => {
        app.shell.activateById(panel.id);
      }
    });
    commands.addCommand(CommandIDs.exportEnvironment, {
      label: 'Export Environment…',
      caption:
        "Export the environment of the active notebook's kernel: download, save beside the notebook or embed",
      isEnabled: hasNotebook,
      execute: () =>
        reportErrors('Could not export the environment', () =>
          actions.exportEnvironment()
        )
    });
    commands.addCommand(CommandIDs.lock, {
      label: 'Lock environment for platforms',
      caption:
        "Lock the environment of the active notebook's kernel for several platforms: embedded in the notebook, conda-lock.yml or pixi.lock beside it",
      isEnabled: hasNotebook,
      execute: () =>
        reportErrors('Could not lock the environment', () =>
          actions.exportEnvironment({ lock: true })
        )
    });
    commands.addCommand(CommandIDs.restoreEnvironment, {
      label: 'Restore Environment…',
      caption: 'Create the environment embedded in the active notebook',
      isEnabled: hasNotebook,
      execute: () =>
        reportErrors('Could not restore the environment', () =>
          actions.restoreFromNotebook()
        )
    });
    commands.addCommand(CommandIDs.verify, {
      label: args =>
        args['restore'] === true
          ? 'Verify reproduction in a restored environment'
          : 'Verify reproduction',
      caption:
        "Run the active notebook top to bottom on a kernel of its own and compare every cell's outputs with those saved (or their fingerprints)",
      isEnabled: hasNotebook,
      execute: args =>
        reportErrors('Could not verify the notebook', () =>
          actions.verifyNotebook({
            restore: args['restore'] === true,
            timeout:
              typeof args['timeout'] === 'number' ? args['timeout'] : undefined,
            kernel:
              typeof args['kernel'] === 'string' ? args['kernel'] : undefined
          })
        )
    });
    commands.addCommand(CommandIDs.recordVerification, {
      label: 'Record verification',
      caption:
        "Write the last verification (date, platform, environment, result counts) into its notebook's metadata and save it",
      isEnabled: () => {
        const job = model.verifyJob;
        return (
          !!job &&
          job.job.state === 'succeeded' &&
          actions.canRecordVerification(job)
        );
      },
      execute: () =>
        reportErrors('Could not record the verification', () =>
          actions.recordVerification()
        )
    });
    model.verifyChanged.connect(() =>
      commands.notifyCommandChanged(CommandIDs.recordVerification)
    );
    const selectedFile = (): string | null => {
      const browser = browserFactory?.tracker.currentWidget;
      if (!browser) {
        return null;
      }
      for (const item of browser.selectedItems()) {
        if (item.type !== 'directory' && isEnvironmentFile(item.path)) {
          return item.path;
        }
      }
      return null;
    };
    commands.addCommand(CommandIDs.restoreFromFile, {
      label: 'Restore Environment from This File…',
      caption:
        'Create the environment this environment.yml or lock file (conda-lock.yml, pixi.lock) describes',
      isEnabled: args =>
        typeof args['path'] === 'string' || selectedFile() !== null,
      isVisible: args =>
        typeof args['path'] === 'string' || selectedFile() !== null,
      execute: args => {
        const path =
          typeof args['path'] === 'string' ? args['path'] : selectedFile();
        return reportErrors('Could not restore the environment', async () => {
          if (!path) {
            throw new Error(
              'Select an environment*.yml, conda-lock.yml or pixi.lock file in the file browser first.'
            );
          }
          await actions.restoreFromFile(path);
        });
      }
    });
    commands.addCommand(CommandIDs.toggleStripOnSave, {
      label: 'Strip Outputs on Save',
      caption:
        "Toggle whether saving strips this notebook's outputs (metadata.keep_output)",
      isEnabled: hasNotebook,
      isToggled: () => actions.isStripping(),
      execute: () =>
        reportErrors('Could not change the strip policy', () =>
          actions.toggleStripOnSave()
        )
    });
    commands.addCommand(CommandIDs.refresh, {
      label: 'Refresh Environments',
      caption:
        "Reload the environments, the server status and the active notebook's drift",
      execute: () =>
        Promise.all([
          model.refresh(),
          model.refreshActiveNotebook(),
          git.refresh()
        ])
    });
    commands.addCommand(CommandIDs.installGitFilter, {
      label: 'Install Git Filter for This Notebook…',
      caption:
        "Install the jupyter-repro git filter into the active notebook's git repository, so commits strip outputs",
      isEnabled: () =>
        hasNotebook() && typeof git.status?.repository === 'string',
      execute: () =>
        reportErrors('Could not install the git filter', () =>
          installGitFilter(git)
        )
    });

    if (palette) {
      for (const command of [
        CommandIDs.openPanel,
        CommandIDs.exportEnvironment,
        CommandIDs.lock,
        CommandIDs.restoreEnvironment,
        CommandIDs.restoreFromFile,
        CommandIDs.verify,
        CommandIDs.recordVerification,
        CommandIDs.toggleStripOnSave,
        CommandIDs.installGitFilter,
        CommandIDs.refresh
      ]) {
        palette.addItem({ command, category: CATEGORY });
      }
      palette.addItem({
        command: CommandIDs.verify,
        args: { restore: true },
        category: CATEGORY
      });
    }

    app.contextMenu.addItem({
      command: CommandIDs.restoreFromFile,
      selector: '.jp-DirListing-item[data-isdir="false"]',
      rank: 60
    });

    let stripStatus: StripStatus | null = null;
    if (tracker) {
      if (statusBar) {
        stripStatus = new StripStatus({
          model,
          onToggle: () => {
            commands.execute(CommandIDs.toggleStripOnSave).catch(reason => {
              console.error('jupyter-repro: toggle failed.', reason);
            });
          }
        });
        const item = stripStatus;
        const activeChanged = new Signal<StripStatus, void>(item);
        const emit = () => activeChanged.emit();
        tracker.currentChanged.connect(emit);
        app.shell.currentChanged?.connect(emit);
        statusBar.registerStatusItem(`${PLUGIN_ID}:strip-status`, {
          item,
          align: 'left',
          rank: 4,
          isActive: () =>
            !!tracker.currentWidget &&
            app.shell.currentWidget === tracker.currentWidget,
          activeStateChanged: activeChanged
        });
        statusBar.registerStatusItem(`${PLUGIN_ID}:git-status`, {
          item: new GitStatusItem({
            model: git,
            onClick: () => {
              commands.execute(CommandIDs.installGitFilter).catch(reason => {
                console.error('jupyter-repro: git install failed.', reason);
              });
            }
          }),
          align: 'left',
          rank: 5,
          isActive: () =>
            !!tracker.currentWidget &&
            app.shell.currentWidget === tracker.currentWidget,
          activeStateChanged: activeChanged
        });
      }
      Private.followNotebooks(tracker, model, stripStatus, () =>
        commands.notifyCommandChanged(CommandIDs.toggleStripOnSave)
      );
      const followGit = () => {
        void git
          .setPath(model.activeNotebook?.path ?? null)
          .then(() =>
            commands.notifyCommandChanged(CommandIDs.installGitFilter)
          );
      };
      model.activeNotebookChanged.connect(followGit);
      followGit();
    }

    if (settingRegistry) {
      settingRegistry
        .load(PLUGIN_ID)
        .then(settings => {
          const update = () => {
            model.updateSettings(Private.readSettings(settings));
          };
          update();
          settings.changed.connect(update);
        })
        .catch(reason => {
          console.warn('jupyter-repro: could not load settings.', reason);
        });
    }

    return model;
  }
};

export default plugin;

/**
 * Module-private helpers.
 */
namespace Private {
  /**
   * Keep the model on the active notebook: its path, its kernel, its saves.
   */
  export function followNotebooks(
    tracker: INotebookTracker,
    model: ReproModel,
    stripStatus: StripStatus | null,
    onChange: () => void
  ): void {
    let current: NotebookPanel | null = null;

    const describe = (panel: NotebookPanel) => {
      const kernelspec = panel.model?.getMetadata('kernelspec') as
        { name?: unknown } | undefined;
      const fromMetadata =
        typeof kernelspec?.name === 'string' ? kernelspec.name : null;
      // The spec in memory, once the notebook is loaded (before: the file's).
      const embedded = panel.context.isReady
        ? ((panel.model?.getMetadata('jupyter_repro') as
            JSONObject | undefined) ?? null)
        : undefined;
      return {
        path: panel.context.path,
        kernelName:
          panel.sessionContext.session?.kernel?.name ?? fromMetadata ?? null,
        embedded
      };
    };
    const update = () => {
      if (current && !current.isDisposed) {
        void model.setActiveNotebook(describe(current));
      }
      onChange();
    };
    const onSaved = (_: unknown, state: string) => {
      if (state === 'completed') {
        void model.refreshActiveNotebook();
        onChange();
      }
    };
    // A spec embedded (or a kernelspec written) in the open notebook: its
    // drift is judged again (the model asks only when it really changed).
    const onMetadata = () => update();

    const follow = (panel: NotebookPanel | null) => {
      if (current) {
        current.context.pathChanged.disconnect(update);
        current.context.saveState.disconnect(onSaved);
        current.sessionContext.kernelChanged.disconnect(update);
        current.model?.metadataChanged.disconnect(onMetadata);
      }
      current = panel;
      stripStatus?.setNotebook(null);
      if (!panel) {
        void model.setActiveNotebook(null);
        onChange();
        return;
      }
      panel.context.pathChanged.connect(update);
      panel.context.saveState.connect(onSaved);
      panel.sessionContext.kernelChanged.connect(update);
      panel.context.ready
        .then(() => {
          if (current !== panel) {
            return;
          }
          panel.model?.metadataChanged.connect(onMetadata);
          stripStatus?.setNotebook(panel.model);
          update();
        })
        .catch(reason => {
          console.warn('jupyter-repro: notebook did not load.', reason);
        });
    };

    tracker.currentChanged.connect((_, panel) => follow(panel));
    follow(tracker.currentWidget);
  }

  const EXPORT_MODES: readonly ExportMode[] = [
    'portable',
    'exact',
    'no-builds',
    'explicit'
  ];
  const EXPORT_TARGETS: readonly ExportTarget[] = [
    'download',
    'file',
    'metadata'
  ];

  /**
   * Read the settings, falling back to the defaults for invalid values.
   */
  export function readSettings(
    settings: ISettingRegistry.ISettings
  ): IReproSettings {
    const mode = settings.get('defaultExportMode').composite;
    const target = settings.get('defaultExportTarget').composite;
    return {
      defaultExportMode: EXPORT_MODES.includes(mode as ExportMode)
        ? (mode as ExportMode)
        : DEFAULT_SETTINGS.defaultExportMode,
      defaultExportTarget: EXPORT_TARGETS.includes(target as ExportTarget)
        ? (target as ExportTarget)
        : DEFAULT_SETTINGS.defaultExportTarget,
      lockPlatforms: lockPlatformsSetting(
        settings.get('lockPlatforms').composite
      )
    };
  }
}
