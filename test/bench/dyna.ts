/**
 * Dyna vs model-free PPO on CartPole, same machine, same run: real environment steps (and seconds) until
 * the mean return of the last 20 real episodes reaches 475, for templates/dyna-cartpole.json (world.ensemble
 * + imagined rollouts) and templates/cartpole-ppo.json, per seed, with the medians and their ratio. Both
 * run their full template schedules (the learning rate anneals over the template's iterations) and stop
 * once solved. The promise (issue 4): Dyna needs at most half the real steps.
 */

import { nodeLibrary } from '../../nodes/index.ts';
import type { AnyNodeDefinition, NodeInstance } from '../../src-main/engine/node-api.ts';
import { NodeRegistry } from '../../src-main/engine/registry.ts';
import { RunControl } from '../../src-main/engine/runtime/control.ts';
import { executeRun } from '../../src-main/engine/runtime/run.ts';
import { loadTemplate } from '../helpers/graphs.ts';
import { fmt, ratio, type Section } from './table.ts';

const SOLVED = 475;

export interface DynaBenchOptions {
  seeds: number[];
  /** Skip the model-free runs (their steps to solve are then n/a). */
  skipModelFree?: boolean;
}

interface Solve {
  steps: number | null;
  seconds: number | null;
  imaginedSteps: number;
  best: number;
  /** Seconds spent in each node's step, by node id (where the run's time goes). */
  nodeSeconds: Record<string, number>;
}

/** The node library with every instance's `step` timed into `nodeSeconds`. */
function timedRegistry(nodeSeconds: Record<string, number>): NodeRegistry {
  const timed = nodeLibrary.map(
    (definition): AnyNodeDefinition => ({
      ...definition,
      async create(params, ctx) {
        const instance: NodeInstance = await definition.create(params, ctx);
        const step = instance.step?.bind(instance);
        if (step) {
          instance.step = async (streams, info) => {
            const start = performance.now();
            try {
              return await step(streams, info);
            } finally {
              nodeSeconds[ctx.nodeId] = (nodeSeconds[ctx.nodeId] ?? 0) + (performance.now() - start) / 1000;
            }
          };
        }
        return instance;
      },
    }),
  );
  return new NodeRegistry(timed);
}

async function stepsToSolve(template: string, seed: number): Promise<Solve> {
  const control = new RunControl();
  const solve: Solve = { steps: null, seconds: null, imaginedSteps: 0, best: 0, nodeSeconds: {} };
  await executeRun({
    graph: loadTemplate(template),
    registry: timedRegistry(solve.nodeSeconds),
    seed,
    backend: 'wasm',
    control,
    onEvent: (e) => {
      if (e.type !== 'metrics' || solve.steps !== null) return;
      const ret = e.record.metrics['rollout/episode_return_mean'];
      solve.best = Math.max(solve.best, ret);
      solve.imaginedSteps += e.record.metrics['dream/imagined_steps'] ?? 0;
      if (ret >= SOLVED) {
        solve.steps = e.record.envSteps;
        solve.seconds = e.record.seconds;
        control.stop();
      }
    },
  });
  return solve;
}

const median = (xs: (number | null)[]): number | null => {
  if (xs.some((x) => x === null) || xs.length === 0) return null;
  const s = (xs as number[]).slice().sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export async function benchDyna({ seeds, skipModelFree = false }: DynaBenchOptions): Promise<Section> {
  const rows: string[][] = [];
  const profiles: string[] = [];
  const dynaSteps: (number | null)[] = [];
  const freeSteps: (number | null)[] = [];
  for (const seed of seeds) {
    console.error(`bench: dyna seed ${seed}...`);
    const dyna = await stepsToSolve('dyna-cartpole', seed);
    const free = skipModelFree ? null : await stepsToSolve('cartpole-ppo', seed);
    dynaSteps.push(dyna.steps);
    freeSteps.push(free?.steps ?? null);
    rows.push(
      [
        `seed ${seed}: real steps to solve`,
        fmt(dyna.steps),
        fmt(free?.steps),
        ratio(dyna.steps, free?.steps),
      ],
      [
        `seed ${seed}: seconds to solve`,
        fmt(dyna.seconds, 1),
        fmt(free?.seconds, 1),
        ratio(dyna.seconds, free?.seconds),
      ],
      [`seed ${seed}: imagined steps until solved`, fmt(dyna.imaginedSteps), '0', ''],
      [`seed ${seed}: best mean return`, fmt(dyna.best, 1), fmt(free?.best, 1), ''],
    );
    const total = Object.values(dyna.nodeSeconds).reduce((a, b) => a + b, 0);
    profiles.push(
      `seed ${seed} dyna time by node: ${Object.entries(dyna.nodeSeconds)
        .sort((a, b) => b[1] - a[1])
        .map(([id, sec]) => `${id} ${sec.toFixed(1)} s (${((100 * sec) / total).toFixed(0)}%)`)
        .join(', ')}`,
    );
  }
  const perSeedHalf = dynaSteps.every(
    (d, i) => d !== null && freeSteps[i] !== null && d <= freeSteps[i]! / 2,
  );
  const dm = median(dynaSteps);
  const fm = median(freeSteps);
  rows.push(['median real steps to solve', fmt(dm), fmt(fm), ratio(dm, fm)]);
  return {
    title: 'Dyna (world.ensemble + imagined rollouts) vs model-free PPO, CartPole, WebAssembly backend',
    header: ['', 'dyna', 'model-free', 'ratio'],
    rows,
    notes: [
      `promise: median ratio <= 0.50 (${dm !== null && fm !== null && dm / fm <= 0.5 ? 'met' : 'not met'}); every seed at most half its own model-free steps (${perSeedHalf ? 'met' : 'not met'})`,
      ...profiles,
    ],
  };
}
