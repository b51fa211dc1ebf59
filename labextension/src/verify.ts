import { JSONObject } from '@lumino/coreutils';

import {
  IJob,
  IVerifiedRecord,
  IVerifyCellProgress,
  IVerifyReport
} from './tokens';

/**
 * The key of a verification record in `metadata.jupyter_repro`.
 */
export const VERIFIED_KEY = 'verified';

/**
 * The attribute (`data-repro-verify`) a notebook cell carries while and
 * after it was verified: its status.
 */
export const CELL_MARK = 'reproVerify';

/**
 * Every cell's state as far as known: the report's once the job succeeded,
 * else the job's progress.
 */
export function cellStates(job: IJob<IVerifyReport>): IVerifyCellProgress[] {
  if (job.state === 'succeeded' && Array.isArray(job.result?.cells)) {
    return job.result.cells.map(cell => ({
      index: cell.index,
      id: cell.id ?? null,
      status: cell.status
    }));
  }
  return job.progress.cells ?? [];
}

/**
 * The index of a verified cell among `ids` (the notebook's cell ids, in
 * order): by its id when it has one found there, else by its index; -1
 * when neither fits (the notebook changed since).
 */
export function findCellIndex(
  ids: readonly (string | null | undefined)[],
  cell: { id?: string | null; index: number }
): number {
  if (cell.id) {
    const byId = ids.indexOf(cell.id);
    if (byId >= 0) {
      return byId;
    }
  }
  return cell.index >= 0 && cell.index < ids.length ? cell.index : -1;
}

/**
 * The notebook's `metadata.jupyter_repro` with `record` as its `verified`
 * value, everything else kept.
 */
export function withVerified(
  existing: unknown,
  record: IVerifiedRecord
): JSONObject {
  const base =
    typeof existing === 'object' &&
    existing !== null &&
    !Array.isArray(existing)
      ? (existing as JSONObject)
      : {};
  return { ...base, [VERIFIED_KEY]: record as unknown as JSONObject };
}

/**
 * Something with a DOM node per cell, in notebook order, and each cell's id:
 * what `CellMarks` needs of a notebook.
 */
export interface IMarkableNotebook {
  /**
   * The nodes of the cells, in order.
   */
  readonly nodes: readonly HTMLElement[];

  /**
   * The ids of the cells, in order.
   */
  readonly ids: readonly (string | null | undefined)[];
}

/**
 * The statuses of a verification shown on the notebook's own cells (as
 * `data-repro-verify`, colored by the stylesheet), cleared on demand.
 */
export class CellMarks {
  /**
   * Mark the cells of `notebook` with `cells`' statuses; cells no longer
   * reported lose their mark.
   */
  show(
    notebook: IMarkableNotebook,
    cells: readonly IVerifyCellProgress[]
  ): void {
    const marked = new Set<HTMLElement>();
    for (const cell of cells) {
      const index = findCellIndex(notebook.ids, cell);
      const node = index >= 0 ? notebook.nodes[index] : undefined;
      if (!node) {
        continue;
      }
      if (node.dataset[CELL_MARK] !== cell.status) {
        node.dataset[CELL_MARK] = cell.status;
      }
      marked.add(node);
    }
    for (const node of this._marked) {
      if (!marked.has(node)) {
        delete node.dataset[CELL_MARK];
      }
    }
    this._marked = marked;
  }

  /**
   * Remove every mark.
   */
  clear(): void {
    for (const node of this._marked) {
      delete node.dataset[CELL_MARK];
    }
    this._marked = new Set();
  }

  private _marked = new Set<HTMLElement>();
}

/**
 * A cell as the notebook file has it: its type and source (nbformat's
 * multi-line string: a string or a list of lines).
 */
export interface ISavedCell {
  cell_type?: unknown;
  source?: unknown;
}

/**
 * Whether the open notebook's cells (`[type, source]`, in order) differ in
 * their code or text from those saved (`saved`, the file's cells); outputs
 * and metadata do not count: verification runs the saved code.
 */
export function sourcesDiffer(
  saved: readonly ISavedCell[],
  open: readonly (readonly [string, string])[]
): boolean {
  if (saved.length !== open.length) {
    return true;
  }
  return saved.some((cell, i) => {
    const source = Array.isArray(cell.source)
      ? cell.source.join('')
      : String(cell.source ?? '');
    return cell.cell_type !== open[i][0] || source !== open[i][1];
  });
}
