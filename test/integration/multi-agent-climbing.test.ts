/**
 * The climbing game (Claus & Boutilier 1998) separates independent from centralised learners: two PPO
 * agents that each learn their own policy settle on a safe suboptimal joint action, while one
 * centralised controller over the joint action finds the optimum (a, a) = 11.
 *
 * Measured on wasm, 60 iterations x 512 games, 5 seeds (final payoff / share of optimal games):
 *   independent PPO, decentralised critics (IPPO):  6.2-7.0 / 0.00 on all 5 seeds
 *   independent actors, centralised critic (MAPPO): 6.7-7.0 / 0.00 on all 5 seeds
 *   independent actors, COMA counterfactual credit: 6.1-6.8 / 0.00 on all 5 seeds
 *   one centralised controller over joint actions:  10.9-11.0 / 1.00 on all 5 seeds
 * A centralised critic (V(s) or COMA's Q(s, u)) does not fix this relative overgeneralisation: in a
 * stateless game V(s) is a constant and COMA's baseline leaves the expected policy gradient unchanged.
 * This test runs 40 iterations (the gap is settled by then) on two seeds of the two extremes.
 */
import { describe, expect, it } from 'vitest';
import { createRegistry } from '../../nodes/index.ts';
import { compileGraph } from '../../src-main/engine/compiler.ts';
import { executeRun } from '../../src-main/engine/runtime/run.ts';
import { type MatrixLearner, matrixGameGraph } from '../helpers/multi-agent-graphs.ts';

const ITERATIONS = 40;

async function finalFigures(learner: MatrixLearner, seed: number) {
  const graph = matrixGameGraph(learner, { iterations: ITERATIONS });
  expect(compileGraph(graph, createRegistry()).diagnostics).toEqual([]);
  const result = await executeRun({ graph, registry: createRegistry(), backend: 'wasm', seed });
  expect(result.error).toBeUndefined();
  const last = result.metrics.at(-1)?.metrics ?? {};
  const figures = { payoff: last['rollout/payoff_mean'], optimal: last['rollout/optimal_joint_rate'] };
  console.log(
    `${learner} seed ${seed}: payoff ${figures.payoff.toFixed(2)}, optimal ${figures.optimal.toFixed(2)}`,
  );
  return figures;
}

describe('climbing game: independent vs centralised learners (WebAssembly backend)', () => {
  it.each([1, 2])(
    'seed %i: independent PPO learners settle on a safe suboptimal joint action',
    async (seed) => {
      const { payoff, optimal } = await finalFigures('ippo', seed);
      // (b, b) = 7, (b, c) = 6 and (c, c) = 5 are the safe equilibria; the optimum pays 11.
      expect(optimal).toBeLessThan(0.05);
      expect(payoff).toBeGreaterThan(4);
      expect(payoff).toBeLessThan(8);
    },
    60_000,
  );

  it.each([1, 2])(
    'seed %i: a centralised controller over the joint action reaches the optimum (a, a) = 11',
    async (seed) => {
      const { payoff, optimal } = await finalFigures('joint', seed);
      expect(optimal).toBeGreaterThan(0.9);
      expect(payoff).toBeGreaterThan(10);
    },
    60_000,
  );
});
