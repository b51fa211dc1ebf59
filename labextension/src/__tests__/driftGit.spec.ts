import { ReproClient } from '../client';
import { IGitStatus } from '../tokens';
import {
  describeGitStatus,
  GitStatusItem,
  GitStatusModel
} from '../widgets/gitStatus';
import { mockServer, settings } from './server';

const NOT_INSTALLED: IGitStatus = {
  repository: 'project',
  installed: false,
  nbstripout: false,
  details: { git: true, filter: null, diff: null, message: null }
};
const INSTALLED: IGitStatus = {
  ...NOT_INSTALLED,
  installed: true,
  details: { git: true, filter: 'jupyter-repro', diff: 'jupyter-repro' }
};
const NO_REPOSITORY: IGitStatus = {
  repository: null,
  installed: false,
  nbstripout: false,
  details: { git: true, message: 'not in a git repository' }
};

describe('the git status of the active notebook', () => {
  let server: ReturnType<typeof mockServer> | null = null;
  afterEach(() => {
    server?.restore();
    server = null;
  });

  it('fetches the status of each notebook followed and installs', async () => {
    let status: IGitStatus = NOT_INSTALLED;
    server = mockServer({
      'GET notebooks/project/nb.ipynb/git': () => ({ body: status }),
      'GET notebooks/other.ipynb/git': () => ({ body: NO_REPOSITORY }),
      'POST notebooks/project/nb.ipynb/git': call => {
        expect(call.body).toEqual({ action: 'install' });
        status = INSTALLED;
        return { body: { ...INSTALLED, output: [] } };
      }
    });
    const model = new GitStatusModel(new ReproClient(settings()));
    const item = new GitStatusItem({ model, onClick: () => undefined });
    const button = item.node.querySelector('button')!;

    await model.setPath('project/nb.ipynb');
    expect(button.dataset.gitState).toBe('not-installed');
    expect(button.textContent).toBe('Git filter: off');
    expect(item.node.hidden).toBe(false);

    const result = await model.install();
    expect(result.installed).toBe(true);
    expect(button.dataset.gitState).toBe('installed');
    expect(button.textContent).toBe('Git filter: on');

    await model.setPath('other.ipynb');
    expect(button.dataset.gitState).toBe('none');
    expect(item.node.hidden).toBe(true);

    await model.setPath(null);
    expect(item.node.hidden).toBe(true);
    item.dispose();
  });

  it('says what it knows', () => {
    expect(describeGitStatus(null, null).state).toBe('unknown');
    expect(
      describeGitStatus(null, { message: 'boom', status: 500, reason: null })
        .title
    ).toContain('boom');
    const nbstripout = describeGitStatus(
      {
        ...NOT_INSTALLED,
        nbstripout: true,
        details: { nbstripout: ['.pre-commit-config.yaml'] }
      },
      null
    );
    expect(nbstripout.title).toContain('nbstripout is set up');
    expect(nbstripout.title).toContain('.pre-commit-config.yaml');
    expect(
      describeGitStatus({ ...INSTALLED, repository: '.' }, null).title
    ).toContain('the repository at the server root');
  });
});
