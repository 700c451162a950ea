/**
 * HER on bit flipping (n = 8, 16 copies x 16 steps per iteration): PPO learning from goal-relabelled,
 * importance-weighted credit (credit.her) reaches a success rate that PPO with GAE on the same env steps
 * does not reach. The 5-seed comparison at full length is `compareOnBitFlip` in test/bench/credit.ts.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { createRegistry } from '../../nodes/index.ts';
import { compileGraph } from '../../src-main/engine/compiler.ts';
import { executeRun } from '../../src-main/engine/runtime/run.ts';
import { type BitFlipArm, bitFlipPipeline } from '../bench/credit.ts';

const ITERATIONS = 30;
const SEED = 1;

async function train(arm: BitFlipArm) {
  const graph = bitFlipPipeline(arm, ITERATIONS);
  expect(compileGraph(graph, createRegistry()).diagnostics).toEqual([]);
  const success: number[] = [];
  const tensors: number[] = [];
  const result = await executeRun({
    graph,
    registry: createRegistry(),
    backend: 'wasm',
    seed: SEED,
    onEvent: (event) => {
      if (event.type !== 'metrics') return;
      success.push(event.record.metrics['rollout/success_rate']);
      tensors.push(tf.memory().numTensors);
    },
  });
  expect(result.error).toBeUndefined();
  expect(success).toHaveLength(ITERATIONS);
  const last = success.slice(-5).reduce((a, b) => a + b, 0) / 5;
  return { last, tensors, envSteps: result.metrics.at(-1)?.envSteps ?? 0 };
}

describe('credit.her on env.bit-flip (n = 8, WebAssembly backend)', () => {
  it(`seed ${SEED}: HER reaches a success rate that GAE does not in the same ${ITERATIONS * 256} env steps`, async () => {
    const her = await train('her');
    const gae = await train('gae');
    console.log(
      `bit-flip n=8 seed ${SEED}, ${her.envSteps} env steps: success over the last 5 iterations HER ${her.last.toFixed(3)}, GAE ${gae.last.toFixed(3)}`,
    );
    expect(her.envSteps).toBe(gae.envSteps);
    // The relabelling node adds no tensors that outlive an iteration.
    expect(new Set(her.tensors.slice(1)).size).toBe(1);
    expect(her.last).toBeGreaterThan(0.2);
    expect(gae.last).toBeLessThan(0.1);
  }, 120_000);
});
