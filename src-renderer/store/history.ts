/**
 * Undo/redo of graph edits: snapshots of immutable graphs (edits share unchanged parts, so a snapshot
 * costs little). Edits with the same `mergeKey` in quick succession (typing in one field, nudging with
 * arrow keys) merge into one step, as in every editor people know.
 */
import type { GraphFile } from '../../src-main/api/studio-api.ts';

export interface History {
  past: GraphFile[];
  present: GraphFile;
  future: GraphFile[];
  /** The last edit's merge key and time. */
  lastKey?: string;
  lastAt: number;
}

export const HISTORY_LIMIT = 200;
export const MERGE_WINDOW_MS = 1000;

export const startHistory = (graph: GraphFile): History => ({
  past: [],
  present: graph,
  future: [],
  lastAt: 0,
});

export function commit(history: History, next: GraphFile, mergeKey?: string, now = Date.now()): History {
  if (next === history.present) return history;
  const merge =
    mergeKey !== undefined &&
    mergeKey === history.lastKey &&
    now - history.lastAt < MERGE_WINDOW_MS &&
    history.past.length > 0;
  const past = merge ? history.past : [...history.past, history.present].slice(-HISTORY_LIMIT);
  return { past, present: next, future: [], lastKey: mergeKey, lastAt: now };
}

export const canUndo = (history: History): boolean => history.past.length > 0;
export const canRedo = (history: History): boolean => history.future.length > 0;

export function undo(history: History): History {
  if (history.past.length === 0) return history;
  const previous = history.past[history.past.length - 1];
  return {
    past: history.past.slice(0, -1),
    present: previous,
    future: [history.present, ...history.future],
    lastAt: 0,
  };
}

export function redo(history: History): History {
  if (history.future.length === 0) return history;
  const [next, ...future] = history.future;
  return { past: [...history.past, history.present], present: next, future, lastAt: 0 };
}
