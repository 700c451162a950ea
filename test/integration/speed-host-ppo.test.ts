import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { createRegistry } from '../../nodes/index.ts';
import { executeRun } from '../../src-main/engine/runtime/run.ts';
import { loadTemplate } from '../helpers/graphs.ts';

/** The CartPole PPO template with the update forced onto the host or the TensorFlow.js path. */
async function train(updateOn: 'host' | 'tensor', iterations: number) {
  const graph = loadTemplate('cartpole-ppo');
  graph.nodes = graph.nodes.map((n) => (n.id === 'ppo' ? { ...n, params: { ...n.params, updateOn } } : n));
  const result = await executeRun({
    graph,
    registry: createRegistry(),
    seed: 2,
    iterations,
    backend: 'wasm',
  });
  expect(result.status).toBe('finished');
  return result.metrics;
}

const FIGURES = [
  'ppo/policy_loss',
  'ppo/value_loss',
  'ppo/entropy',
  'ppo/approx_kl',
  'ppo/clip_fraction',
  'ppo/grad_norm',
  'rollout/episode_return_mean',
];

describe('trainer.ppo host update path (small MLPs)', () => {
  it('trains like the tensor path, deterministically, without leaking tensors', async () => {
    const before = tf.memory().numTensors;
    const host = await train('host', 4);
    // Variables and engine state are freed at the end of the run.
    expect(tf.memory().numTensors).toBe(before);
    const again = await train('host', 4);
    expect(again.map((r) => r.metrics)).toEqual(host.map((r) => r.metrics));
    const tensor = await train('tensor', 4);
    expect(tf.memory().numTensors).toBe(before);
    for (let i = 0; i < host.length; i++) {
      for (const name of FIGURES) {
        const a = host[i].metrics[name]!;
        const b = tensor[i].metrics[name]!;
        expect(Number.isFinite(a), name).toBe(true);
        // float32 both ways, different kernels and summation orders, over 4 iterations x 16 Adam steps.
        expect(Math.abs(a - b), `iteration ${i} ${name}: host ${a} vs tensor ${b}`).toBeLessThanOrEqual(
          2e-3 * Math.max(1, Math.abs(b)),
        );
      }
    }
    // The update really changes the policy: losses are not constant across iterations.
    expect(host[3].metrics['ppo/value_loss']).not.toBe(host[0].metrics['ppo/value_loss']);
  }, 120_000);
});
