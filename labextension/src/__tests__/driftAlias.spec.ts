import { ISessionContext } from '@jupyterlab/apputils';
import { KernelSpec } from '@jupyterlab/services';
import { Signal } from '@lumino/signaling';

import { BaseKernelAlias, resolveBaseAlias } from '../kernelAlias';

function spec(
  name: string,
  metadata: Record<string, unknown> = {}
): KernelSpec.ISpecModel {
  return {
    name,
    display_name: name,
    language: 'python',
    argv: [],
    resources: {},
    metadata
  } as unknown as KernelSpec.ISpecModel;
}

function specs(...models: KernelSpec.ISpecModel[]): KernelSpec.ISpecModels {
  return {
    default: 'python3',
    kernelspecs: Object.fromEntries(models.map(m => [m.name, m]))
  };
}

const BASE = { conda_is_base_environment: true };
const OTHER = { conda_is_base_environment: false };

describe('resolveBaseAlias', () => {
  it('names the listed base kernel for conda-root-*', () => {
    const listed = specs(
      spec('python3'),
      spec('conda-base-py', BASE),
      spec('conda-base-r', BASE),
      spec('conda-env-work-py', OTHER)
    );
    expect(resolveBaseAlias('conda-root-py', listed)).toBe('conda-base-py');
    expect(resolveBaseAlias('conda-root-r', listed)).toBe('conda-base-r');
  });

  it('follows a configured base name', () => {
    const listed = specs(spec('python3'), spec('conda-anaconda-py', BASE));
    expect(resolveBaseAlias('conda-root-py', listed)).toBe('conda-anaconda-py');
    expect(resolveBaseAlias('conda-base-py', listed)).toBe('conda-anaconda-py');
  });

  it('leaves listed names, other names and unknown kernels alone', () => {
    const listed = specs(spec('python3'), spec('conda-base-py', BASE));
    expect(resolveBaseAlias('conda-base-py', listed)).toBeNull();
    expect(resolveBaseAlias('conda-env-gone-py', listed)).toBeNull();
    expect(resolveBaseAlias('conda-root-julia', listed)).toBeNull();
    expect(resolveBaseAlias(undefined, listed)).toBeNull();
    expect(resolveBaseAlias('conda-root-py', null)).toBeNull();
  });

  it('names python3 when the server runs in the base environment', () => {
    const listed = specs(
      spec('python3'),
      spec('conda-base-r', { ...BASE, conda_is_currently_running: true })
    );
    expect(resolveBaseAlias('conda-root-py', listed)).toBe('python3');
  });
});

describe('BaseKernelAlias', () => {
  /**
   * The part of a session context the extension uses.
   */
  class FakeSession {
    kernelPreferenceChanged = new Signal<FakeSession, unknown>(this);
    private _preference: ISessionContext.IKernelPreference = {};
    get kernelPreference(): ISessionContext.IKernelPreference {
      return this._preference;
    }
    set kernelPreference(value: ISessionContext.IKernelPreference) {
      this._preference = value;
      this.kernelPreferenceChanged.emit(value);
    }
  }

  it('rewrites the preference as the context sets it', () => {
    const listed = specs(spec('python3'), spec('conda-base-py', BASE));
    const alias = new BaseKernelAlias(() => listed);
    const session = new FakeSession();
    const context = { sessionContext: session } as never;
    const extension = alias.createNew({} as never, context);

    session.kernelPreference = {
      shouldStart: true,
      name: 'conda-root-py',
      language: 'python'
    };
    expect(session.kernelPreference).toEqual({
      shouldStart: true,
      name: 'conda-base-py',
      language: 'python'
    });

    extension.dispose();
    expect(extension.isDisposed).toBe(true);
    session.kernelPreference = { name: 'conda-root-py' };
    expect(session.kernelPreference.name).toBe('conda-root-py');
  });

  it('asks the environment listing when no base kernel is listed', () => {
    const listed = specs(spec('python3'), spec('conda-env-work-py', OTHER));
    const alias = new BaseKernelAlias(
      () => listed,
      () => ({ serverIsBase: true })
    );
    expect(alias.resolve('conda-root-py')).toBe('python3');
    const elsewhere = new BaseKernelAlias(
      () => listed,
      () => ({ serverIsBase: false })
    );
    expect(elsewhere.resolve('conda-root-py')).toBeNull();
  });
});
