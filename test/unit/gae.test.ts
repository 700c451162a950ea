import { describe, expect, it } from 'vitest';
import type { VectorTrajectories } from '../../nodes/contracts.ts';
import { computeGae } from '../../nodes/credit/gae.ts';

/** A one-env batch of 3 steps; rewards [1,2,3], V(s) [0.5,1,1.5], V(s_3) = 2. */
function batch(overrides: Partial<VectorTrajectories> = {}): VectorTrajectories {
  return {
    kind: 'vector',
    numEnvs: 1,
    numSteps: 3,
    observationSize: 1,
    numActions: 2,
    observations: new Float32Array(3),
    actions: new Int32Array(3),
    logProbs: new Float32Array(3),
    rewards: Float32Array.from([1, 2, 3]),
    values: Float32Array.from([0.5, 1, 1.5]),
    terminated: new Uint8Array(3),
    truncated: new Uint8Array(3),
    truncationValues: new Float32Array(3),
    lastValues: Float32Array.from([2]),
    ...overrides,
  };
}

const close = (actual: Float32Array, expected: number[]) => {
  expect(actual.length).toBe(expected.length);
  for (const [i, e] of expected.entries()) expect(actual[i]).toBeCloseTo(e, 5);
};

describe('GAE(lambda)', () => {
  // gamma 0.9, lambda 0.8 => gamma*lambda = 0.72
  it('bootstraps from V(s_T) when no episode ends', () => {
    // delta = [1 + .9*1 - .5, 2 + .9*1.5 - 1, 3 + .9*2 - 1.5] = [1.4, 2.35, 3.3]
    const { advantages, returns } = computeGae(batch(), 0.9, 0.8);
    close(advantages, [1.4 + 0.72 * (2.35 + 0.72 * 3.3), 2.35 + 0.72 * 3.3, 3.3]);
    close(returns, [4.80272 + 0.5, 4.726 + 1, 3.3 + 1.5]);
  });

  it('does not bootstrap or carry credit across a termination', () => {
    // step 1 terminates: delta_1 = 2 - 1 = 1, A_1 = 1; step 2 starts a new episode
    const { advantages } = computeGae(batch({ terminated: Uint8Array.from([0, 1, 0]) }), 0.9, 0.8);
    close(advantages, [1.4 + 0.72 * 1, 1, 3.3]);
  });

  it('bootstraps from the final observation at a truncation (time limit)', () => {
    // step 1 truncated with V(final obs) = 4: delta_1 = 2 + .9*4 - 1 = 4.6, no credit from step 2
    const { advantages } = computeGae(
      batch({ truncated: Uint8Array.from([0, 1, 0]), truncationValues: Float32Array.from([0, 4, 0]) }),
      0.9,
      0.8,
    );
    close(advantages, [1.4 + 0.72 * 4.6, 4.6, 3.3]);
  });

  it('keeps interleaved environments apart (index t * numEnvs + env)', () => {
    // env 0 as the first case; env 1: rewards [0,0,1], V = 0, terminates at the last step.
    const two = batch({
      numEnvs: 2,
      rewards: Float32Array.from([1, 0, 2, 0, 3, 1]),
      values: Float32Array.from([0.5, 0, 1, 0, 1.5, 0]),
      terminated: Uint8Array.from([0, 0, 0, 0, 0, 1]),
      truncated: new Uint8Array(6),
      truncationValues: new Float32Array(6),
      lastValues: Float32Array.from([2, 7]),
    });
    const { advantages } = computeGae(two, 0.9, 0.8);
    close(advantages, [4.80272, 0.72 * 0.72 * 1, 4.726, 0.72 * 1, 3.3, 1]);
  });

  it('with lambda = 1 and gamma = 1 gives the Monte-Carlo return minus V', () => {
    const { advantages } = computeGae(batch({ terminated: Uint8Array.from([0, 0, 1]) }), 1, 1);
    close(advantages, [6 - 0.5, 5 - 1, 3 - 1.5]);
  });
});
