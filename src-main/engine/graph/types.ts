/** The graph file, as users save it and the renderer edits it. Plain JSON; unknown fields are kept. */
export const GRAPH_FORMAT = 'agent-rl-studio/graph';
export const GRAPH_VERSION = 1;

/** Tensor backends, in the order `auto` tries them (webgpu only on a real GPU adapter). */
export const BACKEND_NAMES = ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

export interface RunSettings {
  /** Training iterations (one schedule pass each). */
  iterations: number;
  /** Write a checkpoint every N iterations (and always on stop and at the end). 0 = only then. */
  checkpointEvery: number;
  backend: BackendName;
  [extra: string]: unknown;
}

export interface GraphNode {
  id: string;
  type: string;
  typeVersion: number;
  params: Record<string, unknown>;
  position: { x: number; y: number };
  label?: string;
  [extra: string]: unknown;
}

export interface PortRef {
  node: string;
  port: string;
}

export interface GraphEdge {
  id?: string;
  from: PortRef;
  to: PortRef;
  [extra: string]: unknown;
}

export interface GraphFile {
  format: typeof GRAPH_FORMAT;
  version: number;
  name: string;
  seed: number;
  run: RunSettings;
  nodes: GraphNode[];
  edges: GraphEdge[];
  /** Template card, present on starter graphs. */
  template?: TemplateCard;
  [extra: string]: unknown;
}

export interface TemplateCard {
  title: string;
  description: string;
  expectedResult: string;
  duration: string;
  paper?: string;
  /** The card's promise as a figure: the named metric at the last iteration, within these bounds. */
  check?: { metric: string; atLeast?: number; atMost?: number };
  /** An outside service the template needs (e.g. a local LLM server); the bench lists it, not runs it. */
  requires?: string;
}

export const DEFAULT_RUN_SETTINGS: RunSettings = { iterations: 100, checkpointEvery: 10, backend: 'auto' };
