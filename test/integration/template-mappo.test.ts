/**
 * Template 8, "Two-agent coordination with MAPPO": it compiles cleanly and, with a CI budget (the first
 * 35 of its 60 iterations: its learning rate is constant, so this is a prefix of the full run), trains
 * to its card's promise on three seeds.
 */
import { describe, expect, it } from 'vitest';
import { createRegistry } from '../../nodes/index.ts';
import { compileGraph } from '../../src-main/engine/compiler.ts';
import type { TrajectorySample } from '../../src-main/engine/events.ts';
import { executeRun } from '../../src-main/engine/runtime/run.ts';
import { loadTemplate } from '../helpers/graphs.ts';

const CI_ITERATIONS = 35;

interface Check {
  metric: string;
  atLeast: number;
}

describe('template mappo-cooperative-meet', () => {
  const graph = loadTemplate('mappo-cooperative-meet');
  const check = (graph.template as unknown as { check: Check }).check;

  it('compiles with no diagnostics and promises the team success rate', () => {
    expect(compileGraph(graph, createRegistry()).diagnostics).toEqual([]);
    expect(check).toEqual({ metric: 'rollout/success_rate', atLeast: 0.9 });
  });

  // Measured on wasm (success rate of the final iteration): at iteration 35, seeds 1, 2, 3 -> 1.00, 1.00,
  // 1.00 (at iteration 30: 0.95, 1.00, 1.00); the first iteration shows 0.00-0.06, as a random team does.
  // Over seeds 1-5 the rate first reached 0.9 at iterations 25, 21, 24, 25, 22 and was 1.0 at 60.
  it.each([1, 2, 3])(
    'seed %i: the team meets in >= 90% of the episodes of the final iteration, within 35 iterations',
    async (seed) => {
      const rates: number[] = [];
      let agentsShown = new Set<number>();
      const result = await executeRun({
        graph,
        registry: createRegistry(),
        backend: 'wasm',
        seed,
        iterations: CI_ITERATIONS,
        onEvent: (event) => {
          if (event.type === 'metrics') rates.push(event.record.metrics[check.metric]);
          if (event.type === 'samples') {
            agentsShown = new Set(
              event.samples.map((s: TrajectorySample) => (s.kind === 'vector' ? (s.agent ?? -1) : -1)),
            );
          }
        },
      });
      expect(result.error).toBeUndefined();
      expect(rates).toHaveLength(CI_ITERATIONS);
      console.log(
        `seed ${seed}: success rate first ${rates[0].toFixed(2)}, iteration 10 ${rates[9].toFixed(2)}, iteration 20 ${rates[19].toFixed(2)}, final ${rates.at(-1)?.toFixed(2)}`,
      );
      expect(rates[0]).toBeLessThan(0.3);
      expect(rates.at(-1)).toBeGreaterThanOrEqual(check.atLeast);
      // The viewer gets per-agent credit: samples name both agents.
      expect([...agentsShown].sort()).toEqual([0, 1]);
    },
    120_000,
  );
});
