import { describe, expect, it } from 'vitest';
import { MatrixGameEnv, payoffTable } from '../../nodes/environment/matrix-game.ts';

describe('matrix games (Claus & Boutilier 1998)', () => {
  it('climbing and penalty payoff tables', () => {
    expect(payoffTable('climbing')).toEqual([
      [11, -30, 0],
      [-30, 7, 6],
      [0, 0, 5],
    ]);
    expect(payoffTable('penalty', -100)).toEqual([
      [10, 0, -100],
      [0, 2, 0],
      [-100, 0, 10],
    ]);
  });

  it('every copy plays one game per step: shared payoff on both agent rows, always terminal', () => {
    const env = new MatrixGameEnv('game', 3, 'climbing', -10, true);
    expect(env.numEnvs).toBe(6);
    expect(env.observationSize).toBe(3);
    // Agent 0 observes [1, 1, 0], agent 1 [1, 0, 1].
    expect(Array.from(env.observations().subarray(0, 6))).toEqual([1, 1, 0, 1, 0, 1]);
    // Copies: (a, a) = 11, (a, b) = -30, (c, b) = 0.
    const step = env.step(new Int32Array([0, 0, 0, 1, 2, 1]));
    expect(Array.from(step.rewards)).toEqual([11, 11, -30, -30, 0, 0]);
    expect(Array.from(step.terminated)).toEqual([1, 1, 1, 1, 1, 1]);
    expect(Array.from(step.truncated)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(env.metrics()).toEqual({ optimal_joint_rate: 1 / 3, payoff_mean: -19 / 3 });
    // Counters drain.
    env.step(new Int32Array([1, 1, 1, 2, 2, 2]));
    expect(env.metrics()).toEqual({ optimal_joint_rate: 0, payoff_mean: 6 });
  });

  it('the penalty game pays k for miscoordinating between the optima', () => {
    const env = new MatrixGameEnv('game', 2, 'penalty', -25, false);
    expect(env.observationSize).toBe(1);
    const step = env.step(new Int32Array([0, 2, 2, 2]));
    expect(Array.from(step.rewards)).toEqual([-25, -25, 10, 10]);
    expect(env.metrics().optimal_joint_rate).toBe(0.5);
  });

  it('joint control: one controller, joint action j = 3 u0 + u1', () => {
    const env = new MatrixGameEnv('game', 2, 'climbing', -10, false, 'joint');
    expect([env.numAgents, env.numActions, env.numEnvs]).toEqual([1, 9, 2]);
    const step = env.step(new Int32Array([0, 5]));
    expect(Array.from(step.rewards)).toEqual([11, 6]);
    expect(() => env.step(new Int32Array([9, 0]))).toThrow(/game: actions of copy 0/);
  });

  it('refuses actions out of range, naming the node', () => {
    const env = new MatrixGameEnv('climb', 1, 'climbing', -10, true);
    expect(() => env.step(new Int32Array([0, 3]))).toThrow(/^climb: actions of copy 0 are out of range/);
  });
});
