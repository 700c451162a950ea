import { describe, expect, it } from 'vitest';
import { createRegistry } from '../../nodes/index.ts';
import { RunControl } from '../../src-main/engine/runtime/control.ts';
import { executeRun } from '../../src-main/engine/runtime/run.ts';
import { loadTemplate } from '../helpers/graphs.ts';

const SOLVED = 475;
const BUDGET_STEPS = 300_000;

describe('PPO CartPole template learns (WebAssembly backend)', () => {
  it.each([1, 2, 3])(
    'seed %i: mean return of the last 20 episodes reaches 475 within 300k environment steps',
    async (seed) => {
      const graph = loadTemplate('cartpole-ppo');
      const control = new RunControl();
      let solvedAt: number | undefined;
      let best = 0;
      const result = await executeRun({
        graph,
        registry: createRegistry(),
        seed,
        backend: 'wasm',
        control,
        onEvent: (event) => {
          if (event.type !== 'metrics') return;
          const ret = event.record.metrics['rollout/episode_return_mean'];
          best = Math.max(best, ret);
          if (solvedAt === undefined && ret >= SOLVED) {
            solvedAt = event.record.envSteps;
            control.stop();
          }
          if (event.record.envSteps >= BUDGET_STEPS) control.stop();
        },
      });
      console.log(
        `seed ${seed}: solved at ${solvedAt ?? 'never'} steps (best ${best.toFixed(1)}), ${result.backend}`,
      );
      expect(result.backend).toBe('wasm');
      expect(best).toBeGreaterThanOrEqual(SOLVED);
      expect(solvedAt).toBeLessThanOrEqual(BUDGET_STEPS);
    },
    400_000,
  );
});
