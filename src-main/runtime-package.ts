/**
 * The public runtime package, `import { ... } from 'agent-rl-studio'`: the engine (graph format, compiler,
 * run loop), the node library, and the few helpers that exported graph code uses to state a graph in
 * TypeScript and train it exactly as the app does.
 */
import { parseArgs } from 'node:util';
import { nodeLibrary } from '../nodes/index.ts';
import type { MetricsRecord, RunEvent } from './engine/events.ts';
import {
  BACKEND_NAMES,
  type BackendName,
  DEFAULT_RUN_SETTINGS,
  GRAPH_FORMAT,
  GRAPH_VERSION,
  type GraphEdge,
  type GraphFile,
  type GraphNode,
  type RunSettings,
} from './engine/graph/types.ts';

export { createRegistry, nodeLibrary } from '../nodes/index.ts';
export { compileGraph, type Plan, type PlanNode } from './engine/compiler.ts';
export { type Diagnostic, formatDiagnostic, GraphError, hasErrors } from './engine/diagnostics.ts';
export type { MetricsRecord, RunEvent, RunStatus } from './engine/events.ts';
export { parseGraphText, parseGraphValue } from './engine/graph/parse.ts';
export {
  type BackendName,
  DEFAULT_RUN_SETTINGS,
  GRAPH_FORMAT,
  GRAPH_VERSION,
  type GraphEdge,
  type GraphFile,
  type GraphNode,
  type RunSettings,
} from './engine/graph/types.ts';
export { type AnyNodeDefinition, defineNode, type NodeDefinition } from './engine/node-api.ts';
export { buildCatalog, type Catalog, NodeRegistry } from './engine/registry.ts';
export { RunControl } from './engine/runtime/control.ts';
export { executeRun, type RunOptions, type RunResult } from './engine/runtime/run.ts';

/** How one node is stated in code: its id (RNG streams and metric names derive from it), label, params. */
export interface NodeSpec {
  id: string;
  label?: string;
  /** Version of the node type the params are written for; older params are migrated by the compiler. */
  version?: number;
  params?: Record<string, unknown>;
}

/** One node of a graph. `version` defaults to the shipped node library's current version of `type`. */
export function node(type: string, spec: NodeSpec): GraphNode {
  const version = spec.version ?? nodeLibrary.find((d) => d.type === type)?.version ?? 1;
  const built: GraphNode = {
    id: spec.id,
    type,
    typeVersion: version,
    params: { ...(spec.params ?? {}) },
    position: { x: 0, y: 0 },
  };
  if (spec.label !== undefined) built.label = spec.label;
  return built;
}

/** A wire from an output port of one node to an input port of another. */
export function wire(from: GraphNode, fromPort: string, to: GraphNode, toPort: string): GraphEdge {
  return { from: { node: from.id, port: fromPort }, to: { node: to.id, port: toPort } };
}

export interface GraphSpec {
  name: string;
  seed: number;
  run?: Partial<RunSettings>;
  nodes: GraphNode[];
  edges: GraphEdge[];
}

/** A graph file, as the app saves it, from nodes and wires stated in code. */
export function graph(spec: GraphSpec): GraphFile {
  return {
    format: GRAPH_FORMAT,
    version: GRAPH_VERSION,
    name: spec.name,
    seed: spec.seed,
    run: { ...DEFAULT_RUN_SETTINGS, ...spec.run },
    nodes: spec.nodes,
    edges: spec.edges,
  };
}

const BACKENDS: readonly BackendName[] = BACKEND_NAMES;

export interface RunArgs {
  runDir: string;
  iterations?: number;
  seed?: number;
  backend?: BackendName;
  /** Headless: a node's pause request (a safety finding) stops the run with a checkpoint. */
  onPauseRequest: 'stop';
}

/**
 * Command-line overrides of a graph's run settings: `[--out DIR] [--iterations N] [--seed N]
 * [--backend auto|tensorflow|wasm|cpu]`. Throws with a message naming the flag on a bad value.
 */
export function readRunArgs(argv: string[], defaults: { runDir: string }): RunArgs {
  const { values } = parseArgs({
    args: argv,
    options: {
      out: { type: 'string' },
      iterations: { type: 'string' },
      seed: { type: 'string' },
      backend: { type: 'string' },
    },
  });
  const whole = (flag: string, text: string | undefined, min: number): number | undefined => {
    if (text === undefined) return undefined;
    const n = Number(text);
    if (!Number.isInteger(n) || n < min)
      throw new Error(`--${flag} must be a whole number >= ${min} (got '${text}')`);
    return n;
  };
  const backend = values.backend as BackendName | undefined;
  if (backend !== undefined && !BACKENDS.includes(backend)) {
    throw new Error(`--backend must be one of ${BACKENDS.join(', ')} (got '${backend}')`);
  }
  return {
    runDir: values.out ?? defaults.runDir,
    iterations: whole('iterations', values.iterations, 1),
    seed: whole('seed', values.seed, 0),
    backend,
    onPauseRequest: 'stop',
  };
}

/** A run-event listener that prints one progress line per iteration, warnings and errors to stderr. */
export function printProgress(event: RunEvent): void {
  const out = process.stderr;
  if (event.type === 'metrics') out.write(`${describeIteration(event.record)}\n`);
  else if (event.type === 'log') out.write(`${event.level}: ${event.message}\n`);
  else if (event.type === 'error') out.write(`error: ${event.message}\n`);
  else if (event.type === 'checkpoint')
    out.write(`checkpoint at iteration ${event.iteration}: ${event.path}\n`);
}

function describeIteration(record: MetricsRecord): string {
  const ret = Object.entries(record.metrics).find(([k]) => k.endsWith('/episode_return_mean'))?.[1];
  return `iteration ${record.iteration + 1}  ${record.envSteps} env steps  ${record.seconds.toFixed(1)} s${
    ret === undefined ? '' : `  return ${ret.toFixed(1)}`
  }`;
}
