/** rollout.mix: two batches side by side per time step, advantages in the same layout. */
import { describe, expect, it } from 'vitest';
import type { Advantages, VectorTrajectories } from '../../nodes/contracts.ts';
import mix, { concatenateBatches } from '../../nodes/rollout/mix.ts';
import type { NodeContext } from '../../src-main/engine/node-api.ts';

/** numSteps x numEnvs batch whose entries encode (batch tag, t, env) so every move is visible. */
function batch(tag: number, numEnvs: number, numSteps: number): { b: VectorTrajectories; c: Advantages } {
  const size = numEnvs * numSteps;
  const code = (i: number) => tag * 100 + i; // i = t * numEnvs + env
  const obs = new Float32Array(size * 2);
  for (let i = 0; i < size; i++) obs.set([code(i), -code(i)], i * 2);
  return {
    b: {
      kind: 'vector',
      numEnvs,
      numSteps,
      observationSize: 2,
      numActions: 2,
      observations: obs,
      actions: Int32Array.from({ length: size }, (_, i) => code(i)),
      logProbs: Float32Array.from({ length: size }, (_, i) => -code(i)),
      rewards: Float32Array.from({ length: size }, (_, i) => code(i) + 0.5),
      values: Float32Array.from({ length: size }, (_, i) => code(i) + 0.25),
      terminated: Uint8Array.from({ length: size }, (_, i) => (i === 1 ? 1 : 0)),
      truncated: Uint8Array.from({ length: size }, (_, i) => (i === 2 ? 1 : 0)),
      truncationValues: Float32Array.from({ length: size }, (_, i) => (i === 2 ? tag : 0)),
      lastValues: Float32Array.from({ length: numEnvs }, (_, e) => tag * 10 + e),
      interventions: [{ t: 1, env: 0, rule: 'r', action: 0, effect: 'blocked' as const }],
    } satisfies VectorTrajectories,
    c: {
      advantages: Float32Array.from({ length: size }, (_, i) => code(i) / 1000),
      returns: Float32Array.from({ length: size }, (_, i) => code(i) * 2),
    },
  };
}

describe('rollout.mix', () => {
  it('interleaves env copies per time step: row t * (nA + nB) + env', () => {
    const a = batch(1, 2, 3); // codes 100..105
    const b = batch(2, 1, 3); // codes 200..202
    const { trajectories: m, advantages: c } = concatenateBatches(a.b, a.c, b.b, b.c);
    expect(m.numEnvs).toBe(3);
    expect(m.numSteps).toBe(3);
    // t=0: a env0, a env1, b env0; t=1: ...
    expect([...m.actions]).toEqual([100, 101, 200, 102, 103, 201, 104, 105, 202]);
    expect([...m.observations.subarray(0, 6)]).toEqual([100, -100, 101, -101, 200, -200]);
    expect([...m.terminated]).toEqual([0, 1, 0, 0, 0, 1, 0, 0, 0]);
    expect([...m.truncated]).toEqual([0, 0, 0, 1, 0, 0, 0, 0, 1]);
    expect([...m.truncationValues]).toEqual([0, 0, 0, 1, 0, 0, 0, 0, 2]);
    expect([...m.lastValues]).toEqual([10, 11, 20]);
    expect([...c.returns]).toEqual([200, 202, 400, 204, 206, 402, 208, 210, 404]);
    expect(c.advantages[2]).toBeCloseTo(0.2);
    expect(m.interventions?.map((x) => [x.t, x.env])).toEqual([
      [1, 0],
      [1, 2],
    ]);
  });

  it('refuses batches of different lengths, naming the node and field', async () => {
    const node = await mix.create({}, { nodeId: 'mix' } as NodeContext);
    const a = batch(1, 2, 3);
    const b = batch(2, 1, 4);
    await expect(
      node.step!(
        { a: a.b, advantagesA: a.c, b: b.b, advantagesB: b.c },
        { iteration: 0, totalIterations: 1 },
      ),
    ).rejects.toThrow(/^mix\.b: batch b has 4 steps per env and batch a 3/);
  });
});
