/**
 * Template 4: HCA vs Monte-Carlo on the delayed-effect task, two pipelines in one graph. Each seed trains
 * the template as shipped and checks its card's promise (the final-iteration metric of `template.check`);
 * across the seeds, HCA must reach the optimal-action threshold in fewer episodes than Monte-Carlo (the
 * paper's result). The full 5-seed comparison is in test/bench/credit.ts.
 */
import { describe, expect, it } from 'vitest';
import { createRegistry } from '../../nodes/index.ts';
import { compileGraph } from '../../src-main/engine/compiler.ts';
import { executeRun } from '../../src-main/engine/runtime/run.ts';
import { loadTemplate } from '../helpers/graphs.ts';

interface TemplateCheck {
  metric: string;
  atLeast?: number;
  atMost?: number;
}

const THRESHOLD = 0.9;
const SMOOTH = 3;

/** Episodes finished when the mean of the last SMOOTH iterations' rate first reaches THRESHOLD. */
function episodesToThreshold(rates: number[], episodes: number[]): number {
  let total = 0;
  for (let i = 0; i < rates.length; i++) {
    total += episodes[i];
    if (
      i + 1 >= SMOOTH &&
      rates.slice(i + 1 - SMOOTH, i + 1).reduce((a, b) => a + b, 0) / SMOOTH >= THRESHOLD
    ) {
      return total;
    }
  }
  return Number.POSITIVE_INFINITY;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

describe('template: hindsight credit vs Monte-Carlo (delayed effect)', () => {
  const graph = loadTemplate('hca-vs-monte-carlo');
  const check = (graph.template as unknown as { check: TemplateCheck }).check;
  const results: Array<{ hca: number; mc: number }> = [];

  it('compiles with no diagnostics', () => {
    expect(compileGraph(graph, createRegistry()).diagnostics).toEqual([]);
  });

  // Episodes to the threshold, HCA vs MC: seed 1 264 vs 552, seed 2 480 vs never, seed 3 never (within
  // 30 iterations) vs 240; the 5-seed comparison is in the bench.
  it.each([1, 2, 3])(
    'seed %i: trains to the card’s promise',
    async (seed) => {
      const series: Record<string, number[]> = {};
      const keep = (name: string, value: number | undefined) => {
        series[name] ??= [];
        series[name].push(value ?? Number.NaN);
      };
      const result = await executeRun({
        graph,
        registry: createRegistry(),
        backend: 'wasm',
        seed,
        // CI budget: 30 of the card's 40 iterations (HCA passes the threshold by about iteration 20).
        iterations: 30,
        onEvent: (event) => {
          if (event.type !== 'metrics') return;
          const m = event.record.metrics;
          for (const name of [
            'hca-rollout/optimal_action_rate',
            'mc-rollout/optimal_action_rate',
            'hca-rollout/episodes',
            'mc-rollout/episodes',
            'hca/classifier_loss',
          ]) {
            keep(name, m[name]);
          }
        },
      });
      expect(result.error).toBeUndefined();
      expect(result.status).toBe('finished');
      const final = result.metrics.at(-1)!.metrics;
      const hca = episodesToThreshold(
        series['hca-rollout/optimal_action_rate'],
        series['hca-rollout/episodes'],
      );
      const mc = episodesToThreshold(series['mc-rollout/optimal_action_rate'], series['mc-rollout/episodes']);
      results.push({ hca, mc });
      console.log(
        `seed ${seed}: episodes to rate ${THRESHOLD}: HCA ${hca}, Monte-Carlo ${mc}; final ${check.metric} = ${final[check.metric].toFixed(3)}`,
      );
      expect(series['hca/classifier_loss'].every(Number.isFinite)).toBe(true);
      if (check.atLeast !== undefined) expect(final[check.metric]).toBeGreaterThanOrEqual(check.atLeast);
      if (check.atMost !== undefined) expect(final[check.metric]).toBeLessThanOrEqual(check.atMost);
    },
    120_000,
  );

  it('HCA reaches the threshold in fewer episodes than Monte-Carlo (median over the seeds)', () => {
    expect(results).toHaveLength(3);
    expect(median(results.map((r) => r.hca))).toBeLessThan(median(results.map((r) => r.mc)));
  });
});
