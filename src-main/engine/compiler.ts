/**
 * Graph -> plan, or diagnostics placed on the node, port or parameter at fault. Never throws on user
 * input: every check reports and carries on, so the user sees all problems at once.
 */
import type { Diagnostic } from './diagnostics.ts';
import { hasErrors } from './diagnostics.ts';
import { parseGraphValue } from './graph/parse.ts';
import type { GraphFile } from './graph/types.ts';
import type { AnyNodeDefinition } from './node-api.ts';
import { PORT_TYPES, type PortSpec, wireMismatch } from './ports.ts';
import type { NodeRegistry } from './registry.ts';

export interface PlanWire {
  node: string;
  port: string;
}

export interface PlanNode {
  id: string;
  label: string;
  definition: AnyNodeDefinition;
  /** Parameters after migration, defaults and validation. */
  params: Record<string, unknown>;
  /** For each input port, the outputs wired into it, in edge order. */
  inputs: Record<string, PlanWire[]>;
}

export interface Plan {
  graph: GraphFile;
  /** Every node, in an order where each comes after everything wired into it. */
  build: PlanNode[];
  /** Node ids whose `step` runs each iteration, in dependency order (pulled from the trainers). */
  schedule: string[];
}

export interface CompileResult {
  plan?: Plan;
  diagnostics: Diagnostic[];
}

const MAX_ISSUES_PER_NODE = 20;

export function compileGraph(input: unknown, registry: NodeRegistry): CompileResult {
  const parsed = parseGraphValue(input);
  if (!parsed.graph) return { diagnostics: parsed.diagnostics };
  const graph = parsed.graph;
  const diagnostics: Diagnostic[] = [];
  const error = (d: Omit<Diagnostic, 'severity'>) => diagnostics.push({ severity: 'error', ...d });
  const warn = (d: Omit<Diagnostic, 'severity'>) => diagnostics.push({ severity: 'warning', ...d });

  // Nodes: ids, types, versions, parameters.
  const nodes = new Map<string, PlanNode>();
  // Ids seen so far, valid or not: a duplicate of a node that failed its own checks is still a duplicate.
  const seen = new Set<string>();
  for (const node of graph.nodes) {
    if (seen.has(node.id)) {
      error({ nodeId: node.id, code: 'duplicate-id', message: `Two nodes share the id '${node.id}'.` });
      continue;
    }
    seen.add(node.id);
    const definition = registry.get(node.type);
    if (!definition) {
      error({
        nodeId: node.id,
        code: 'unknown-node-type',
        message: `Unknown node type '${node.type}'. It may come from a newer app or a missing plugin.`,
      });
      continue;
    }
    const params = checkParams(node.id, node.typeVersion, node.params, definition, error, warn);
    if (params) {
      nodes.set(node.id, { id: node.id, label: node.label || node.id, definition, params, inputs: {} });
    }
  }

  // Edges: endpoints, port types, cardinality.
  const portOf = (nodeId: string, port: string, side: 'inputs' | 'outputs'): PortSpec | undefined =>
    nodes.get(nodeId)?.definition[side].find((p) => p.name === port);
  const declared = seen;
  // Inputs wired from a node that failed its own checks: not judged, and not reported as unconnected.
  const unjudged = new Set<string>();
  const portKey = (nodeId: string, port: string) => JSON.stringify([nodeId, port]);
  graph.edges.forEach((edge, index) => {
    const { from, to } = edge;
    const where = { edge: index, code: 'bad-edge' };
    if (!declared.has(from.node) || !declared.has(to.node)) {
      const missing = declared.has(from.node) ? to.node : from.node;
      const present = declared.has(from.node) ? from.node : declared.has(to.node) ? to.node : undefined;
      error({
        ...where,
        nodeId: present,
        message: `A wire connects to a node that does not exist ('${missing}').`,
      });
      return;
    }
    if (!nodes.has(from.node) || !nodes.has(to.node)) {
      unjudged.add(portKey(to.node, to.port)); // the node itself is already reported
      return;
    }
    const out = portOf(from.node, from.port, 'outputs');
    const inp = portOf(to.node, to.port, 'inputs');
    if (!out) {
      error({
        ...where,
        nodeId: from.node,
        port: from.port,
        message: `Node has no output port '${from.port}'.`,
      });
      return;
    }
    if (!inp) {
      error({ ...where, nodeId: to.node, port: to.port, message: `Node has no input port '${to.port}'.` });
      return;
    }
    const mismatch = wireMismatch(out, inp);
    if (mismatch) {
      error({
        ...where,
        code: 'incompatible-wire',
        nodeId: to.node,
        port: to.port,
        message: `Incompatible wire from ${from.node}.${from.port} (${out.type}) to ${to.node}.${to.port} (${inp.type}): ${mismatch}.`,
      });
      return;
    }
    const target = nodes.get(to.node)!;
    const wires = target.inputs[to.port] ?? [];
    if (wires.length >= 1 && !inp.multiple) {
      error({
        ...where,
        code: 'too-many-wires',
        nodeId: to.node,
        port: to.port,
        message: `Input '${to.port}' takes one wire; remove the extra wire from ${from.node}.${from.port}.`,
      });
      return;
    }
    // Appended in place: copying the array per wire is quadratic for a `multiple` port with many wires.
    wires.push({ node: from.node, port: from.port });
    target.inputs[to.port] = wires;
  });

  // Required inputs.
  for (const node of nodes.values()) {
    for (const port of node.definition.inputs) {
      if (
        (port.required ?? true) &&
        !node.inputs[port.name]?.length &&
        !unjudged.has(portKey(node.id, port.name))
      ) {
        error({
          nodeId: node.id,
          port: port.name,
          code: 'missing-input',
          message: `Required input '${port.name}' (${port.type}) is not connected.`,
        });
      }
    }
  }

  const order = topologicalOrder(nodes);
  for (const id of order.cyclic) {
    error({
      nodeId: id,
      code: 'cycle',
      message: 'This node is part of a cycle: data would have to exist before it is made. Break the loop.',
    });
  }

  const sinks = [...nodes.values()].filter((n) => n.definition.trains);
  if (sinks.length === 0 && graph.nodes.length > 0 && !hasErrors(diagnostics)) {
    error({
      code: 'nothing-to-train',
      message: 'The graph has nothing to train: add a trainer node (e.g. PPO).',
    });
  }
  if (graph.nodes.length === 0) {
    error({
      code: 'nothing-to-train',
      message: 'The graph is empty: add an environment, an agent and a trainer.',
    });
  }

  // Judged on the wires as drawn, so that a trainer with a problem of its own does not make everything
  // upstream of it look unused. With no errors, these are exactly the wires of the plan.
  const trainers = graph.nodes.filter((n) => registry.get(n.type)?.trains).map((n) => n.id);
  const needed = upstreamOf(trainers, graph.edges);
  for (const node of nodes.values()) {
    if (!needed.has(node.id)) {
      warn({
        nodeId: node.id,
        code: 'unused-node',
        message: 'This node does not feed any trainer; it will not run.',
      });
    }
  }

  if (hasErrors(diagnostics)) return { diagnostics };
  const build = order.sorted.filter((id) => needed.has(id)).map((id) => nodes.get(id)!);
  const schedule = build.filter((n) => hasStreamPort(n.definition)).map((n) => n.id);
  return { plan: { graph, build, schedule }, diagnostics };
}

function checkParams(
  nodeId: string,
  typeVersion: number,
  raw: Record<string, unknown>,
  definition: AnyNodeDefinition,
  error: (d: Omit<Diagnostic, 'severity'>) => void,
  warn: (d: Omit<Diagnostic, 'severity'>) => void,
): Record<string, unknown> | undefined {
  if (typeVersion > definition.version) {
    error({
      nodeId,
      code: 'newer-node-version',
      message: `This node was saved by a newer version of '${definition.type}' (v${typeVersion}; this app has v${definition.version}).`,
    });
    return undefined;
  }
  let params: Record<string, unknown> = { ...raw };
  for (let v = typeVersion; v < definition.version; v++) {
    const up = definition.migrations?.[v];
    if (!up) {
      error({
        nodeId,
        code: 'no-migration',
        message: `Parameters of '${definition.type}' v${v} cannot be upgraded to v${v + 1}.`,
      });
      return undefined;
    }
    try {
      params = up(params);
    } catch (cause) {
      // A migration written for well-formed params must not crash the compiler on a hand-edited file.
      error({
        nodeId,
        code: 'no-migration',
        message: `Parameters of '${definition.type}' v${v} could not be upgraded to v${v + 1}: ${(cause as Error)?.message ?? cause}. Check the node's parameters.`,
      });
      return undefined;
    }
  }
  const known = new Set(Object.keys(definition.params.shape));
  for (const key of Object.keys(params)) {
    if (!known.has(key)) {
      const shown = key.length > 60 ? `${key.slice(0, 60)}…` : key;
      warn({
        nodeId,
        param: key,
        code: 'unknown-param',
        message: `Unknown parameter '${shown}' is ignored.`,
      });
    }
  }
  const result = definition.params.safeParse(params);
  if (result.success) return result.data as Record<string, unknown>;
  for (const issue of result.error.issues.slice(0, MAX_ISSUES_PER_NODE)) {
    const param = issue.path.map(String).join('.');
    error({ nodeId, param, code: 'invalid-param', message: describeIssue(param, issue.message, params) });
  }
  return undefined;
}

function describeIssue(param: string, message: string, params: Record<string, unknown>): string {
  const value = Object.hasOwn(params, param) ? params[param] : undefined;
  const shown =
    typeof value === 'number' && !Number.isFinite(value)
      ? String(value)
      : typeof value === 'string'
        ? JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)
        : undefined;
  return `Parameter '${param}'${shown ? ` = ${shown}` : ''}: ${message}.`;
}

function hasStreamPort(definition: AnyNodeDefinition): boolean {
  return [...definition.inputs, ...definition.outputs].some((p) => PORT_TYPES[p.type]?.kind === 'stream');
}

/** Kahn's algorithm over every wire; nodes left over sit on a cycle (or downstream of one). */
function topologicalOrder(nodes: Map<string, PlanNode>): { sorted: string[]; cyclic: string[] } {
  const indegree = new Map<string, number>();
  const dependents = new Map<string, string[]>();
  for (const id of nodes.keys()) {
    indegree.set(id, 0);
    dependents.set(id, []);
  }
  for (const node of nodes.values()) {
    for (const wires of Object.values(node.inputs)) {
      for (const wire of wires) {
        indegree.set(node.id, indegree.get(node.id)! + 1);
        dependents.get(wire.node)!.push(node.id);
      }
    }
  }
  const sorted = [...nodes.keys()].filter((id) => indegree.get(id) === 0);
  // `sorted` doubles as the queue (an index, not shift(), which is linear per call).
  for (let head = 0; head < sorted.length; head++) {
    for (const next of dependents.get(sorted[head])!) {
      indegree.set(next, indegree.get(next)! - 1);
      if (indegree.get(next) === 0) sorted.push(next);
    }
  }
  const placed = new Set(sorted);
  const left = [...nodes.keys()].filter((id) => !placed.has(id));
  return { sorted, cyclic: onCycles(left, dependents, nodes) };
}

/**
 * The nodes among `candidates` that lie on a cycle (not merely downstream of one): members of a strongly
 * connected component with more than one node, or wired into themselves. Kosaraju's algorithm, iterative
 * and linear, so that a hostile graph of thousands of nodes in a loop is answered at once.
 */
function onCycles(
  candidates: string[],
  dependents: Map<string, string[]>,
  nodes: Map<string, PlanNode>,
): string[] {
  // Only wires among the candidates: nodes already placed in order cannot be on a cycle.
  const left = new Set(candidates);
  const inputsOf = (id: string) =>
    Object.values(nodes.get(id)!.inputs).flatMap((w) => w.filter((x) => left.has(x.node)).map((x) => x.node));
  const finished: string[] = [];
  const visited = new Set<string>();
  for (const root of candidates) {
    if (visited.has(root)) continue;
    visited.add(root);
    const stack: { id: string; next: number }[] = [{ id: root, next: 0 }];
    while (stack.length) {
      const top = stack[stack.length - 1];
      const outs = dependents.get(top.id)!;
      if (top.next < outs.length) {
        const id = outs[top.next++];
        if (!visited.has(id)) {
          visited.add(id);
          stack.push({ id, next: 0 });
        }
      } else {
        stack.pop();
        finished.push(top.id);
      }
    }
  }
  const component = new Map<string, number>();
  const size: number[] = [];
  for (let i = finished.length - 1; i >= 0; i--) {
    if (component.has(finished[i])) continue;
    const index = size.push(1) - 1;
    component.set(finished[i], index);
    const stack = [finished[i]];
    while (stack.length) {
      for (const id of inputsOf(stack.pop()!)) {
        if (!component.has(id)) {
          component.set(id, index);
          size[index]++;
          stack.push(id);
        }
      }
    }
  }
  return candidates.filter((id) => size[component.get(id)!] > 1 || inputsOf(id).includes(id));
}

function upstreamOf(sinks: string[], edges: GraphFile['edges']): Set<string> {
  const sources = new Map<string, string[]>();
  for (const { from, to } of edges) {
    const list = sources.get(to.node);
    if (list) list.push(from.node);
    else sources.set(to.node, [from.node]);
  }
  const needed = new Set<string>();
  const stack = [...sinks];
  while (stack.length) {
    const id = stack.pop()!;
    if (needed.has(id)) continue;
    needed.add(id);
    for (const source of sources.get(id) ?? []) stack.push(source);
  }
  return needed;
}
