/**
 * Pure edits of a graph file. Every edit returns a new GraphFile (unchanged parts keep their identity, so
 * the canvas re-renders only what changed) and is what the undo history records.
 */

import type { Catalog, CatalogNode, GraphFile } from '../../src-main/api/studio-api.ts';
import { wireMismatch } from '../../src-main/engine/ports.ts';

type GraphNode = GraphFile['nodes'][number];
type GraphEdge = GraphFile['edges'][number];

export type { GraphEdge, GraphNode };

export interface XY {
  x: number;
  y: number;
}

/** A frame: a titled rectangle behind nodes that organises a graph. Kept in the file as `frames`. */
export interface Frame {
  id: string;
  title: string;
  position: XY;
  size: { width: number; height: number };
  color?: string;
}

export const GRAPH_FORMAT = 'agent-rl-studio/graph' as const;

export function newGraph(name: string): GraphFile {
  return {
    format: GRAPH_FORMAT,
    version: 1,
    name,
    seed: 1,
    run: { iterations: 100, checkpointEvery: 10, backend: 'auto' },
    nodes: [],
    edges: [],
  };
}

export const framesOf = (graph: GraphFile): Frame[] =>
  Array.isArray(graph.frames) ? (graph.frames as Frame[]) : [];

export const edgeId = (edge: GraphEdge): string =>
  `${edge.from.node}:${edge.from.port}->${edge.to.node}:${edge.to.port}`;

export const catalogIndex = (catalog: Catalog): Map<string, CatalogNode> =>
  new Map(catalog.nodes.map((n) => [n.type, n]));

/** `base`, or `base_2`, `base_3`... whichever is free. Ids name metrics, so they stay readable. */
export function uniqueId(taken: ReadonlySet<string>, base: string): string {
  const clean = base.replace(/[^A-Za-z0-9_-]+/g, '_').replace(/^_+|_+$/g, '') || 'node';
  if (!taken.has(clean)) return clean;
  const stem = clean.replace(/_\d+$/, '');
  for (let i = 2; ; i++) {
    const candidate = `${stem}_${i}`;
    if (!taken.has(candidate)) return candidate;
  }
}

const takenIds = (graph: GraphFile): Set<string> =>
  new Set([...graph.nodes.map((n) => n.id), ...framesOf(graph).map((f) => f.id)]);

/** `credit.gae` -> `gae`, `agent.mlp-policy` -> `mlp-policy`. */
const idBaseOf = (type: string): string => type.slice(type.lastIndexOf('.') + 1);

export function addNode(
  graph: GraphFile,
  type: CatalogNode,
  position: XY,
): { graph: GraphFile; nodeId: string } {
  const nodeId = uniqueId(takenIds(graph), idBaseOf(type.type));
  const node: GraphNode = {
    id: nodeId,
    type: type.type,
    typeVersion: type.version,
    label: type.title,
    params: {},
    position: { x: Math.round(position.x), y: Math.round(position.y) },
  };
  return { graph: { ...graph, nodes: [...graph.nodes, node] }, nodeId };
}

export function removeElements(
  graph: GraphFile,
  ids: { nodes?: Iterable<string>; edges?: Iterable<string>; frames?: Iterable<string> },
): GraphFile {
  const nodes = new Set(ids.nodes ?? []);
  const edges = new Set(ids.edges ?? []);
  const frames = new Set(ids.frames ?? []);
  if (nodes.size + edges.size + frames.size === 0) return graph;
  const next: GraphFile = {
    ...graph,
    nodes: graph.nodes.filter((n) => !nodes.has(n.id)),
    edges: graph.edges.filter(
      (e) => !edges.has(edgeId(e)) && !nodes.has(e.from.node) && !nodes.has(e.to.node),
    ),
  };
  if (frames.size > 0) next.frames = framesOf(graph).filter((f) => !frames.has(f.id));
  return next;
}

export function moveNodes(graph: GraphFile, positions: ReadonlyMap<string, XY>): GraphFile {
  let changed = false;
  const nodes = graph.nodes.map((n) => {
    const p = positions.get(n.id);
    if (!p || (p.x === n.position.x && p.y === n.position.y)) return n;
    changed = true;
    return { ...n, position: { x: p.x, y: p.y } };
  });
  const frames = framesOf(graph).map((f) => {
    const p = positions.get(f.id);
    if (!p || (p.x === f.position.x && p.y === f.position.y)) return f;
    changed = true;
    return { ...f, position: { x: p.x, y: p.y } };
  });
  if (!changed) return graph;
  return graph.frames === undefined ? { ...graph, nodes } : { ...graph, nodes, frames };
}

export interface PortEnd {
  node: string;
  port: string;
}

export type ConnectResult = { ok: true; graph: GraphFile } | { ok: false; reason: string };

/**
 * The wire check of the canvas: the compiler's own `wireMismatch` on the catalog's port specs, plus the
 * structural rules (known ports, no self-wire). A second wire into a single input replaces the first.
 */
export function checkWire(
  graph: GraphFile,
  types: ReadonlyMap<string, CatalogNode>,
  from: PortEnd,
  to: PortEnd,
): string | null {
  const source = graph.nodes.find((n) => n.id === from.node);
  const target = graph.nodes.find((n) => n.id === to.node);
  if (!source || !target) return 'both ends of a wire must be nodes of this graph';
  if (source.id === target.id) return 'a node cannot feed itself';
  const output = types.get(source.type)?.outputs.find((p) => p.name === from.port);
  const input = types.get(target.type)?.inputs.find((p) => p.name === to.port);
  if (!output) return `'${source.label ?? source.id}' has no output '${from.port}'`;
  if (!input) return `'${target.label ?? target.id}' has no input '${to.port}'`;
  return wireMismatch(output, input);
}

export function connect(
  graph: GraphFile,
  types: ReadonlyMap<string, CatalogNode>,
  from: PortEnd,
  to: PortEnd,
): ConnectResult {
  const reason = checkWire(graph, types, from, to);
  if (reason) return { ok: false, reason };
  const target = graph.nodes.find((n) => n.id === to.node)!;
  const input = types.get(target.type)!.inputs.find((p) => p.name === to.port)!;
  const same = (e: GraphEdge) =>
    e.from.node === from.node && e.from.port === from.port && e.to.node === to.node && e.to.port === to.port;
  if (graph.edges.some(same)) return { ok: true, graph };
  const kept = input.multiple
    ? graph.edges
    : graph.edges.filter((e) => !(e.to.node === to.node && e.to.port === to.port));
  return { ok: true, graph: { ...graph, edges: [...kept, { from: { ...from }, to: { ...to } }] } };
}

/** Set `params[path]` (dotted path for nested objects); `undefined` returns the field to its default. */
export function setParam(graph: GraphFile, nodeId: string, path: string, value: unknown): GraphFile {
  return updateNode(graph, nodeId, (node) => ({
    ...node,
    params: setPath(node.params, path.split('.'), value),
  }));
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): Record<string, unknown> {
  const [head, ...rest] = path;
  const next = { ...target };
  if (rest.length === 0) {
    if (value === undefined) delete next[head];
    else next[head] = value;
    return next;
  }
  const inner = next[head];
  next[head] = setPath(
    typeof inner === 'object' && inner !== null && !Array.isArray(inner)
      ? (inner as Record<string, unknown>)
      : {},
    rest,
    value,
  );
  return next;
}

export function setLabel(graph: GraphFile, nodeId: string, label: string): GraphFile {
  return updateNode(graph, nodeId, (node) => {
    const next = { ...node };
    if (label.trim() === '') delete next.label;
    else next.label = label;
    return next;
  });
}

export function updateNode(
  graph: GraphFile,
  nodeId: string,
  change: (node: GraphNode) => GraphNode,
): GraphFile {
  return { ...graph, nodes: graph.nodes.map((n) => (n.id === nodeId ? change(n) : n)) };
}

// --- Frames ---

const FRAME_PADDING = 40;

/** A frame around the given nodes (sizes as measured on the canvas, or a typical node size). */
export function addFrame(
  graph: GraphFile,
  nodeIds: readonly string[],
  sizes: ReadonlyMap<string, { width: number; height: number }>,
  title = 'Group',
): { graph: GraphFile; frameId: string } {
  const members = graph.nodes.filter((n) => nodeIds.includes(n.id));
  const frameId = uniqueId(takenIds(graph), 'frame');
  let box = { x0: 0, y0: 0, x1: 320, y1: 200 };
  if (members.length > 0) {
    box = { x0: Infinity, y0: Infinity, x1: -Infinity, y1: -Infinity };
    for (const n of members) {
      const size = sizes.get(n.id) ?? { width: 220, height: 120 };
      box.x0 = Math.min(box.x0, n.position.x);
      box.y0 = Math.min(box.y0, n.position.y);
      box.x1 = Math.max(box.x1, n.position.x + size.width);
      box.y1 = Math.max(box.y1, n.position.y + size.height);
    }
  }
  const frame: Frame = {
    id: frameId,
    title,
    position: { x: box.x0 - FRAME_PADDING, y: box.y0 - FRAME_PADDING * 1.5 },
    size: { width: box.x1 - box.x0 + FRAME_PADDING * 2, height: box.y1 - box.y0 + FRAME_PADDING * 2.5 },
  };
  return { graph: { ...graph, frames: [...framesOf(graph), frame] }, frameId };
}

export function updateFrame(
  graph: GraphFile,
  frameId: string,
  change: Partial<Omit<Frame, 'id'>>,
): GraphFile {
  return { ...graph, frames: framesOf(graph).map((f) => (f.id === frameId ? { ...f, ...change } : f)) };
}

/** Nodes whose top-left corner lies inside the frame: they move with it. */
export function nodesInFrame(graph: GraphFile, frame: Frame): string[] {
  const { x, y } = frame.position;
  return graph.nodes
    .filter(
      (n) =>
        n.position.x >= x &&
        n.position.y >= y &&
        n.position.x <= x + frame.size.width &&
        n.position.y <= y + frame.size.height,
    )
    .map((n) => n.id);
}

// --- Copy and paste ---

/** What the clipboard holds: nodes with the wires among them, and frames. Independent of any graph. */
export interface ClipboardContent {
  kind: 'agent-rl-studio/clipboard';
  nodes: GraphNode[];
  edges: GraphEdge[];
  frames: Frame[];
}

export function copySelection(
  graph: GraphFile,
  nodeIds: Iterable<string>,
  frameIds: Iterable<string> = [],
): ClipboardContent {
  const ids = new Set(nodeIds);
  const frames = new Set(frameIds);
  return {
    kind: 'agent-rl-studio/clipboard',
    nodes: structuredClone(graph.nodes.filter((n) => ids.has(n.id))),
    edges: structuredClone(graph.edges.filter((e) => ids.has(e.from.node) && ids.has(e.to.node))),
    frames: structuredClone(framesOf(graph).filter((f) => frames.has(f.id))),
  };
}

export function isClipboardContent(value: unknown): value is ClipboardContent {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as ClipboardContent).kind === 'agent-rl-studio/clipboard' &&
    Array.isArray((value as ClipboardContent).nodes) &&
    Array.isArray((value as ClipboardContent).edges)
  );
}

/**
 * Paste into `graph`: every pasted node gets an id free in this graph (its old id when free), wires
 * follow the new ids, and everything moves by `offset`. Returns the new ids for selection.
 */
export function paste(
  graph: GraphFile,
  content: ClipboardContent,
  offset: XY,
): { graph: GraphFile; nodeIds: string[]; frameIds: string[]; idMap: Map<string, string> } {
  const taken = takenIds(graph);
  const idMap = new Map<string, string>();
  const nodes = content.nodes.map((n) => {
    const id = uniqueId(taken, n.id);
    taken.add(id);
    idMap.set(n.id, id);
    return {
      ...structuredClone(n),
      id,
      position: { x: n.position.x + offset.x, y: n.position.y + offset.y },
    };
  });
  const edges = content.edges
    .filter((e) => idMap.has(e.from.node) && idMap.has(e.to.node))
    .map((e) => ({
      ...structuredClone(e),
      from: { node: idMap.get(e.from.node)!, port: e.from.port },
      to: { node: idMap.get(e.to.node)!, port: e.to.port },
    }));
  const frames = (content.frames ?? []).map((f) => {
    const id = uniqueId(taken, f.id);
    taken.add(id);
    return {
      ...structuredClone(f),
      id,
      position: { x: f.position.x + offset.x, y: f.position.y + offset.y },
    };
  });
  const next: GraphFile = { ...graph, nodes: [...graph.nodes, ...nodes], edges: [...graph.edges, ...edges] };
  if (frames.length > 0) next.frames = [...framesOf(graph), ...frames];
  return { graph: next, nodeIds: nodes.map((n) => n.id), frameIds: frames.map((f) => f.id), idMap };
}
