/**
 * The contract between the engine and a node type. One file under nodes/<family>/ exports one
 * `defineNode({...})`: its catalog entry (ports, parameter schema, doc, version) and its implementation.
 */
import type * as TF from '@tensorflow/tfjs';
import type { z } from 'zod';
import type { Finding, TrajectorySample } from './events.ts';
import type { PortSpec } from './ports.ts';
import type { Rng } from './rng.ts';

export type Tf = typeof TF;

export type Family =
  | 'environment'
  | 'agent'
  | 'rollout'
  | 'credit'
  | 'value'
  | 'world'
  | 'safety'
  | 'trainer'
  | 'metrics';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** What a node keeps across a checkpoint: small JSON plus named numeric arrays (weights, env states). */
export interface NodeState {
  json?: JsonValue;
  arrays?: Record<string, Float32Array | Float64Array | Int32Array | Uint8Array>;
}

export interface RunInfo {
  seed: number;
  totalIterations: number;
  backend: string;
}

export interface ControlPoint {
  /** Cooperative pause point: returns at once while running, waits while paused, throws on stop. */
  point(): Promise<void>;
}

export type LogLevel = 'info' | 'warn' | 'error';

export interface NodeContext {
  nodeId: string;
  /** The node's label, or its id. */
  label: string;
  tf: Tf;
  /** This node's own random stream; the runtime saves and restores its state with checkpoints. */
  rng: Rng;
  /** Component inputs by port name (an array for `multiple` ports), built before this node. */
  inputs: Record<string, unknown>;
  run: RunInfo;
  control: ControlPoint;
  log(level: LogLevel, message: string): void;
}

export interface IterationInfo {
  /** 0-based index of the iteration being run. */
  iteration: number;
  totalIterations: number;
}

export interface NodeStepResult {
  /** Stream outputs by port name. */
  outputs?: Record<string, unknown>;
  /** Scalars, published as "<nodeId>/<name>". */
  metrics?: Record<string, number>;
  /** Real environment steps taken this iteration (summed into the run's envSteps). */
  envSteps?: number;
  /** A few episodes with their credit, for the trajectory viewer (keep it to a handful per iteration). */
  samples?: TrajectorySample[];
  /** Findings to show the user; `iteration` and `nodeId` are filled in by the runtime when omitted. */
  findings?: Array<Omit<Finding, 'nodeId' | 'iteration'> & Partial<Pick<Finding, 'nodeId' | 'iteration'>>>;
  /** Pause the run after this iteration (a safety gate or monitor asking a person to look). */
  pause?: { reason: string; field?: string };
}

export interface NodeInstance {
  /** Component outputs by port name, available once `create` returns. */
  components?: Record<string, unknown>;
  /** Per-iteration work on stream inputs. Nodes without it only build components. */
  step?(streams: Record<string, unknown>, info: IterationInfo): Promise<NodeStepResult>;
  saveState?(): Promise<NodeState> | NodeState;
  loadState?(state: NodeState): Promise<void> | void;
  /** Free tensors. Called once when the run ends. */
  dispose?(): void;
}

export type ParamMigration = (params: Record<string, unknown>) => Record<string, unknown>;

export interface NodeDefinition<S extends z.ZodObject = z.ZodObject> {
  /** Stable id, `<family>.<name>`, e.g. `credit.gae`. */
  type: string;
  family: Family;
  title: string;
  /** One line for the palette. */
  summary: string;
  /** Markdown: what it does, the math, the paper. */
  doc: string;
  /** Current params version; a change of params bumps it and adds a migration. */
  version: number;
  /** `migrations[v]` turns params of version v into version v+1. */
  migrations?: Record<number, ParamMigration>;
  inputs: PortSpec[];
  outputs: PortSpec[];
  params: S;
  /** Parameters shown on the node's face in the canvas. */
  keyParams?: string[];
  /** A sink the schedule is pulled from (trainers). A graph needs at least one. */
  trains?: boolean;
  create(params: z.infer<S>, ctx: NodeContext): NodeInstance | Promise<NodeInstance>;
}

// biome-ignore lint/suspicious/noExplicitAny: a registry holds definitions of every parameter shape.
export type AnyNodeDefinition = NodeDefinition<any>;

export function defineNode<S extends z.ZodObject>(definition: NodeDefinition<S>): NodeDefinition<S> {
  return definition;
}

/** A NaN or infinity where a number must be finite: the runtime pauses the run and names the node. */
export class NonFiniteError extends Error {
  constructor(
    readonly nodeId: string,
    readonly field: string,
    detail = '',
  ) {
    super(`${nodeId}.${field} is not finite${detail ? ` (${detail})` : ''}`);
    this.name = 'NonFiniteError';
  }
}

/** A failure inside a node, carrying the node (and field) to show the user. */
export class NodeError extends Error {
  constructor(
    readonly nodeId: string,
    message: string,
    readonly field?: string,
  ) {
    super(`${nodeId}${field ? `.${field}` : ''}: ${message}`);
    this.name = 'NodeError';
  }
}
