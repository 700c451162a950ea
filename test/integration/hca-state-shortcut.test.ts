/**
 * State-conditioned HCA on the shortcut chain (Harutyunyan et al. 2019): PPO with credit.hca-state takes
 * the shortcut reliably in fewer episodes than PPO with Monte-Carlo credit (return minus a learned V).
 * CI budget: seeds 1 and 2. Over seeds 1-5 (test/bench/credit.ts) HCA-state needed 328, 430, 478, 386,
 * 418 episodes (median 418) and Monte-Carlo 513, 559, 461, 596, 429 (median 513): seed 3 goes the
 * other way.
 */
import { describe, expect, it } from 'vitest';
import { createRegistry } from '../../nodes/index.ts';
import { compileGraph } from '../../src-main/engine/compiler.ts';
import { episodesToThreshold, SHORTCUT, shortcutPipeline } from '../bench/credit.ts';

const ITERATIONS = 40;

describe('credit.hca-state on env.shortcut (n = 5, eps = 0.3, WebAssembly backend)', () => {
  it.each([1, 2])(
    'seed %i: HCA-state reaches a 0.9 shortcut rate in fewer episodes than Monte-Carlo',
    async (seed) => {
      const hcaGraph = shortcutPipeline('hca-state', ITERATIONS);
      const mcGraph = shortcutPipeline('monte-carlo', ITERATIONS);
      expect(compileGraph(hcaGraph, createRegistry()).diagnostics).toEqual([]);
      const hca = await episodesToThreshold(hcaGraph, seed, SHORTCUT.metric, SHORTCUT.threshold);
      const mc = await episodesToThreshold(mcGraph, seed, SHORTCUT.metric, SHORTCUT.threshold);
      console.log(
        `seed ${seed}: episodes to shortcut rate ${SHORTCUT.threshold}: HCA-state ${hca.episodesToThreshold}, Monte-Carlo ${mc.episodesToThreshold}; final rates ${hca.finalRate.toFixed(3)} / ${mc.finalRate.toFixed(3)}`,
      );
      expect(hca.episodesToThreshold).not.toBeNull();
      expect(hca.finalRate).toBeGreaterThanOrEqual(SHORTCUT.threshold);
      expect(hca.episodesToThreshold!).toBeLessThan(mc.episodesToThreshold ?? Number.POSITIVE_INFINITY);
    },
    60_000,
  );
});
