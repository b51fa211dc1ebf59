import { ISessionContext } from '@jupyterlab/apputils';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import { INotebookModel, NotebookPanel } from '@jupyterlab/notebook';
import { KernelSpec } from '@jupyterlab/services';
import { IDisposable } from '@lumino/disposable';

/**
 * Names older notebooks give the base environment's kernels
 * (`conda-root-py` from nb_conda_kernels before `conda-base-py`).
 */
export const BASE_ALIASES = ['root', 'base'];

/**
 * What a notebook's kernel name stands for when it names the base
 * environment the old way: the listed kernel of the base environment, or
 * `null` when `name` is listed itself, is no alias, or nothing matches.
 *
 * The server resolves `conda-root-<kernel>` to the base environment's
 * kernel; JupyterLab's frontend only starts kernels it finds in the
 * listing, and would ask the user to pick one. A listed kernel whose
 * metadata says it is of the base environment and ends like the alias
 * (`-py`) is the answer (whatever `base_name` the server uses). When the
 * server itself runs in the base environment, its Python kernel is listed as
 * `python3` only: `python3` is then the answer for `-py`.
 */
export function resolveBaseAlias(
  name: string | undefined,
  specs: KernelSpec.ISpecModels | null | undefined
): string | null {
  if (!name || !specs?.kernelspecs || name in specs.kernelspecs) {
    return null;
  }
  const alias = BASE_ALIASES.map(base => `conda-${base}-`).find(prefix =>
    name.startsWith(prefix)
  );
  if (!alias) {
    return null;
  }
  const key = name.slice(alias.length);
  const listed = Object.entries(specs.kernelspecs).filter(
    (entry): entry is [string, KernelSpec.ISpecModel] => !!entry[1]
  );
  const base = listed.filter(([, spec]) => isBase(spec));
  const exact = base.find(([listedName]) => listedName.endsWith(`-${key}`));
  if (exact) {
    return exact[0];
  }
  // The base environment runs the server: its Python kernel is `python3`.
  const serverIsBase = base.some(([, spec]) => isCurrent(spec));
  if (key === 'py' && serverIsBase && 'python3' in specs.kernelspecs) {
    return 'python3';
  }
  return null;
}

function isBase(spec: KernelSpec.ISpecModel): boolean {
  return spec.metadata?.['conda_is_base_environment'] === true;
}

function isCurrent(spec: KernelSpec.ISpecModel): boolean {
  return spec.metadata?.['conda_is_currently_running'] === true;
}

/**
 * Makes a notebook that names the base environment's kernel the old way
 * (`conda-root-py`) start that kernel without asking.
 *
 * The document context sets the session's kernel preference from the
 * notebook's `metadata.kernelspec.name` just before it starts a kernel; this
 * rewrites the preference, as it is set, to the listed name. The notebook's
 * metadata is left alone until the kernel starts (JupyterLab then writes the
 * running kernel's name, `conda-base-py`, as for any kernel).
 */
export class BaseKernelAlias implements DocumentRegistry.IWidgetExtension<
  NotebookPanel,
  INotebookModel
> {
  constructor(
    specs: () => KernelSpec.ISpecModels | null | undefined,
    environmentsListing: () => { serverIsBase: boolean } | null = () => null
  ) {
    this._specs = specs;
    this._listing = environmentsListing;
  }

  createNew(
    panel: NotebookPanel,
    context: DocumentRegistry.IContext<INotebookModel>
  ): IDisposable {
    const session = context.sessionContext;
    const onPreference = (sender: ISessionContext): void => {
      const preference = sender.kernelPreference;
      const resolved = this.resolve(preference.name);
      if (resolved !== null && resolved !== preference.name) {
        // Re-entrant: the setter emits again, with a listed name this time.
        sender.kernelPreference = { ...preference, name: resolved };
      }
    };
    session.kernelPreferenceChanged.connect(onPreference);
    let disposed = false;
    return {
      get isDisposed() {
        return disposed;
      },
      dispose() {
        disposed = true;
        session.kernelPreferenceChanged.disconnect(onPreference);
      }
    };
  }

  /**
   * The listed kernel `name` stands for, or `null`.
   */
  resolve(name: string | undefined): string | null {
    const specs = this._specs();
    const found = resolveBaseAlias(name, specs);
    if (found !== null || !name || !specs?.kernelspecs) {
      return found;
    }
    // No base kernel listed: the server may run in the base environment.
    const listing = this._listing();
    if (
      listing?.serverIsBase &&
      BASE_ALIASES.some(base => name === `conda-${base}-py`) &&
      'python3' in specs.kernelspecs
    ) {
      return 'python3';
    }
    return null;
  }

  private _specs: () => KernelSpec.ISpecModels | null | undefined;
  private _listing: () => { serverIsBase: boolean } | null;
}
