import { describe, expect, it } from 'vitest';
import type { VectorTrajectories } from '../../nodes/contracts.ts';
import {
  counterfactualAdvantages,
  counterfactualCriticInputs,
  lambdaReturnTargets,
} from '../../nodes/credit/counterfactual.ts';

describe('COMA counterfactual baseline', () => {
  it('A = Q(s,u) - sum_u pi(u) Q(s,(u^-a,u)), by hand', () => {
    // Row 0: Q = [1, 4, -2], pi = [0.5, 0.25, 0.25], took action 1.
    //   baseline = 0.5*1 + 0.25*4 + 0.25*(-2) = 0.5 + 1 - 0.5 = 1;  A = 4 - 1 = 3
    // Row 1: Q = [11, -30, 0] (climbing row a), pi = [0.2, 0.3, 0.5], took action 0.
    //   baseline = 2.2 - 9 + 0 = -6.8;  A = 11 + 6.8 = 17.8
    const q = [1, 4, -2, 11, -30, 0];
    const pi = [0.5, 0.25, 0.25, 0.2, 0.3, 0.5];
    const { advantages, baselines, qTaken } = counterfactualAdvantages(q, pi, [1, 0], 3);
    expect(Array.from(baselines)).toEqual([expect.closeTo(1, 6), expect.closeTo(-6.8, 5)]);
    expect(Array.from(qTaken)).toEqual([4, 11]);
    expect(Array.from(advantages)).toEqual([expect.closeTo(3, 6), expect.closeTo(17.8, 5)]);
  });

  it('the baseline does not depend on the action taken, and the advantages average to zero under pi', () => {
    const q = [2, -1, 5];
    const pi = [0.2, 0.5, 0.3];
    const rows = [0, 1, 2].map((u) => counterfactualAdvantages(q, pi, [u], 3));
    expect(new Set(rows.map((r) => r.baselines[0].toFixed(6))).size).toBe(1);
    const expected = rows.reduce((sum, r, u) => sum + pi[u] * r.advantages[0], 0);
    expect(expected).toBeCloseTo(0, 6);
  });
});

describe('TD(lambda) targets of the centralised Q', () => {
  it('y_t = r_t + gamma((1-lambda) Q_{t+1} + lambda y_{t+1}), r at terminals, Q itself at the batch end', () => {
    // One row, 3 steps, no terminal: gamma 0.9, lambda 0.5, Q_taken = [1, 2, 3], r = [1, 0, 2].
    //   y_2 = Q_2 = 3 (unknown next joint action)
    //   y_1 = 0 + 0.9 (0.5*3 + 0.5*3) = 2.7
    //   y_0 = 1 + 0.9 (0.5*2 + 0.5*2.7) = 1 + 0.9*2.35 = 3.115
    const batch = {
      numEnvs: 1,
      numSteps: 3,
      rewards: new Float32Array([1, 0, 2]),
      terminated: new Uint8Array(3),
      truncated: new Uint8Array(3),
    };
    const y = lambdaReturnTargets(batch, [1, 2, 3], 0.9, 0.5);
    expect(Array.from(y)).toEqual([expect.closeTo(3.115, 5), expect.closeTo(2.7, 5), 3]);

    // Two rows interleaved (index t*2 + row); row 1 terminates at t = 0 and its next episode starts at t = 1.
    //   row 1: y_0 = r = 5;  y_1 = Q = 7 (batch end)
    const two = {
      numEnvs: 2,
      numSteps: 2,
      rewards: new Float32Array([0, 5, 1, 1]),
      terminated: new Uint8Array([0, 1, 0, 0]),
      truncated: new Uint8Array(4),
    };
    const y2 = lambdaReturnTargets(two, [4, 9, 6, 7], 1, 0);
    // row 0: y_1 = 6 (end), y_0 = 0 + 1*(1*6 + 0) = 6
    expect(Array.from(y2)).toEqual([6, 5, 6, 7]);
  });
});

describe('critic inputs', () => {
  it('lays out [state, the other agents actions one-hot, own index one-hot] per row', () => {
    // One step, one copy, two agents, 3 actions, state size 1: actions (2, 0).
    const batch = {
      kind: 'vector',
      numEnvs: 2,
      numSteps: 1,
      observationSize: 1,
      numActions: 3,
      numAgents: 2,
      stateSize: 1,
      states: new Float32Array([0.5, 0.5]),
      actions: new Int32Array([2, 0]),
    } as unknown as VectorTrajectories;
    const { inputs, width } = counterfactualCriticInputs(batch);
    expect(width).toBe(1 + 2 * 3 + 2);
    // Agent 0: its own block zero, agent 1 took 0; index one-hot [1, 0].
    expect(Array.from(inputs.subarray(0, width))).toEqual([0.5, 0, 0, 0, 1, 0, 0, 1, 0]);
    // Agent 1: agent 0 took 2, own block zero; index one-hot [0, 1].
    expect(Array.from(inputs.subarray(width, 2 * width))).toEqual([0.5, 0, 0, 1, 0, 0, 0, 0, 1]);
  });
});
