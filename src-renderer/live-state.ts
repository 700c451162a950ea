/**
 * The seam between the run panels and the canvas: the run side publishes each node's live state (badge
 * and headline metric) through LiveNodeStateContext, and asks the canvas to show a node (a clicked
 * finding or log line) through `focusNode`, which the canvas listens for.
 */
import { createContext } from 'react';

export interface LiveNodeState {
  status: 'running' | 'paused' | 'warning' | 'error';
  /** The node's headline metric, e.g. {name: 'episode_return_mean', value: 212.4}. */
  headline?: { name: string; value: number };
  /** Why it shows a warning or an error. */
  message?: string;
}

export const LiveNodeStateContext = createContext<ReadonlyMap<string, LiveNodeState>>(new Map());

const FOCUS_EVENT = 'studio:focus-node';

/** Select and centre a node on the canvas (and open it in the inspector). */
export function focusNode(nodeId: string, field?: string): void {
  window.dispatchEvent(new CustomEvent(FOCUS_EVENT, { detail: { nodeId, field } }));
}

/** The canvas subscribes here; returns the unsubscribe function. */
export function onFocusNode(listener: (nodeId: string, field?: string) => void): () => void {
  const handler = (event: Event) => {
    const { nodeId, field } = (event as CustomEvent<{ nodeId: string; field?: string }>).detail;
    listener(nodeId, field);
  };
  window.addEventListener(FOCUS_EVENT, handler);
  return () => window.removeEventListener(FOCUS_EVENT, handler);
}
