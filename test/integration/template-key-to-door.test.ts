/**
 * Template 5: key-to-door, GAE and Monte-Carlo pipelines in one graph. Each seed trains the template as
 * shipped (CI budget: fewer iterations) and checks its card's promise; on every seed GAE must take the
 * key reliably in fewer episodes than Monte-Carlo. The 5-seed figures are in test/bench/credit.ts.
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
// CI budget: 50 of the card's 80 iterations.
const ITERATIONS = 50;

function episodesToThreshold(rates: number[], episodes: number[]): number {
  let total = 0;
  for (let i = 0; i < rates.length; i++) {
    total += episodes[i];
    const window = rates.slice(Math.max(0, i + 1 - SMOOTH), i + 1);
    if (window.length === SMOOTH && window.reduce((a, b) => a + b, 0) / SMOOTH >= THRESHOLD) return total;
  }
  return Number.POSITIVE_INFINITY;
}

describe('template: key-to-door (GAE vs Monte-Carlo)', () => {
  const graph = loadTemplate('key-to-door');
  const check = (graph.template as unknown as { check: TemplateCheck }).check;

  it('compiles with no diagnostics', () => {
    expect(compileGraph(graph, createRegistry()).diagnostics).toEqual([]);
  });

  it.each([2, 3])(
    'seed %i: GAE solves the task and Monte-Carlo is slower',
    async (seed) => {
      const series: Record<string, number[]> = {};
      const result = await executeRun({
        graph,
        registry: createRegistry(),
        backend: 'wasm',
        seed,
        iterations: ITERATIONS,
        onEvent: (event) => {
          if (event.type !== 'metrics') return;
          for (const name of [
            'gae-rollout/key_rate',
            'mc-rollout/key_rate',
            'gae-rollout/episodes',
            'mc-rollout/episodes',
          ]) {
            series[name] ??= [];
            series[name].push(event.record.metrics[name] ?? Number.NaN);
          }
        },
      });
      expect(result.error).toBeUndefined();
      expect(result.status).toBe('finished');
      const final = result.metrics.at(-1)!.metrics;
      const gae = episodesToThreshold(series['gae-rollout/key_rate'], series['gae-rollout/episodes']);
      const mc = episodesToThreshold(series['mc-rollout/key_rate'], series['mc-rollout/episodes']);
      console.log(
        `seed ${seed}: episodes to key rate ${THRESHOLD}: GAE ${gae}, Monte-Carlo ${mc}; final ${check.metric} = ${final[check.metric].toFixed(3)}, mc = ${final['mc-rollout/key_rate'].toFixed(3)}`,
      );
      if (check.atLeast !== undefined) expect(final[check.metric]).toBeGreaterThanOrEqual(check.atLeast);
      expect(gae).toBeLessThan(mc);
    },
    120_000,
  );
});
