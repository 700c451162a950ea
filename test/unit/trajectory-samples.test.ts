/**
 * Episodes cut out of a time-major batch for the trajectory viewer: a whole episode when one lies
 * inside the batch, else the longest segment, with each step's reward and credit in order.
 */
import { describe, expect, it } from 'vitest';
import type { VectorTrajectories } from '../../nodes/contracts.ts';
import { vectorEpisodeSamples } from '../../nodes/samples.ts';

/** One env copy per entry of `endsPerEnv`, `numSteps` steps; step t of copy e has reward 100e + t. */
function batch(numSteps: number, endsPerEnv: number[][]): VectorTrajectories {
  const n = endsPerEnv.length;
  const size = numSteps * n;
  const rewards = new Float32Array(size);
  const terminated = new Uint8Array(size);
  for (let t = 0; t < numSteps; t++) for (let e = 0; e < n; e++) rewards[t * n + e] = 100 * e + t;
  endsPerEnv.forEach((ends, e) => {
    for (const t of ends) terminated[t * n + e] = 1;
  });
  return {
    kind: 'vector',
    numEnvs: n,
    numSteps,
    observationSize: 1,
    numActions: 2,
    observations: new Float32Array(size),
    actions: new Int32Array(size),
    logProbs: new Float32Array(size),
    rewards,
    values: new Float32Array(size),
    terminated,
    truncated: new Uint8Array(size),
    truncationValues: new Float32Array(size),
    lastValues: new Float32Array(n),
  };
}

const range = (from: number, to: number, offset = 0) =>
  Array.from({ length: to - from + 1 }, (_, i) => offset + from + i);

describe('vectorEpisodeSamples', () => {
  it('cuts the first whole episode, else the longest segment, for each of the first copies', () => {
    const b = batch(10, [[2, 6, 8], [2], [7], [], [1, 3]]);
    const credit = { advantages: b.rewards.map((r) => -r), returns: b.rewards.map((r) => 2 * r) };
    const samples = vectorEpisodeSamples(b, credit, 'credit', 7);
    expect(samples.map((s) => s.kind === 'vector' && s.env)).toEqual([0, 1, 2, 3]);
    const rewards = samples.map((s) => (s.kind === 'vector' ? s.rewards : []));
    // Copy 0: the episode from step 3 to its end at step 6.
    expect(rewards[0]).toEqual(range(3, 6));
    // Copy 1: one end at step 2, so the episode that goes on from step 3 is the longer piece.
    expect(rewards[1]).toEqual(range(3, 9, 100));
    // Copy 2: one end at step 7, so the episode that ends there is the longer piece.
    expect(rewards[2]).toEqual(range(0, 7, 200));
    // Copy 3: no end at all, the whole batch.
    expect(rewards[3]).toEqual(range(0, 9, 300));
    const first = samples[0]!;
    expect(first.kind === 'vector' && first.advantages).toEqual(range(3, 6).map((r) => -r));
    expect(first.kind === 'vector' && first.returns).toEqual(range(3, 6).map((r) => 2 * r));
    expect(samples.map((s) => [s.nodeId, s.iteration, s.index])).toEqual([
      ['credit', 7, 0],
      ['credit', 7, 1],
      ['credit', 7, 2],
      ['credit', 7, 3],
    ]);
  });
});
