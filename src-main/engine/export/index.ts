/**
 * Code export: a graph becomes one TypeScript module that a person could have written by hand. It imports
 * the public runtime package (`agent-rl-studio`), states each node as a `const` with its non-default
 * parameters, states every wire, and trains through the same `executeRun` as the app, so the same seed
 * and backend give the same metrics.
 *
 * Safety: every string that comes from the graph (name, labels, ids, string parameters) is emitted through
 * `stringLiteral`/`inlineValue`; identifiers are made from labels by keeping ASCII letters and digits
 * only; comments hold only registry text or text checked to be plain. Nothing from a graph becomes code.
 */
import { compileGraph, type PlanNode } from '../compiler.ts';
import { GraphError, hasErrors } from '../diagnostics.ts';
import type { GraphFile } from '../graph/types.ts';
import type { NodeRegistry } from '../registry.ts';
import { defaultParams } from '../registry.ts';
import { IdentifierPool } from './identifiers.ts';
import { commentText, formatValue, inlineValue, stringLiteral } from './literals.ts';

export { camelIdentifier, IdentifierPool } from './identifiers.ts';
export { commentText, formatValue, inlineValue, propertyKey, stringLiteral } from './literals.ts';

export interface ExportedModule {
  /** A file name for the module, from the graph's name: `ppo-on-cartpole.ts`. */
  fileName: string;
  code: string;
}

/** The package the generated module imports; `package.json` `exports` makes it resolve in the project. */
export const RUNTIME_PACKAGE = 'agent-rl-studio';

const WIDTH = 110;

// Names the generated module itself declares or imports; node constants must not collide with them.
const IMPORTS = ['createRegistry', 'executeRun', 'graph', 'node', 'printProgress', 'readRunArgs', 'wire'];
const MODULE_NAMES = [...IMPORTS, 'trainingGraph', 'main', 'args', 'result'];

export function slugOf(name: string): string {
  return (
    name
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '')
      .slice(0, 60)
      .replace(/-$/, '') || 'graph'
  );
}

/**
 * Export a graph as a TypeScript module. The graph must compile: otherwise a GraphError carries the
 * diagnostics (`nodeId.field: message`).
 */
export function exportGraph(graph: GraphFile | unknown, registry: NodeRegistry): ExportedModule {
  const compiled = compileGraph(graph, registry);
  if (!compiled.plan || hasErrors(compiled.diagnostics)) {
    throw new GraphError(compiled.diagnostics.filter((d) => d.severity === 'error'));
  }
  const plan = compiled.plan;
  const file = plan.graph;
  const slug = slugOf(file.name);
  const byId = new Map(plan.build.map((n) => [n.id, n]));

  // Constants in the graph's own node order, which is how its author laid it out.
  const names = new IdentifierPool(MODULE_NAMES);
  const nodes = file.nodes.map((raw) => {
    const planned = byId.get(raw.id)!;
    const shortType = planned.definition.type.split('.').pop() ?? '';
    return { raw, planned, name: names.claim([raw.label ?? '', raw.id, shortType]) };
  });
  const nameOf = new Map(nodes.map((n) => [n.raw.id, n.name]));

  const out: string[] = [];
  const plainName = /^[A-Za-z0-9 ,.:()+_-]{1,80}$/.test(file.name) ? `${file.name.trim()}: a` : 'A';
  out.push(
    `// ${plainName} training graph exported from Agent RL Studio.`,
    `// Run: npx tsx ${slug}.ts [--out DIR] [--iterations N] [--seed N] [--backend auto|tensorflow|wasm|cpu]`,
    '// Writes graph.json, metrics.jsonl (one line per iteration) and checkpoints/ into the run folder.',
    `import { ${IMPORTS.join(', ')} } from ${stringLiteral(RUNTIME_PACKAGE)};`,
    '',
  );

  out.push(
    '// Nodes, one per const. Parameters not written out are at their defaults; `version` is the version of',
    "// the node type's parameters, so that a later library migrates them instead of misreading them.",
    '',
  );
  for (const { raw, planned, name } of nodes) {
    out.push(`// ${commentText(planned.definition.title)} (${commentText(planned.definition.type)})`);
    out.push(nodeConst(name, raw.label, planned));
    out.push('');
  }

  const wires = file.edges.map(
    (e) =>
      `wire(${nameOf.get(e.from.node)}, ${stringLiteral(e.from.port)}, ${nameOf.get(e.to.node)}, ${stringLiteral(e.to.port)})`,
  );
  const run = {
    iterations: file.run.iterations,
    checkpointEvery: file.run.checkpointEvery,
    backend: file.run.backend,
  };
  const nodeList = `[${nodes.map((n) => n.name).join(', ')}]`;
  out.push('// The same graph the app trains: these nodes, wired output -> input.');
  out.push('const trainingGraph = graph({');
  out.push(`  name: ${formatValue(file.name, 2, 8, WIDTH, 1)},`);
  out.push(`  seed: ${inlineValue(file.seed)},`);
  out.push(`  run: ${formatValue(run, 2, 7, WIDTH, 1)},`);
  out.push(
    11 + nodeList.length <= WIDTH
      ? `  nodes: ${nodeList},`
      : `  nodes: [\n${nodes.map((n) => `    ${n.name},`).join('\n')}\n  ],`,
  );
  out.push(wires.length ? `  edges: [\n${wires.map((w) => `    ${w},`).join('\n')}\n  ],` : '  edges: [],');
  out.push('});', '');

  out.push(
    'async function main(): Promise<void> {',
    `  const args = readRunArgs(process.argv.slice(2), { runDir: ${stringLiteral(`.runs/${slug}`)} });`,
    '  const result = await executeRun({',
    '    graph: trainingGraph,',
    '    registry: createRegistry(),',
    '    ...args,',
    '    onEvent: printProgress,',
    '  });',
    '  console.log(',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: this line is the generated module's own template literal.
    '    `Run ${result.status} at iteration ${result.iteration} (${result.envSteps} env steps, backend ${result.backend}). Files: ${args.runDir}`,',
    '  );',
    "  if (result.status !== 'finished') process.exitCode = 1;",
    '}',
    '',
    '// No top-level await: the file also runs where the nearest package.json is CommonJS.',
    'main().catch((error: unknown) => {',
    '  console.error(error);',
    '  process.exitCode = 1;',
    '});',
    '',
  );
  return { fileName: `${slug}.ts`, code: out.join('\n') };
}

/** `const actor = node('agent.mlp-policy', { id: 'policy', label: 'Actor', version: 1, params: {...} });` */
function nodeConst(name: string, label: string | undefined, planned: PlanNode): string {
  const defaults = defaultParams(planned.definition);
  const params: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(planned.params)) {
    if (value !== undefined && !sameJson(value, defaults[key])) params[key] = value;
  }
  const spec: Record<string, unknown> = { id: planned.id };
  if (label !== undefined) spec.label = label;
  spec.version = planned.definition.version;
  if (Object.keys(params).length) spec.params = params;
  const head = `const ${name} = node(${stringLiteral(planned.definition.type)}, `;
  return `${head}${formatValue(spec, 0, head.length, WIDTH, 2)});`;
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
