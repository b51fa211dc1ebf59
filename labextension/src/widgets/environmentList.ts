/**
 * The order and the filters of the Environments panel's list: pure
 * functions over the server's listing, so that they are tested without a DOM.
 */
import { filterWords, matchesWords, searchText } from '../model';
import { IEnvironmentSummary } from '../tokens';

/**
 * The kinds offered by the kind filter even when none is listed.
 */
export const KNOWN_KINDS: readonly string[] = ['conda', 'pixi', 'venv'];

/**
 * Which environments the kernel filter keeps.
 */
export type KernelFilter = 'any' | 'with-kernel' | 'no-kernel';

/**
 * Everything the list is filtered by.
 */
export interface IListFilter {
  /**
   * Words that must all be found in an environment's name, kind, Python
   * version, kernels or prefix (see `searchText`).
   */
  text: string;

  /**
   * The only kind kept; `''` keeps every kind.
   */
  kind: string;

  /**
   * Keep every environment, only those with a kernel, or only those
   * without one.
   */
  kernel: KernelFilter;
}

/**
 * The filter that keeps every environment.
 */
export const NO_FILTER: Readonly<IListFilter> = Object.freeze({
  text: '',
  kind: '',
  kernel: 'any'
});

// Numeric: env2 before env10. Base sensitivity: the case only breaks ties.
const COLLATOR = new Intl.Collator('en', {
  numeric: true,
  sensitivity: 'base'
});

/**
 * The list's order: the base environment first, then by name (numbers in
 * names compared as numbers, case ignored), then by prefix so that the
 * order never depends on the server's.
 */
export function compareEnvironments(
  a: IEnvironmentSummary,
  b: IEnvironmentSummary
): number {
  if (a.is_base !== b.is_base) {
    return a.is_base ? -1 : 1;
  }
  return (
    COLLATOR.compare(a.name, b.name) ||
    compareStrings(a.name, b.name) ||
    compareStrings(a.prefix, b.prefix)
  );
}

/**
 * A sorted copy of `environments` (see `compareEnvironments`).
 */
export function sortEnvironments(
  environments: readonly IEnvironmentSummary[]
): IEnvironmentSummary[] {
  return environments.slice().sort(compareEnvironments);
}

/**
 * The choices of the kind filter: the known kinds, then any other kind
 * listed, in alphabetical order.
 */
export function kindChoices(
  environments: readonly IEnvironmentSummary[]
): string[] {
  const others = new Set<string>();
  for (const env of environments) {
    if (!KNOWN_KINDS.includes(env.kind)) {
      others.add(env.kind);
    }
  }
  return [...KNOWN_KINDS, ...Array.from(others).sort(compareStrings)];
}

/**
 * Whether `env` passes the kind and kernel filters; the text filter is
 * matched separately against precomputed texts (see `matchesFilter`).
 */
export function matchesKindAndKernel(
  env: IEnvironmentSummary,
  filter: IListFilter
): boolean {
  if (filter.kind && env.kind !== filter.kind) {
    return false;
  }
  switch (filter.kernel) {
    case 'with-kernel':
      return env.kernels.length > 0;
    case 'no-kernel':
      return env.kernels.length === 0;
    default:
      return true;
  }
}

/**
 * Whether `env` passes every part of `filter`.
 */
export function matchesFilter(
  env: IEnvironmentSummary,
  filter: IListFilter
): boolean {
  return (
    matchesKindAndKernel(env, filter) &&
    matchesWords(searchText(env), filterWords(filter.text))
  );
}

/**
 * Whether `filter` keeps every environment.
 */
export function isEmptyFilter(filter: IListFilter): boolean {
  return (
    filterWords(filter.text).length === 0 &&
    !filter.kind &&
    filter.kernel === 'any'
  );
}

/**
 * The environments `filter` keeps, in list order.
 */
export function visibleEnvironments(
  environments: readonly IEnvironmentSummary[],
  filter: IListFilter
): IEnvironmentSummary[] {
  return sortEnvironments(environments).filter(env =>
    matchesFilter(env, filter)
  );
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
