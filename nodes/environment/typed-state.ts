/**
 * Checkpoint state of the vector environments: named typed arrays (the copies' state) and named groups of
 * plain numbers (metric counters), saved as copies and loaded back in place with checks. A saved state
 * that is missing a field, holds it with another element type or another length is refused with a
 * NodeError naming the node and the field, before anything is overwritten (a wrong length names the
 * parameter that sizes the arrays as the error's field, the one the canvas focuses, and the saved field in
 * its message).
 *
 * The node's own random stream is not kept here: the runtime saves and restores `ctx.rng` with every
 * checkpoint (runtime/run.ts), before it calls `loadState`.
 */
import {
  type JsonValue,
  NodeError,
  type NodeInstance,
  type NodeState,
} from '../../src-main/engine/node-api.ts';

export type StateArray = NonNullable<NodeState['arrays']>[string];

export interface TypedStateSpec {
  /** Live arrays by the name they are saved under; loading writes into them, so their size is fixed. */
  arrays?: Record<string, StateArray>;
  /** Live groups of numbers (counters, last metric values) by group name; loading assigns into them. */
  numbers?: Record<string, Record<string, number>>;
  /** The parameter that sets the arrays' lengths: the error's field when a saved length differs. */
  sizedBy?: string;
  /** Rebuilds what derives from the restored state (e.g. a cached observation buffer). */
  restored?: () => void;
}

const kindName = (array: ArrayLike<number>): string =>
  array instanceof Float32Array
    ? 'float32'
    : array instanceof Float64Array
      ? 'float64'
      : array instanceof Int32Array
        ? 'int32'
        : array instanceof Uint8Array
          ? 'uint8'
          : 'unknown';

/** Copies of the spec's arrays and numbers, safe to keep while the environment steps on. */
export function saveTypedState(spec: TypedStateSpec): NodeState {
  const state: NodeState = {};
  if (spec.arrays) {
    state.arrays = Object.fromEntries(Object.entries(spec.arrays).map(([name, a]) => [name, a.slice()]));
  }
  if (spec.numbers) {
    const json: Record<string, JsonValue> = {};
    for (const [group, values] of Object.entries(spec.numbers)) json[group] = { ...values };
    state.json = json;
  }
  return state;
}

/** Checks every field of `saved` against the spec, then writes them into the live arrays and numbers. */
export function loadTypedState(nodeId: string, saved: NodeState, spec: TypedStateSpec): void {
  const arrays = Object.entries(spec.arrays ?? {}).map(([name, target]) => {
    const source: ArrayLike<number> | undefined = saved.arrays?.[name];
    const kind = kindName(target);
    if (!source) {
      throw new NodeError(nodeId, `saved state has no '${name}' (${kind}, ${target.length} values)`, name);
    }
    if (kindName(source) !== kind) {
      throw new NodeError(
        nodeId,
        `saved state '${name}' holds ${kindName(source)} values, expected ${kind}`,
        name,
      );
    }
    if (source.length !== target.length) {
      throw new NodeError(
        nodeId,
        `saved state '${name}' holds ${source.length} values, expected ${target.length}`,
        spec.sizedBy ?? name,
      );
    }
    return [target, source as StateArray] as const;
  });
  const json = saved.json;
  const numbers = Object.entries(spec.numbers ?? {}).map(([group, target]) => {
    const source = json && typeof json === 'object' && !Array.isArray(json) ? json[group] : undefined;
    const values: Record<string, number> = {};
    for (const key of Object.keys(target)) {
      const value = source && typeof source === 'object' && !Array.isArray(source) ? source[key] : undefined;
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        throw new NodeError(nodeId, `saved state has no finite number '${group}.${key}'`, `${group}.${key}`);
      }
      values[key] = value;
    }
    return [target, values] as const;
  });
  for (const [target, source] of arrays) target.set(source);
  for (const [target, values] of numbers) Object.assign(target, values);
  spec.restored?.();
}

/** `saveState` and `loadState` of a node whose checkpoint state is exactly `spec`. */
export function typedStateHooks(
  nodeId: string,
  spec: TypedStateSpec,
): Required<Pick<NodeInstance, 'saveState' | 'loadState'>> {
  return {
    saveState: () => saveTypedState(spec),
    loadState: (saved) => loadTypedState(nodeId, saved, spec),
  };
}

/**
 * A share (e.g. of decisions that took the optimal action) over the events since the last `drain`, which
 * repeats the last share while no event came. Its numbers are live, for a checkpoint's `numbers`.
 */
export class ShareTally {
  readonly numbers = { events: 0, hits: 0, last: 0 };

  count(hit: boolean): void {
    this.numbers.events += 1;
    if (hit) this.numbers.hits += 1;
  }

  drain(): number {
    const n = this.numbers;
    if (n.events > 0) n.last = n.hits / n.events;
    n.events = 0;
    n.hits = 0;
    return n.last;
  }
}
