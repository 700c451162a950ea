/**
 * `npm run bench`: figures and ratios against the PyTorch reference measured in the same run (not a test).
 * PPO on CartPole: environment steps per second (learning included) and time/steps to solve (mean return
 * of the last 20 episodes >= 475), ours on the WebAssembly backend vs ../shared/reference/ppo_cartpole_torch.py.
 * Flags: --seeds 1,2,3  --steps 300000  --skip-reference
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { createRegistry } from '../../nodes/index.ts';
import { executeRun } from '../../src-main/engine/runtime/run.ts';
import { loadTemplate, repoRoot } from '../helpers/graphs.ts';

const run = promisify(execFile);
const { values } = parseArgs({
  options: {
    seeds: { type: 'string', default: '1,2,3' },
    steps: { type: 'string', default: '300000' },
    'skip-reference': { type: 'boolean', default: false },
  },
});
const seeds = values.seeds.split(',').map(Number);
const totalSteps = Number(values.steps);
const referenceScript = path.resolve(repoRoot, '../shared/reference/ppo_cartpole_torch.py');
const python = '/usr/bin/python3';

interface Figures {
  stepsPerSecond: number;
  solveStep: number | null;
  solveSeconds: number | null;
  finalReturn: number;
}

async function ours(seed: number): Promise<Figures> {
  const graph = loadTemplate('cartpole-ppo');
  const iterations = Math.floor(totalSteps / 512);
  let solveStep: number | null = null;
  let solveSeconds: number | null = null;
  const result = await executeRun({
    graph,
    registry: createRegistry(),
    seed,
    iterations,
    backend: 'wasm',
    onEvent: (e) => {
      if (
        e.type === 'metrics' &&
        solveStep === null &&
        e.record.metrics['rollout/episode_return_mean'] >= 475
      ) {
        solveStep = e.record.envSteps;
        solveSeconds = e.record.seconds;
      }
    },
  });
  const last = result.metrics.at(-1)!;
  return {
    stepsPerSecond: last.envSteps / last.seconds,
    solveStep,
    solveSeconds,
    finalReturn: last.metrics['rollout/episode_return_mean'],
  };
}

async function reference(seed: number): Promise<Figures | null> {
  if (values['skip-reference'] || !existsSync(referenceScript) || !existsSync(python)) return null;
  try {
    const { stdout } = await run(
      python,
      [referenceScript, '--total-steps', String(totalSteps), '--seed', String(seed)],
      {
        maxBuffer: 1 << 20,
      },
    );
    const r = JSON.parse(stdout.trim().split('\n').at(-1)!);
    return {
      stepsPerSecond: r.steps_per_second,
      solveStep: r.solve_step,
      solveSeconds: r.solve_seconds,
      finalReturn: r.final_mean_return,
    };
  } catch (error) {
    console.error(`reference unavailable: ${(error as Error).message.split('\n')[0]}`);
    return null;
  }
}

const fmt = (x: number | null | undefined, digits = 0) =>
  x === null || x === undefined ? 'n/a' : x.toLocaleString('en-US', { maximumFractionDigits: digits });
const ratio = (a: number | null, b: number | null | undefined) => (a && b ? (a / b).toFixed(2) : 'n/a');

const rows: string[][] = [];
for (const seed of seeds) {
  const a = await ours(seed);
  const b = await reference(seed);
  rows.push(
    [
      `ppo-cartpole seed ${seed}: env steps/s`,
      fmt(a.stepsPerSecond),
      fmt(b?.stepsPerSecond),
      ratio(a.stepsPerSecond, b?.stepsPerSecond),
    ],
    [
      `ppo-cartpole seed ${seed}: steps to solve`,
      fmt(a.solveStep),
      fmt(b?.solveStep),
      ratio(a.solveStep, b?.solveStep),
    ],
    [
      `ppo-cartpole seed ${seed}: seconds to solve`,
      fmt(a.solveSeconds, 1),
      fmt(b?.solveSeconds, 1),
      ratio(a.solveSeconds, b?.solveSeconds ?? null),
    ],
    [
      `ppo-cartpole seed ${seed}: final mean return`,
      fmt(a.finalReturn, 1),
      fmt(b?.finalReturn, 1),
      ratio(a.finalReturn, b?.finalReturn),
    ],
  );
  console.error(`seed ${seed} done`);
}

const header = ['figure', 'ours (wasm)', 'reference (PyTorch)', 'ratio'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (cells: string[]) =>
  cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
console.log(
  `machine: ${os.cpus().length} cores, ${os.cpus()[0]?.model ?? 'unknown CPU'}; node ${process.version}`,
);
console.log(line(header));
for (const r of rows) console.log(line(r));
