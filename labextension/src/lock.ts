import { ILockSummary, LockFileFormat, LockTarget } from './tokens';

/**
 * The platforms a lock is made for by default, besides the environment's
 * own (the server's defaults too).
 */
export const DEFAULT_LOCK_PLATFORMS: readonly string[] = Object.freeze([
  'linux-64',
  'osx-64',
  'osx-arm64',
  'win-64'
]);

/**
 * The platforms the lock choice always offers (the server can solve for
 * every `linux-*`, `osx-*` and `win-*` platform).
 */
export const OFFERED_PLATFORMS: readonly string[] = Object.freeze([
  'linux-64',
  'linux-aarch64',
  'linux-ppc64le',
  'osx-64',
  'osx-arm64',
  'win-64',
  'win-arm64'
]);

/**
 * At most this many platforms are locked at once (the server's limit).
 */
export const MAX_LOCK_PLATFORMS = 16;

/**
 * A conda platform subdir as the server accepts it (`noarch` is not one to
 * lock for).
 */
const PLATFORM = /^(?:linux|osx|win|zos|freebsd|emscripten|wasi)-[a-z0-9_]+$/;

/**
 * Whether `value` names a conda platform to lock for, e.g. `osx-arm64`.
 */
export function isPlatform(value: unknown): value is string {
  return typeof value === 'string' && PLATFORM.test(value);
}

/**
 * The `lockPlatforms` setting: its valid platforms, each once, in order;
 * the defaults when it is not a list.
 */
export function lockPlatformsSetting(value: unknown): string[] {
  if (!Array.isArray(value)) {
    return [...DEFAULT_LOCK_PLATFORMS];
  }
  return unique(value.filter(isPlatform)).slice(0, MAX_LOCK_PLATFORMS);
}

/**
 * The platform of the environment as the server last reported it in a
 * `metadata.jupyter_repro` value (`exported.platform`), or `null`.
 */
export function reportedPlatform(metadata: unknown): string | null {
  if (typeof metadata !== 'object' || metadata === null) {
    return null;
  }
  const exported = (metadata as { exported?: unknown }).exported;
  if (typeof exported !== 'object' || exported === null) {
    return null;
  }
  const platform = (exported as { platform?: unknown }).platform;
  return isPlatform(platform) ? platform : null;
}

/**
 * The platforms of the lock choice: those `shown` as checkboxes and those
 * `checked` at first (the environment's own platform, then the setting's).
 */
export function platformChoices(
  current: string | null,
  defaults: readonly string[]
): { shown: string[]; checked: string[] } {
  const checked = unique([...(current ? [current] : []), ...defaults]);
  const shown = unique([...OFFERED_PLATFORMS, ...checked]);
  return { shown, checked };
}

/**
 * One request of a lock: embed through the open notebook, or a file
 * written beside it.
 */
export type LockStep =
  | { kind: 'metadata' }
  | { kind: 'file'; format: LockFileFormat; filename: string };

/**
 * The file name the server gives each lock format beside a notebook.
 */
export const LOCK_FILENAMES: Readonly<Record<LockFileFormat, string>> =
  Object.freeze({ 'conda-lock': 'conda-lock.yml', pixi: 'pixi.lock' });

/**
 * The requests a lock target takes, in order.
 */
export function lockSteps(target: LockTarget): LockStep[] {
  const steps: LockStep[] = [];
  const [first, second] = target.split('+');
  for (const part of [first, second]) {
    if (part === 'metadata') {
      steps.push({ kind: 'metadata' });
    } else if (part === 'conda-lock' || part === 'pixi') {
      steps.push({
        kind: 'file',
        format: part,
        filename: LOCK_FILENAMES[part]
      });
    }
  }
  return steps;
}

/**
 * `Locking for 4 platforms…`.
 */
export function lockingText(count: number): string {
  return `Locking for ${count} platform${count === 1 ? '' : 's'}…`;
}

/**
 * One line saying what a lock covered: `Locked for linux-64 (12 packages)
 * and win-64 (12 packages).`
 */
export function lockedText(summary: ILockSummary): string {
  if (summary.platforms.length === 0) {
    return 'No platform could be locked.';
  }
  const parts = summary.platforms.map(platform => {
    const count = summary.packages?.[platform];
    return typeof count === 'number'
      ? `${platform} (${count} package${count === 1 ? '' : 's'})`
      : platform;
  });
  const list =
    parts.length === 1
      ? parts[0]
      : `${parts.slice(0, -1).join(', ')} and ${parts[parts.length - 1]}`;
  return `Locked for ${list}.`;
}

function unique(values: readonly string[]): string[] {
  return values.filter((value, index) => values.indexOf(value) === index);
}
