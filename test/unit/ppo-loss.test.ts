import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { explainedVariance, normalise, ppoLoss } from '../../nodes/trainer/ppo.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('PPO loss terms on fixed tensors', () => {
  // probs row 0 = [.5, .5], row 1 = [.75, .25]; actions [0, 1]; old probs [.4, .5] => ratios [1.25, 0.5]
  const inputs = () => ({
    logits: tf.tensor2d([
      [0, 0],
      [Math.log(3), 0],
    ]),
    actions: tf.tensor1d([0, 1], 'int32'),
    oldLogProbs: tf.tensor1d([Math.log(0.4), Math.log(0.5)]),
    advantages: tf.tensor1d([1, -1]),
    values: tf.tensor1d([1, 2]),
    oldValues: tf.tensor1d([0.5, 2.5]),
    returns: tf.tensor1d([2, 1]),
  });
  const options = { clip: 0.2, clipValueLoss: true, entropyCoef: 0.01, valueCoef: 0.5 };

  it('matches hand-computed values', async () => {
    const parts = tf.tidy(() => ppoLoss(tf, inputs(), options).map((t) => t.dataSync()[0]));
    const [loss, policy, value, entropy, kl, clipFraction] = parts;
    // clipped surrogate: max(-1.25, -1.2) = -1.2 ; max(0.5, 0.8) = 0.8 ; mean = -0.2
    expect(policy).toBeCloseTo(-0.2, 5);
    // both rows: unclipped error 1, clipped error 1.69 => 0.5 * 1.69
    expect(value).toBeCloseTo(0.845, 5);
    // mean(ln 2, -(.75 ln .75 + .25 ln .25))
    expect(entropy).toBeCloseTo((Math.LN2 + 0.5623351446) / 2, 5);
    // mean((r - 1) - ln r)
    expect(kl).toBeCloseTo((0.25 - Math.log(1.25) + (-0.5 - Math.log(0.5))) / 2, 5);
    expect(clipFraction).toBe(1);
    expect(loss).toBeCloseTo(-0.2 - 0.01 * ((Math.LN2 + 0.5623351446) / 2) + 0.5 * 0.845, 5);
  });

  it('uses the plain squared error when value clipping is off', () => {
    const value = tf.tidy(() => ppoLoss(tf, inputs(), { ...options, clipValueLoss: false })[2].dataSync()[0]);
    expect(value).toBeCloseTo(0.5, 6);
  });

  it('has zero policy gradient where the ratio is clipped in the advantage direction', () => {
    const x = inputs();
    const grad = tf.grad(
      (logits: tf.Tensor) => ppoLoss(tf, { ...x, logits: logits as tf.Tensor2D }, options)[1],
    )(x.logits);
    // both samples are clipped (ratio 1.25 with A > 0, ratio 0.5 with A < 0): no gradient flows
    expect(Array.from(grad.dataSync()).every((g) => Math.abs(g) < 1e-7)).toBe(true);
  });

  it('normalises with the unbiased standard deviation', () => {
    const out = normalise(Float32Array.from([1, 2, 3]));
    // mean 2, std (unbiased) 1
    expect(Array.from(out)).toEqual([-1, 0, 1].map((v) => Math.fround(v / (1 + 1e-8))));
  });

  it('computes explained variance', () => {
    expect(explainedVariance(Float32Array.from([1, 2, 3]), Float32Array.from([1, 2, 3]))).toBe(1);
    expect(explainedVariance(Float32Array.from([0, 0, 0]), Float32Array.from([1, 2, 3]))).toBeCloseTo(0, 6);
  });
});
