/**
 * PPO on CartPole against the PyTorch reference, same machine, same run: environment steps per second
 * (learning included) and steps/seconds to solve (mean return of the last 20 episodes >= 475), ours on
 * the WebAssembly backend vs ../shared/reference/ppo_cartpole_torch.py.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { createRegistry } from '../../nodes/index.ts';
import { executeRun } from '../../src-main/engine/runtime/run.ts';
import { loadTemplate, repoRoot } from '../helpers/graphs.ts';
import { fmt, ratio, type Section } from './table.ts';

const run = promisify(execFile);
const referenceScript = path.resolve(repoRoot, '../shared/reference/ppo_cartpole_torch.py');
const python = '/usr/bin/python3';

export interface PpoBenchOptions {
  seeds: number[];
  totalSteps: number;
  skipReference: boolean;
}

interface Figures {
  stepsPerSecond: number;
  solveStep: number | null;
  solveSeconds: number | null;
  finalReturn: number;
  /** Ours only: seconds per phase (node step, engine snapshot), from the run's timings. */
  phases?: Array<[string, number]>;
}

async function ours(seed: number, totalSteps: number): Promise<Figures> {
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
  const typeOf = new Map(graph.nodes.map((n) => [n.id, n.type]));
  const phases = Object.entries(result.timings)
    .map(([id, seconds]): [string, number] => [typeOf.has(id) ? `${id} (${typeOf.get(id)})` : id, seconds])
    .sort((x, y) => y[1] - x[1]);
  return {
    stepsPerSecond: last.envSteps / last.seconds,
    solveStep,
    solveSeconds,
    finalReturn: last.metrics['rollout/episode_return_mean'],
    phases,
  };
}

async function reference(seed: number, totalSteps: number, skip: boolean): Promise<Figures | null> {
  if (skip || !existsSync(referenceScript) || !existsSync(python)) return null;
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

export async function benchPpoCartpole({
  seeds,
  totalSteps,
  skipReference,
}: PpoBenchOptions): Promise<Section> {
  const rows: string[][] = [];
  for (const seed of seeds) {
    const a = await ours(seed, totalSteps);
    const b = await reference(seed, totalSteps, skipReference);
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
    for (const [phase, seconds] of a.phases ?? [])
      rows.push([`ppo-cartpole seed ${seed}: seconds in ${phase}`, fmt(seconds, 2), 'n/a', 'n/a']);
    console.error(`seed ${seed} done`);
  }

  return {
    title: 'PPO on CartPole vs PyTorch',
    header: ['figure', 'ours (wasm)', 'reference (PyTorch)', 'ratio'],
    rows,
  };
}
