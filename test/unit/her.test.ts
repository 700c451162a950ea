import { describe, expect, it } from 'vitest';
import { isGoalConditionedEnv, type VectorTrajectories } from '../../nodes/contracts.ts';
import herNode, { importanceWeight, relabelGoals } from '../../nodes/credit/her.ts';
import { BitFlipVector } from '../../nodes/environment/bit-flip.ts';
import { Rng } from '../../src-main/engine/rng.ts';

// Two bits, one env copy, three steps (observation = bits ++ goal):
// t=0: [0,0 | 1,1] flip 0 -> [1,0], r = -1
// t=1: [1,0 | 1,1] flip 0 -> [0,0], r = -1, truncated (n = 2 steps); final observation [0,0 | 1,1]
// t=2: [0,1 | 1,1] flip 0 -> [1,1], r = 0, terminated; final observation [1,1 | 1,1]; s_T = [1,0 | 0,1]
function batch(): VectorTrajectories {
  const final = new Float32Array(3 * 4);
  final.set([0, 0, 1, 1], 4);
  final.set([1, 1, 1, 1], 8);
  return {
    kind: 'vector',
    numEnvs: 1,
    numSteps: 3,
    observationSize: 4,
    numActions: 2,
    observations: Float32Array.from([0, 0, 1, 1, 1, 0, 1, 1, 0, 1, 1, 1]),
    actions: Int32Array.from([0, 0, 0]),
    logProbs: new Float32Array(3),
    rewards: Float32Array.from([-1, -1, 0]),
    values: new Float32Array(3),
    terminated: Uint8Array.from([0, 0, 1]),
    truncated: Uint8Array.from([0, 1, 0]),
    truncationValues: new Float32Array(3),
    lastValues: new Float32Array(1),
    finalObservations: final,
    lastObservations: Float32Array.from([1, 0, 0, 1]),
  };
}

const env = new BitFlipVector('env', 1, 2, new Rng(1));
const row = (obs: Float32Array, r: number) => Array.from(obs.subarray(r * 4, r * 4 + 4));

describe('credit.her goal relabelling', () => {
  it('bit-flip exposes its goal space and reward r(achieved, goal)', () => {
    expect(isGoalConditionedEnv(env)).toBe(true);
    expect(env.goalSpace).toEqual({ achievedOffset: 0, goalOffset: 2, size: 2 });
    const a = Float32Array.from([1, 0, 1, 0]);
    expect(env.goalReward(a, 0, a, 2)).toBe(0);
    expect(env.goalReached(a, 0, a, 2)).toBe(true);
    expect(env.goalReward(a, 0, Float32Array.from([1, 1]), 0)).toBe(-1);
    expect(env.goalReached(a, 0, Float32Array.from([1, 1]), 0)).toBe(false);
  });

  it("'final' relabels each episode with the state it ended in and recomputes rewards and returns", () => {
    const out = relabelGoals(
      batch(),
      env,
      { strategy: 'final', relabels: 3, gamma: 0.5, bootstrap: true },
      new Rng(2),
    );
    // One copy: columns 0 (original) and 1 (relabelled); row = t * 2 + column.
    expect(out.numColumns).toBe(2);
    expect(row(out.observations, 0)).toEqual([0, 0, 1, 1]);
    expect(Array.from(out.rewards.filter((_, r) => r % 2 === 0))).toEqual([-1, -1, 0]);
    // Episode 1 ended in [0,0]: goal' = [0,0]. t=0 reaches [1,0] (r=-1), t=1 reaches [0,0] (r=0, goal').
    expect(row(out.observations, 1)).toEqual([0, 0, 0, 0]);
    expect(row(out.observations, 3)).toEqual([1, 0, 0, 0]);
    // Episode 2 ended in [1,1], its own goal.
    expect(row(out.observations, 5)).toEqual([0, 1, 1, 1]);
    expect([out.rewards[1], out.rewards[3], out.rewards[5]]).toEqual([-1, 0, 0]);
    expect([out.reached[1], out.reached[3], out.reached[5]]).toEqual([0, 1, 1]);
    // G'_0 = -1 + 0.5 * 0 = -1; G'_1 = 0; G'_2 = 0; all reach goal' so nothing is bootstrapped.
    expect([out.partialReturns[1], out.partialReturns[3], out.partialReturns[5]]).toEqual([-1, 0, 0]);
    expect([out.hitGoal[1], out.hitGoal[3], out.hitGoal[5]]).toEqual([1, 1, 1]);
    expect([out.tailDiscount[1], out.tailDiscount[3], out.tailDiscount[5]]).toEqual([0, 0, 0]);
  });

  it("'future' draws goal' from the states reached at or after t, k copies per transition", () => {
    const out = relabelGoals(
      batch(),
      env,
      { strategy: 'future', relabels: 4, gamma: 0.5, bootstrap: true },
      new Rng(3),
    );
    expect(out.numColumns).toBe(5);
    const seen = new Set<string>();
    for (let c = 1; c < 5; c++) {
      // t = 0: goal' = [1,0] (reached at once: r = 0, G' = 0) or [0,0] (r = -1 then 0: G' = -1).
      const obs = row(out.observations, c);
      expect(obs.slice(0, 2)).toEqual([0, 0]);
      const goal = obs.slice(2).join('');
      seen.add(goal);
      if (goal === '10') expect([out.rewards[c], out.partialReturns[c]]).toEqual([0, 0]);
      else {
        expect(goal).toBe('00');
        expect([out.rewards[c], out.partialReturns[c]]).toEqual([-1, -1]);
      }
      // t = 1: only [0,0]; t = 2: only [1,1].
      expect(row(out.observations, 5 + c)).toEqual([1, 0, 0, 0]);
      expect(out.partialReturns[5 + c]).toBe(0);
      expect(row(out.observations, 10 + c)).toEqual([0, 1, 1, 1]);
    }
    expect(seen.size).toBe(2);
  });

  it("importance weight pi(a|s,g') / mu(a|s,g), truncated at c", () => {
    expect(importanceWeight(Math.log(0.6), Math.log(0.3), 2)).toBeCloseTo(2, 6);
    expect(importanceWeight(Math.log(0.2), Math.log(0.4), 2)).toBeCloseTo(0.5, 6);
    expect(importanceWeight(Math.log(0.9), Math.log(0.1), 2)).toBe(2);
  });

  it('names the node and field when the environment is not goal-conditioned', async () => {
    const plainEnv = { nodeId: 'env', numEnvs: 1, observationSize: 4, numActions: 2 };
    const ctx = { nodeId: 'her', inputs: { env: plainEnv }, rng: new Rng(1) };
    await expect((async () => herNode.create(herNode.params.parse({}), ctx as never))()).rejects.toThrow(
      'her.env: the environment is not goal-conditioned',
    );
  });
});
