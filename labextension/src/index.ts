import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { ISettingRegistry } from '@jupyterlab/settingregistry';

import { environmentsIcon } from './icons';
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

export * from './tokens';
export { requestAPI, ReproRequestError } from './request';
export { ReproModel } from './model';
export { EnvironmentsPanel } from './widgets/environmentsPanel';
export { environmentsIcon } from './icons';

/**
 * The jupyter-repro frontend: model, Environments sidebar panel, command.
 */
const plugin: JupyterFrontEndPlugin<IReproModel> = {
  id: PLUGIN_ID,
  description:
    'Reproducible environments for Jupyter: the Environments sidebar panel.',
  autoStart: true,
  provides: IReproModel,
  optional: [ILayoutRestorer, ICommandPalette, ISettingRegistry],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    settingRegistry: ISettingRegistry | null
  ): IReproModel => {
    const model = new ReproModel({
      serverSettings: app.serviceManager.serverSettings
    });

    const panel = new EnvironmentsPanel({ model });
    app.shell.add(panel, 'left', { rank: 400 });
    if (restorer) {
      restorer.add(panel, ENVIRONMENTS_PANEL_ID);
    }

    app.commands.addCommand(CommandIDs.openEnvironments, {
      label: 'Show Environments panel',
      caption: 'Show the jupyter-repro Environments panel',
      icon: args => (args['isPalette'] ? undefined : environmentsIcon),
      execute: () => {
        app.shell.activateById(panel.id);
      }
    });
    if (palette) {
      palette.addItem({
        command: CommandIDs.openEnvironments,
        category: 'Environments'
      });
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
        : DEFAULT_SETTINGS.defaultExportTarget
    };
  }
}
