/**
 * Graph file -> React Flow nodes and edges. Unchanged graph nodes keep their flow node object (and so
 * their memoised component), which is what keeps a 500-node canvas fast.
 */
import type { Edge } from '@xyflow/react';
import type { CatalogNode, Diagnostic, GraphFile } from '../../src-main/api/studio-api.ts';
import type { PortTypeInfo } from '../../src-main/engine/ports.ts';
import { edgeId, framesOf } from '../store/graph-model.ts';
import type { FrameFlowNode } from './FrameNode.tsx';
import type { StudioFlowNode } from './StudioNode.tsx';

export type FlowNode = StudioFlowNode | FrameFlowNode;

const NO_DIAGNOSTICS: readonly Diagnostic[] = [];

/** Diagnostics by node, reusing the previous arrays where nothing changed (so nodes do not re-render). */
export function diagnosticsByNode(
  diagnostics: readonly Diagnostic[],
  previous: ReadonlyMap<string, readonly Diagnostic[]>,
): Map<string, readonly Diagnostic[]> {
  const fresh = new Map<string, Diagnostic[]>();
  for (const d of diagnostics) {
    if (!d.nodeId) continue;
    fresh.set(d.nodeId, [...(fresh.get(d.nodeId) ?? []), d]);
  }
  const result = new Map<string, readonly Diagnostic[]>();
  for (const [id, list] of fresh) {
    const old = previous.get(id);
    result.set(id, old && JSON.stringify(old) === JSON.stringify(list) ? old : list);
  }
  return result;
}

export function buildFlowNodes(
  graph: GraphFile,
  types: ReadonlyMap<string, CatalogNode>,
  diagnostics: ReadonlyMap<string, readonly Diagnostic[]>,
  previous: readonly FlowNode[],
  select?: ReadonlySet<string>,
): FlowNode[] {
  const before = new Map(previous.map((n) => [n.id, n]));
  const result: FlowNode[] = [];
  for (const frame of framesOf(graph)) {
    const old = before.get(frame.id) as FrameFlowNode | undefined;
    const selected = select ? select.has(frame.id) : (old?.selected ?? false);
    if (
      old &&
      old.data.title === frame.title &&
      old.position.x === frame.position.x &&
      old.position.y === frame.position.y &&
      old.width === frame.size.width &&
      old.height === frame.size.height &&
      old.selected === selected
    ) {
      result.push(old);
      continue;
    }
    result.push({
      id: frame.id,
      type: 'frame',
      position: { ...frame.position },
      width: frame.size.width,
      height: frame.size.height,
      zIndex: -1,
      selected,
      data: { title: frame.title },
      ariaLabel: `Frame ${frame.title}`,
    });
  }
  for (const node of graph.nodes) {
    const old = before.get(node.id) as StudioFlowNode | undefined;
    const type = types.get(node.type);
    const nodeDiagnostics = diagnostics.get(node.id) ?? NO_DIAGNOSTICS;
    const selected = select ? select.has(node.id) : (old?.selected ?? false);
    if (
      old &&
      old.data.node === node &&
      old.data.type === type &&
      old.data.diagnostics === nodeDiagnostics &&
      old.selected === selected
    ) {
      result.push(old);
      continue;
    }
    result.push({
      ...(old ?? {}),
      id: node.id,
      type: 'studio',
      position: { ...node.position },
      selected,
      data: { node, type, diagnostics: nodeDiagnostics },
      ariaLabel: `Node ${node.label ?? node.id} (${node.type})`,
    } as StudioFlowNode);
  }
  return result;
}

export function buildFlowEdges(
  graph: GraphFile,
  types: ReadonlyMap<string, CatalogNode>,
  portTypes: Record<string, PortTypeInfo>,
  diagnostics: readonly Diagnostic[],
  previous: readonly Edge[],
): Edge[] {
  const before = new Map(previous.map((e) => [e.id, e]));
  const typeOfNode = new Map(graph.nodes.map((n) => [n.id, types.get(n.type)]));
  const badEdges = new Map<number, string>();
  for (const d of diagnostics)
    if (d.edge !== undefined && d.severity === 'error') badEdges.set(d.edge, d.message);
  return graph.edges.map((edge, index) => {
    const id = edgeId(edge);
    const output = typeOfNode.get(edge.from.node)?.outputs.find((p) => p.name === edge.from.port);
    const color = portTypes[output?.type ?? '']?.color ?? '#868e96';
    const problem = badEdges.get(index);
    const old = before.get(id);
    const className = problem ? 'wire wire-error' : 'wire';
    if (old && old.className === className && old.data?.problem === problem && old.data?.color === color)
      return old;
    return {
      id,
      source: edge.from.node,
      sourceHandle: edge.from.port,
      target: edge.to.node,
      targetHandle: edge.to.port,
      className,
      selected: old?.selected ?? false,
      style: { stroke: problem ? '#e03131' : color },
      data: { problem, color },
      ariaLabel: `Wire from ${edge.from.node}.${edge.from.port} to ${edge.to.node}.${edge.to.port}${problem ? `: ${problem}` : ''}`,
    };
  });
}
