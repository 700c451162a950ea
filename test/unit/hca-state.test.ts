import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { DiscretePolicy, VectorTrajectories } from '../../nodes/contracts.ts';
import hcaStateNode, { hcaStateAdvantages, statePairs } from '../../nodes/credit/hca-state.ts';
import { Rng } from '../../src-main/engine/rng.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** One copy, observation = [position]; a 2-step episode (t = 0, 1), then a step cut off by the batch. */
function batch(): VectorTrajectories {
  return {
    kind: 'vector',
    numEnvs: 1,
    numSteps: 3,
    observationSize: 1,
    numActions: 2,
    observations: Float32Array.from([0, 1, 0]),
    actions: Int32Array.from([1, 0, 1]),
    logProbs: Float32Array.from([Math.log(0.5), Math.log(0.25), Math.log(0.5)]),
    rewards: Float32Array.from([2, 4, 8]),
    values: new Float32Array(3),
    terminated: Uint8Array.from([0, 1, 0]),
    truncated: new Uint8Array(3),
    truncationValues: new Float32Array(3),
    lastValues: new Float32Array(1),
    finalObservations: Float32Array.from([0, 9, 0]),
  };
}

describe('state-conditioned HCA', () => {
  it('pairs each step with the states reached after it, within its episode', () => {
    const { pairs, features } = statePairs(batch(), 16);
    // step 0: k=0 reaches x_1 = 1, k=1 reaches the final observation 9; step 1: k=0 reaches 9
    expect(pairs).toEqual([
      { step: 0, k: 0, next: 0 },
      { step: 0, k: 1, next: 1 },
      { step: 1, k: 0, next: 1 },
    ]);
    expect(Array.from(features)).toEqual([0, 1, 0, 9, 1, 9]);
    expect(statePairs(batch(), 1).pairs).toHaveLength(2);
  });

  it('A_s = sum_k gamma^k (min(h/pi, cap) - 1) r_{s+k}', () => {
    const b = batch();
    const { pairs } = statePairs(b, 16);
    // step 0 (pi 0.5): h = 0.5 -> 0 * 2; h = 1 -> (2 - 1) * 0.9 * 4 = 3.6; step 1 (pi 0.25): h 0.75 -> 2 * 4
    const a = hcaStateAdvantages(b, pairs, Float32Array.from([0.5, 1, 0.75]), 0.9, 10);
    expect(a[0]).toBeCloseTo(3.6, 5);
    expect(a[1]).toBeCloseTo(8, 5);
    expect(a[2]).toBe(0);
    // the cap: h/pi = 3 capped at 2 -> (2 - 1) * 4
    expect(hcaStateAdvantages(b, pairs, Float32Array.from([0.5, 1, 0.75]), 0.9, 2)[1]).toBeCloseTo(4, 5);
  });

  it('the node trains h without leaking tensors', async () => {
    const logits = (obs: tf.Tensor2D) => tf.zeros([obs.shape[0], 2]) as tf.Tensor2D;
    const policy = {
      nodeId: 'policy',
      observationSize: 1,
      numActions: 2,
      logits,
    } as unknown as DiscretePolicy;
    const ctx = {
      nodeId: 'hcas',
      label: 'hcas',
      tf,
      rng: new Rng(3),
      inputs: { policy },
      run: { seed: 1, totalIterations: 4, backend: 'cpu' },
      control: { point: async () => {} },
      log: () => {},
    };
    const node = await hcaStateNode.create(hcaStateNode.params.parse({ minibatchSize: 2 }), ctx);
    const counts: number[] = [];
    for (let iteration = 0; iteration < 4; iteration++) {
      const out = await node.step!({ trajectories: batch() }, { iteration, totalIterations: 4 });
      expect(out.metrics!.pairs).toBe(3);
      expect(Number.isFinite(out.metrics!.classifier_loss)).toBe(true);
      counts.push(tf.memory().numTensors);
    }
    expect(new Set(counts).size).toBe(1);
    expect(Object.keys((await node.saveState!()).arrays ?? {})).toContain('replay0_actions');
    node.dispose?.();
  });
});
