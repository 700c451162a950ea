import { describe, expect, it } from 'vitest';
import type { VectorTrajectories } from '../../nodes/contracts.ts';
import monteCarloNode, { computeMonteCarlo } from '../../nodes/credit/monte-carlo.ts';
import { nodeLibrary } from '../../nodes/index.ts';

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

describe('Monte-Carlo return', () => {
  // gamma 0.9
  it('bootstraps from V(s_T) at the batch end when bootstrap is on', () => {
    // G_2 = 3 + .9*2 = 4.8; G_1 = 2 + .9*4.8 = 6.32; G_0 = 1 + .9*6.32 = 6.688
    const { advantages, returns } = computeMonteCarlo(batch(), 0.9, true, 'value');
    close(returns, [6.688, 6.32, 4.8]);
    close(advantages, [6.688 - 0.5, 6.32 - 1, 4.8 - 1.5]);
  });

  it('uses no tail at the batch end without bootstrap, and no baseline with none', () => {
    // G_2 = 3; G_1 = 2 + 2.7 = 4.7; G_0 = 1 + .9*4.7 = 5.23
    const { advantages, returns } = computeMonteCarlo(batch(), 0.9, false, 'none');
    close(returns, [5.23, 4.7, 3]);
    close(advantages, [5.23, 4.7, 3]);
  });

  it('cuts the return at a termination and never bootstraps there', () => {
    const terminated = Uint8Array.from([0, 1, 0]);
    // G_2 = 3 + .9*2 = 4.8 (new episode, batch-end tail); G_1 = 2 (terminal); G_0 = 1 + 1.8 = 2.8
    const { returns } = computeMonteCarlo(batch({ terminated }), 0.9, true, 'none');
    close(returns, [2.8, 2, 4.8]);
  });

  it('bootstraps from V(final obs) at a truncation only when bootstrap is on', () => {
    const truncated = Uint8Array.from([1, 0, 0]);
    const truncationValues = Float32Array.from([10, 0, 0]);
    const on = computeMonteCarlo(batch({ truncated, truncationValues }), 0.9, true, 'value');
    // G_0 = 1 + .9*10 = 10; G_1 = 6.32; G_2 = 4.8
    close(on.returns, [10, 6.32, 4.8]);
    close(on.advantages, [9.5, 5.32, 3.3]);
    const off = computeMonteCarlo(batch({ truncated, truncationValues }), 0.9, false, 'value');
    // G_0 = 1; G_1 = 4.7; G_2 = 3
    close(off.returns, [1, 4.7, 3]);
  });

  it('keeps two interleaved envs apart (time-major layout)', () => {
    // index i = t*2 + e. env 0 rewards [1,1,1], terminates at t=1; env 1 rewards [0,5,2], truncated at t=0
    const b = batch({
      numEnvs: 2,
      numSteps: 3,
      observations: new Float32Array(6),
      actions: new Int32Array(6),
      logProbs: new Float32Array(6),
      rewards: Float32Array.from([1, 0, 1, 5, 1, 2]),
      values: Float32Array.from([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]),
      terminated: Uint8Array.from([0, 0, 1, 0, 0, 0]),
      truncated: Uint8Array.from([0, 1, 0, 0, 0, 0]),
      truncationValues: Float32Array.from([0, 4, 0, 0, 0, 0]),
      lastValues: Float32Array.from([3, -1]),
    });
    const { advantages, returns } = computeMonteCarlo(b, 0.5, true, 'value');
    // env 0: G_2 = 1 + .5*3 = 2.5; G_1 = 1 (terminal); G_0 = 1 + .5 = 1.5
    // env 1: G_2 = 2 + .5*(-1) = 1.5; G_1 = 5 + .75 = 5.75; G_0 = 0 + .5*4 = 2 (truncated)
    close(returns, [1.5, 2, 1, 5.75, 2.5, 1.5]);
    close(advantages, [1.4, 1.8, 0.7, 5.35, 2, 0.9]);
  });

  it('is a registered node with documented defaults', async () => {
    expect(nodeLibrary).toContain(monteCarloNode);
    const params = monteCarloNode.params.parse({});
    expect(params).toEqual({ gamma: 0.99, bootstrap: true, baseline: 'value' });
    expect(() => monteCarloNode.params.parse({ gamma: 1.5 })).toThrow();
  });
});
