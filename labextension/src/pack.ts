import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { IJob, IPackRequest, IPackResult } from './tokens';

/**
 * The body of `POST repro/pack` for one notebook and the platforms checked
 * (each once, in order; none: the server packs the environment's own).
 */
export function packRequest(
  notebookPath: string,
  platforms: readonly string[]
): IPackRequest {
  const request: IPackRequest = { notebooks: [notebookPath] };
  const chosen = platforms.filter(
    (platform, index) => platforms.indexOf(platform) === index
  );
  if (chosen.length) {
    request.platforms = chosen;
  }
  return request;
}

/**
 * The URL of `GET repro/jobs/{id}/download`, with the `_xsrf` cookie as a
 * query parameter when there is one (what JupyterLab's own file downloads
 * do: the browser fetches it, not our request code).
 */
export function packDownloadUrl(
  settings: ServerConnection.ISettings,
  jobId: string,
  cookie: string = typeof document === 'undefined' ? '' : document.cookie
): string {
  const url = URLExt.join(
    settings.baseUrl,
    'repro',
    'jobs',
    encodeURIComponent(jobId),
    'download'
  );
  const xsrf = cookie.match('\\b_xsrf=([^;]*)\\b');
  if (!xsrf) {
    return url;
  }
  const full = new URL(url, window.location.href);
  full.searchParams.append('_xsrf', xsrf[1]);
  return full.toString();
}

/**
 * Start the browser's download of `url` (an anchor click: the browser
 * streams the file to disk, nothing is held in memory here).
 */
export function triggerDownload(url: string, filename: string): void {
  const anchor = document.createElement('a');
  anchor.href = url;
  anchor.download = filename;
  anchor.rel = 'noopener';
  anchor.style.display = 'none';
  document.body.appendChild(anchor);
  anchor.click();
  anchor.remove();
}

const PHASES: Readonly<Record<string, string>> = Object.freeze({
  lock: 'Locking the environment',
  fetch: 'Collecting packages',
  write: 'Writing the capsule',
  scan: 'Reading the environment',
  pack: 'Packing files'
});

/**
 * One line saying how far a pack job is: `Collecting packages: 3 of 12…`.
 */
export function packProgressText(job: IJob<IPackResult>): string {
  if (job.state === 'queued') {
    return 'Waiting to start…';
  }
  if (job.state === 'succeeded' && job.result) {
    return `Packed ${job.result.filename} (${humanBytes(job.result.size)}).`;
  }
  if (job.state === 'failed') {
    return `The pack failed: ${job.error?.message ?? 'unknown error'}`;
  }
  if (job.state === 'cancelled') {
    return 'The pack was cancelled.';
  }
  const { phase, done, total } = job.progress;
  const what = (phase && PHASES[phase]) || 'Packing';
  return total > 0 ? `${what}: ${done} of ${total}…` : `${what}…`;
}

/**
 * `512 B`, `3.4 KB`, `1.2 MB` (powers of 1000, as the CLI says them).
 */
export function humanBytes(size: number): string {
  let value = size;
  for (const unit of ['B', 'KB', 'MB', 'GB']) {
    if (value < 1000 || unit === 'GB') {
      return unit === 'B' ? `${size} B` : `${value.toFixed(1)} ${unit}`;
    }
    value /= 1000;
  }
  return `${value.toFixed(1)} TB`;
}
