/**
 * The exported file in a fresh folder that installs the packed package (`npm pack` + `npm install
 * <tarball>`), not inside the project. The install resolves the package's dependencies from the npm
 * cache or the registry (which CI reaches).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';
import { createRegistry } from '../../nodes/index.ts';
import type { MetricsRecord } from '../../src-main/engine/events.ts';
import { exportGraph } from '../../src-main/engine/export/index.ts';
import { executeRun } from '../../src-main/engine/runtime/run.ts';
import { loadTemplate, numbersOf, repoRoot } from '../helpers/graphs.ts';

const run = promisify(execFile);

const folder = mkdtempSync(path.join(tmpdir(), 'agent-rl-studio-package-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

it('runs exported code in a fresh folder that installs the packed package', async () => {
  await run('npm', ['pack', '--pack-destination', folder], { cwd: repoRoot });
  const tarball = readdirSync(folder).find((f) => f.endsWith('.tgz'))!;
  writeFileSync(path.join(folder, 'package.json'), JSON.stringify({ name: 'fresh', private: true }));
  await run(
    'npm',
    ['install', `./${tarball}`, '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund'],
    { cwd: folder },
  );
  const graph = loadTemplate('cartpole-ppo');
  writeFileSync(path.join(folder, 'graph.ts'), exportGraph(graph, createRegistry()).code);
  const tsx = path.join(folder, 'node_modules', '.bin', 'tsx');
  await run(tsx, ['graph.ts', '--iterations', '2', '--backend', 'wasm', '--out', 'run'], { cwd: folder });
  const lines = readFileSync(path.join(folder, 'run', 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n');
  const engine = await executeRun({ graph, registry: createRegistry(), iterations: 2, backend: 'wasm' });
  expect(numbersOf(lines.map((l) => JSON.parse(l) as MetricsRecord))).toEqual(numbersOf(engine.metrics));
}, 300_000);
