import { describe, expect, it } from 'vitest';
import type { VectorEnv } from '../../nodes/contracts.ts';
import banditNode, { AmbiguousBanditVector } from '../../nodes/environment/ambiguous-bandit.ts';
import bitFlipNode, { BitFlipVector } from '../../nodes/environment/bit-flip.ts';
import delayedNode, { DelayedEffectVector } from '../../nodes/environment/delayed-effect.ts';
import { nodeLibrary } from '../../nodes/index.ts';
import type { NodeContext } from '../../src-main/engine/node-api.ts';
import { Rng } from '../../src-main/engine/rng.ts';

/** The fields of a NodeContext an environment node uses; the rest is never touched by env nodes. */
function envContext(seed: number): NodeContext {
  return { nodeId: 'env', label: 'env', rng: new Rng(seed), inputs: {} } as unknown as NodeContext;
}

describe('env.bit-flip', () => {
  it('observes state ++ goal and starts away from the goal', () => {
    const env = new BitFlipVector('env', 8, 4, new Rng(1));
    expect(env.observationSize).toBe(8);
    expect(env.numActions).toBe(4);
    const obs = env.observations();
    for (let e = 0; e < 8; e++) {
      const row = Array.from(obs.subarray(e * 8, e * 8 + 8));
      expect(row.slice(0, 4)).toEqual(Array.from(env.bits.subarray(e * 4, e * 4 + 4)));
      expect(row.slice(4)).toEqual(Array.from(env.goals.subarray(e * 4, e * 4 + 4)));
      expect(row.slice(0, 4)).not.toEqual(row.slice(4));
    }
  });

  it('pays -1 per step and 0 on reaching the goal, then resets', () => {
    const env = new BitFlipVector('env', 1, 5, new Rng(7));
    // Set a known start: bits 00000, goal 10100.
    env.bits.set([0, 0, 0, 0, 0]);
    env.goals.set([1, 0, 1, 0, 0]);
    let s = env.step(Int32Array.from([0]));
    expect(s.rewards[0]).toBe(-1);
    expect(s.terminated[0]).toBe(0);
    expect(s.truncated[0]).toBe(0);
    expect(Array.from(env.bits)).toEqual([1, 0, 0, 0, 0]);
    s = env.step(Int32Array.from([2]));
    expect(s.rewards[0]).toBe(0);
    expect(s.terminated[0]).toBe(1);
    expect(s.truncated[0]).toBe(0);
    expect(Array.from(s.finalObservations)).toEqual([1, 0, 1, 0, 0, 1, 0, 1, 0, 0]);
    // Auto-reset: a fresh episode, not at its goal, clock at zero.
    expect(env.elapsed[0]).toBe(0);
    expect(Array.from(env.bits)).not.toEqual(Array.from(env.goals));
  });

  it('truncates (not terminates) after n steps away from the goal', () => {
    const env = new BitFlipVector('env', 1, 3, new Rng(3));
    env.bits.set([0, 0, 0]);
    env.goals.set([1, 1, 1]);
    const flips = [0, 0, 0]; // 100, 000, 100: never at the goal
    const ends: [number, number, number][] = [];
    for (const a of flips) {
      const s = env.step(Int32Array.from([a]));
      ends.push([s.rewards[0], s.terminated[0], s.truncated[0]]);
    }
    expect(ends).toEqual([
      [-1, 0, 0],
      [-1, 0, 0],
      [-1, 0, 1],
    ]);
    expect(env.elapsed[0]).toBe(0);
  });

  it('rejects actions out of range', () => {
    const env = new BitFlipVector('env', 1, 3, new Rng(3));
    expect(() => env.step(Int32Array.from([3]))).toThrow(/out of range/);
  });

  it('continues identically after a save/load round trip', async () => {
    const params = bitFlipNode.params.parse({ numEnvs: 3, n: 6 });
    const ctxA = envContext(11);
    const a = await bitFlipNode.create(params, ctxA);
    const envA = a.components?.env as VectorEnv;
    const rng = new Rng(5);
    const act = () => Int32Array.from({ length: 3 }, () => rng.int(6));
    for (let i = 0; i < 10; i++) envA.step(act());
    const saved = await a.saveState?.();
    if (!saved) throw new Error('bit-flip saves no state');
    // As the runtime does on resume: create, then restore the node's RNG stream and its state.
    const ctxB = envContext(99);
    const b = await bitFlipNode.create(params, ctxB);
    const envB = b.components?.env as VectorEnv;
    ctxB.rng.setState(ctxA.rng.state());
    await b.loadState?.(saved);
    expect(Array.from(envB.observations())).toEqual(Array.from(envA.observations()));
    for (let i = 0; i < 20; i++) {
      const actions = act();
      const sa = envA.step(actions);
      const ra = [Array.from(sa.rewards), Array.from(sa.terminated), Array.from(sa.truncated)];
      const sb = envB.step(actions);
      expect([Array.from(sb.rewards), Array.from(sb.terminated), Array.from(sb.truncated)]).toEqual(ra);
      expect(Array.from(envB.observations())).toEqual(Array.from(envA.observations()));
    }
  });

  it('is registered and wires as a vector/discrete Env', () => {
    expect(nodeLibrary).toContain(bitFlipNode);
    expect(bitFlipNode.outputs[0].provides).toEqual({ observation: 'vector', action: 'discrete' });
    expect(() => bitFlipNode.params.parse({ n: 0 })).toThrow();
  });
});

describe('env.ambiguous-bandit', () => {
  it('swaps to the other state with frequency close to eps and pays by the state reached', () => {
    const env = new AmbiguousBanditVector('env', 1000, [2, 1], 1.5, 0.1, new Rng(42));
    const actions = Int32Array.from({ length: 1000 }, (_, e) => e % 2);
    let swaps = 0;
    let wrongEnds = 0;
    let wrongFinal = 0;
    const sum = [0, 0];
    const count = [0, 0];
    for (let i = 0; i < 100; i++) {
      const s = env.step(actions);
      for (let e = 0; e < 1000; e++) {
        const state = env.landed[e];
        if (s.terminated[e] !== 1 || s.truncated[e] !== 0) wrongEnds++;
        if (s.finalObservations[e * 3 + 1 + state] !== 1) wrongFinal++;
        if (state !== actions[e]) swaps++;
        sum[state] += s.rewards[e];
        count[state]++;
      }
    }
    expect([wrongEnds, wrongFinal]).toEqual([0, 0]);
    // 100k draws: the std of the swap rate is ~0.001, of each mean ~0.007.
    expect(Math.abs(swaps / 100_000 - 0.1)).toBeLessThan(0.005);
    expect(sum[0] / count[0]).toBeCloseTo(2, 1);
    expect(sum[1] / count[1]).toBeCloseTo(1, 1);
    // Every episode starts in the same observed state.
    expect(Array.from(env.observations().subarray(0, 6))).toEqual([1, 0, 0, 1, 0, 0]);
  });

  it('never swaps with eps 0, always with eps 1', () => {
    for (const eps of [0, 1]) {
      const env = new AmbiguousBanditVector('env', 4, [2, 1], 0, eps, new Rng(1));
      const s = env.step(Int32Array.from([0, 1, 0, 1]));
      const expected = eps === 0 ? [0, 1, 0, 1] : [1, 0, 1, 0];
      expect(Array.from(env.landed)).toEqual(expected);
      expect(Array.from(s.rewards)).toEqual(expected.map((k) => (k === 0 ? 2 : 1)));
    }
  });

  it('is registered with the paper defaults', () => {
    expect(nodeLibrary).toContain(banditNode);
    expect(banditNode.params.parse({})).toEqual({ numEnvs: 4, eps: 0.1, mean0: 2, mean1: 1, std: 1.5 });
    expect(banditNode.outputs[0].provides).toEqual({ observation: 'vector', action: 'discrete' });
  });
});

describe('env.delayed-effect', () => {
  it('first action 0 gives a final +1, action 1 a final -1, through aliased states', () => {
    const env = new DelayedEffectVector('env', 2, 3, 0, new Rng(1));
    expect(Array.from(env.observations())).toEqual([1, 0, 1, 0]);
    const log: number[][] = [];
    const obs: number[][] = [];
    for (let t = 0; t < 4; t++) {
      const s = env.step(Int32Array.from(t === 0 ? [0, 1] : [t % 2, 0]));
      log.push([...s.rewards, ...s.terminated, ...s.truncated]);
      obs.push(Array.from(env.observations()));
    }
    expect(log).toEqual([
      [0, 0, 0, 0, 0, 0],
      [0, 0, 0, 0, 0, 0],
      [0, 0, 0, 0, 0, 0],
      [1, -1, 1, 1, 0, 0],
    ]);
    // Aliased states all look alike whatever the first choice; after the end, auto-reset to the start.
    expect(obs.slice(0, 3)).toEqual([
      [0, 1, 0, 1],
      [0, 1, 0, 1],
      [0, 1, 0, 1],
    ]);
    expect(obs[3]).toEqual([1, 0, 1, 0]);
  });

  it('continues identically after a save/load round trip (noise included)', async () => {
    const params = delayedNode.params.parse({ numEnvs: 3 });
    const ctxA = envContext(4);
    const a = await delayedNode.create(params, ctxA);
    const envA = a.components?.env as VectorEnv;
    const acts = Int32Array.from([0, 1, 1]);
    for (let i = 0; i < 6; i++) envA.step(acts);
    const saved = await a.saveState?.();
    if (!saved) throw new Error('delayed-effect saves no state');
    const ctxB = envContext(77);
    const b = await delayedNode.create(params, ctxB);
    const envB = b.components?.env as VectorEnv;
    ctxB.rng.setState(ctxA.rng.state());
    await b.loadState?.(saved);
    for (let i = 0; i < 9; i++) {
      const sa = Array.from(envA.step(acts).rewards);
      expect(Array.from(envB.step(acts).rewards)).toEqual(sa);
    }
    expect(nodeLibrary).toContain(delayedNode);
    expect(delayedNode.params.parse({})).toEqual({ numEnvs: 4, n: 3, sigma: 2 });
  });
});
