/**
 * world.latent: the encoder / latent transition / decoder model learns known linear dynamics through its
 * latent, its heads disagree more off the data, tensors are freed, and save/load round-trips.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { TransitionBuffer } from '../../nodes/world/imagination.ts';
import { LatentWorldModel, latentErrorOnBatch } from '../../nodes/world/latent.ts';
import { startBackend } from '../../src-main/engine/backend.ts';
import type { Tf } from '../../src-main/engine/node-api.ts';
import { Rng } from '../../src-main/engine/rng.ts';

let tf: Tf;
beforeAll(async () => {
  tf = (await startBackend('wasm')).tf;
});

// s' = A s + b_a, r = s_0 - s_1.
const linearStep = (s: number[], a: number): number[] => [
  0.9 * s[0] + 0.2 * s[1] + (a === 0 ? 0.1 : -0.1),
  -0.1 * s[0] + 0.8 * s[1] + (a === 0 ? 0 : 0.05),
];

function fill(buffer: TransitionBuffer, count: number, rng: Rng): Int32Array {
  const rows = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const slot = buffer.cursor;
    const s = [rng.uniform(-1, 1), rng.uniform(-1, 1)];
    const a = rng.int(2);
    buffer.observations.set(s, slot * 2);
    buffer.nextObservations.set(linearStep(s, a), slot * 2);
    buffer.actions[slot] = a;
    buffer.rewards[slot] = s[0] - s[1];
    buffer.hasNext[slot] = 1;
    rows[i] = slot;
    buffer.cursor += 1;
    buffer.size += 1;
  }
  return rows;
}

const options = {
  latentSize: 6,
  hidden: 32,
  transitionHeads: 3,
  consistencyWeight: 1,
  lr: 3e-3,
  batchSize: 64,
};

describe('LatentWorldModel on known linear dynamics', () => {
  let model: LatentWorldModel;
  let buffer: TransitionBuffer;
  let heldOut: Int32Array;

  beforeAll(async () => {
    const rng = new Rng(3);
    model = new LatentWorldModel(tf, 2, 2, options, rng, 'latent');
    buffer = new TransitionBuffer(3000, 2);
    fill(buffer, 2000, rng);
    heldOut = fill(buffer, 200, new Rng(77));
    buffer.size = 2000; // the held-out rows sit past the training data
    buffer.cursor = 2000;
    model.fitNormalisers(buffer);
    await model.train(buffer, 250, rng);
  }, 60_000);

  it('predicts held-out next observations through encode -> transition -> decode', () => {
    const untrained = new LatentWorldModel(tf, 2, 2, options, new Rng(4), 'latent');
    untrained.fitNormalisers(buffer);
    const heldBuffer = buffer; // rows past `size` are still readable by index
    const trained = latentErrorOnBatch(model, heldBuffer, heldOut).error;
    const baseline = latentErrorOnBatch(untrained, heldBuffer, heldOut).error;
    untrained.dispose();
    // Normalised one-step MSE: ~0.3 before training; a few thousandths after.
    expect(baseline).toBeGreaterThan(0.05);
    expect(trained).toBeLessThan(0.01);
  });

  it('predicts rewards and no termination, and its heads disagree more far from the data', () => {
    const z = new Float32Array(6);
    const out = {
      nextStates: new Float32Array(6),
      rewards: new Float32Array(1),
      doneProbs: new Float32Array(1),
      disagreement: new Float32Array(1),
    };
    model.encode(Float32Array.of(0.4, -0.3), 1, z);
    model.predict(z, Int32Array.of(1), 1, out);
    expect(Math.abs(out.rewards[0] - 0.7)).toBeLessThan(0.1);
    expect(out.doneProbs[0]).toBeLessThan(0.05);
    const inside = out.disagreement[0];
    model.encode(Float32Array.of(9, -9), 1, z);
    model.predict(z, Int32Array.of(1), 1, out);
    expect(out.disagreement[0]).toBeGreaterThan(3 * inside);
  });

  it('keeps tf.memory().numTensors flat and round-trips save/load', async () => {
    const rng = new Rng(8);
    await model.train(buffer, 1, rng);
    const before = tf.memory().numTensors;
    await model.train(buffer, 2, rng);
    expect(tf.memory().numTensors).toBe(before);

    const copy = new LatentWorldModel(tf, 2, 2, options, new Rng(123), 'latent');
    copy.loadArrays(structuredClone(await model.saveArrays()), model.optimiserStep);
    await copy.syncHost();
    expect(latentErrorOnBatch(copy, buffer, heldOut)).toEqual(latentErrorOnBatch(model, buffer, heldOut));
    const lossA = await model.train(buffer, 2, new Rng(5));
    const lossB = await copy.train(buffer, 2, new Rng(5));
    expect(lossB).toBe(lossA);
    copy.dispose();
  });
});
