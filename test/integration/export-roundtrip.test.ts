/**
 * Exported code reproduces the in-app run: for every template, the generated module type-checks, runs
 * with `tsx` as a user would run it, and writes exactly the metrics `executeRun` gives the graph itself.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { createRegistry } from '../../nodes/index.ts';
import type { MetricsRecord } from '../../src-main/engine/events.ts';
import { exportGraph } from '../../src-main/engine/export/index.ts';
import type { GraphFile } from '../../src-main/engine/graph/types.ts';
import { executeRun } from '../../src-main/engine/runtime/run.ts';
import { loadTemplate, numbersOf, repoRoot } from '../helpers/graphs.ts';
import { scratchDir, typeCheckModules } from '../helpers/typecheck-export.ts';

const run = promisify(execFile);
const ITERATIONS = 3;
const templates = readdirSync(path.join(repoRoot, 'templates'))
  .filter((f) => f.endsWith('.json'))
  .map((f) => f.slice(0, -'.json'.length));
// Templates that need an outside service (`template.requires`, e.g. a local LLM server) are type-checked
// but not run here; each is run by its own test against a local stand-in
// (in-context-remote: test/integration/llm-remote-template.test.ts).
const needsService = (name: string) =>
  Boolean((loadTemplate(name) as unknown as { template?: { requires?: string } }).template?.requires);
const scratch = scratchDir('export-roundtrip');
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('exported code reproduces the engine run', () => {
  const registry = createRegistry();
  const exported = templates.map((name) => ({ name, ...exportGraph(loadTemplate(name), registry) }));
  const runnable = exported.filter((e) => !needsService(e.name));

  it('type-checks every exported template', () => {
    expect(templates.length).toBeGreaterThan(0);
    expect(typeCheckModules(scratch, exported)).toEqual([]);
  });

  it.each(runnable)('$name: same metrics for the same seed and backend', async ({ name, fileName, code }) => {
    const graph = loadTemplate(name);
    const file = path.join(scratch, `run-${fileName}`);
    writeFileSync(file, code);
    const runDir = path.join(scratch, `${name}-run`);
    const tsx = path.join(repoRoot, 'node_modules', '.bin', 'tsx');
    const child = run(tsx, [file, '--iterations', String(ITERATIONS), '--backend', 'wasm', '--out', runDir], {
      cwd: repoRoot,
      timeout: 60_000,
    });
    const engine = await executeRun({ graph, registry, iterations: ITERATIONS, backend: 'wasm' });
    const { stdout, stderr } = await child;
    expect(stdout).toMatch(/Run finished at iteration 3 .*backend wasm/);
    expect(stderr).toMatch(/iteration 3 /);
    expect(engine.status).toBe('finished');

    const lines = readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n');
    const exportedMetrics = lines.map((line) => JSON.parse(line) as MetricsRecord);
    expect(exportedMetrics).toHaveLength(ITERATIONS);
    expect(numbersOf(exportedMetrics)).toEqual(numbersOf(engine.metrics));
    expect(readdirSync(path.join(runDir, 'checkpoints')).length).toBeGreaterThan(0);

    // The graph the exported file assembled is the template's graph: same nodes, params and wires.
    const written = JSON.parse(readFileSync(path.join(runDir, 'graph.json'), 'utf8')) as GraphFile;
    const essentials = (g: GraphFile) => ({
      name: g.name,
      seed: g.seed,
      run: { iterations: g.run.iterations, checkpointEvery: g.run.checkpointEvery, backend: g.run.backend },
      nodes: g.nodes.map((n) => ({ id: n.id, type: n.type, label: n.label })),
      edges: g.edges.map((e) => ({ from: e.from, to: e.to })),
    });
    expect(essentials(written)).toEqual(essentials(graph));
  });

  it('CLI: export writes the module, or prints nodeId.field: message and exits 1', async () => {
    const tsx = path.join(repoRoot, 'node_modules', '.bin', 'tsx');
    const cli = path.join(repoRoot, 'src-main', 'cli.ts');
    const out = path.join(scratch, 'cli-export.ts');
    await run(tsx, [cli, 'export', path.join(repoRoot, 'templates', 'cartpole-ppo.json'), '-o', out]);
    expect(readFileSync(out, 'utf8')).toBe(exported.find((e) => e.name === 'cartpole-ppo')!.code);

    const broken = loadTemplate('cartpole-ppo');
    broken.nodes[0].params = { numEnvs: 0 };
    const brokenFile = path.join(scratch, 'broken.json');
    writeFileSync(brokenFile, JSON.stringify(broken));
    const failure = await run(tsx, [cli, 'export', brokenFile]).then(
      () => undefined,
      (error: { code: number; stderr: string; stdout: string }) => error,
    );
    expect(failure?.code).toBe(1);
    expect(failure?.stderr).toMatch(/^error env\.numEnvs: /m);
    expect(failure?.stdout).toBe('');
  });
});
