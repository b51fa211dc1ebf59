import { PathExt } from '@jupyterlab/coreutils';

/**
 * The files beside a notebook a restore can start from, in the server's order
 * of preference: its own lock, a folder's lock, then the spec.
 */
export function besideCandidates(notebookPath: string): string[] {
  const folder = PathExt.dirname(notebookPath);
  const stem = PathExt.basename(notebookPath, PathExt.extname(notebookPath));
  return [
    `${stem}.conda-lock.yml`,
    'conda-lock.yml',
    'pixi.lock',
    'environment.yml'
  ].map(name => PathExt.join(folder, name));
}
