/**
 * Template 10: a frozen value prior from an earlier run (bundled checkpoint) as the shrinkage baseline of
 * sparse group rollouts. Each seed trains the template as shipped and checks its card's promise, and that
 * the node reported the weight it gave the prior every iteration.
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

describe('template: value prior for sparse group rollouts', () => {
  const graph = loadTemplate('value-prior');
  const check = (graph.template as unknown as { check: TemplateCheck }).check;

  it('compiles with no diagnostics', () => {
    expect(compileGraph(graph, createRegistry()).diagnostics).toEqual([]);
  });

  it.each([1, 2])(
    'seed %i: learns the optimal first action with the prior in the baseline',
    async (seed) => {
      // The card's full 60 iterations (a few seconds): only 4 episodes a step, so the final rate moves in
      // quarters and fewer iterations would test luck, not learning.
      const iterations = graph.run.iterations;
      const result = await executeRun({
        graph,
        registry: createRegistry(),
        backend: 'wasm',
        seed,
        iterations,
      });
      expect(result.error).toBeUndefined();
      expect(result.status).toBe('finished');
      const weights = result.metrics.map((r) => r.metrics['prior/prior_weight']);
      expect(weights).toHaveLength(iterations);
      expect(weights.every((w) => w > 0 && w <= 1)).toBe(true);
      // The reliability test moves the weight: it is not a constant.
      expect(Math.max(...weights) - Math.min(...weights)).toBeGreaterThan(0.1);
      const final = result.metrics.at(-1)!.metrics;
      console.log(
        `seed ${seed}: final ${check.metric} = ${final[check.metric].toFixed(3)}, prior weight ${Math.min(...weights).toFixed(2)}..${Math.max(...weights).toFixed(2)}`,
      );
      if (check.atLeast !== undefined) expect(final[check.metric]).toBeGreaterThanOrEqual(check.atLeast);
      if (check.atMost !== undefined) expect(final[check.metric]).toBeLessThanOrEqual(check.atMost);
    },
    60_000,
  );
});
