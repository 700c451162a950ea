/** Group-relative credit (GRPO, Dr. GRPO, RLOO, turn-level) and the GRPO loss against hand-computed values. */
import type * as TF from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { padBatch } from '../../nodes/agent/llm/batch.ts';
import { broadcastToAgentTokens, groupRelative } from '../../nodes/credit/grpo.ts';
import { leaveOneOut } from '../../nodes/credit/rloo.ts';
import { turnLevelAdvantages } from '../../nodes/credit/turn-level.ts';
import type { TextEpisodeRecord } from '../../nodes/text-contracts.ts';
import { grpoLoss } from '../../nodes/trainer/grpo.ts';
import { startBackend } from '../../src-main/engine/backend.ts';
import type { Tf } from '../../src-main/engine/node-api.ts';

let tf: Tf;
beforeAll(async () => {
  tf = (await startBackend('wasm')).tf;
});

const episode = (reward: number, turnRewards: number[], outcome: number, mask: number[], turnOf: number[]) =>
  ({
    problem: { id: 'p', prompt: 'Q', answer: '1' },
    turns: [],
    turnRewards,
    reward,
    success: outcome === 1,
    formatErrors: 0,
    toolCalls: 0,
    outcomeReward: outcome,
    tokens: Int32Array.from(mask.map((_, i) => i)),
    logProbs: new Float32Array(mask.length),
    agentMask: Uint8Array.from(mask),
    turnOfToken: Int16Array.from(turnOf),
  }) satisfies TextEpisodeRecord;

describe('group-relative advantages', () => {
  // Group {1, 0, 0, 1}: mean 0.5, unbiased std sqrt(1/3) = 0.57735. Group {1, 1}: std 0 -> zero advantage.
  const rewards = [1, 0, 0, 1, 1, 1];
  const groups = [
    [0, 1, 2, 3],
    [4, 5],
  ];
  it('GRPO: (r - mean) / (std + eps), std with Bessel correction', () => {
    const a = groupRelative(rewards, groups, 'std', 0);
    expect(a[0]).toBeCloseTo(0.5 / 0.57735, 4);
    expect(a[1]).toBeCloseTo(-0.5 / 0.57735, 4);
    expect(a[4]).toBe(0);
    expect(a[5]).toBe(0);
  });
  it('Dr. GRPO: r - mean, no std division', () => {
    const a = groupRelative(rewards, groups, 'none');
    expect(Array.from(a)).toEqual([0.5, -0.5, -0.5, 0.5, 0, 0]);
  });
  it('RLOO: r_i - mean of the others', () => {
    // Episode 0: 1 - (0 + 0 + 1) / 3 = 2/3; episode 1: 0 - (1 + 0 + 1) / 3 = -2/3.
    const a = leaveOneOut(
      [1, 0, 0, 1, 0.5, 0.1],
      [
        [0, 1, 2, 3],
        [4, 5],
      ],
    );
    expect(a[0]).toBeCloseTo(2 / 3, 6);
    expect(a[1]).toBeCloseTo(-2 / 3, 6);
    expect(a[4]).toBeCloseTo(0.4, 6);
    expect(a[5]).toBeCloseTo(-0.4, 6);
  });
  it('broadcasts an episode advantage to its agent tokens only (prompt and tool tokens get 0)', () => {
    const e = episode(1, [1], 1, [0, 0, 1, 1, 0, 1], [-1, -1, 0, 0, -1, 1]);
    const [tokens] = broadcastToAgentTokens([e], Float32Array.from([0.7]));
    expect(Array.from(tokens).map((x) => Math.round(x * 10) / 10)).toEqual([0, 0, 0.7, 0.7, 0, 0.7]);
  });
});

describe('turn-level (MT-GRPO) advantages', () => {
  it('turn k gets turnCoef * A^T_k + outcomeCoef * A^O, outcome removed from the last turn reward', () => {
    // Two episodes of one group. Episode 0: tool call (turn reward 0.1), then correct answer (outcome 1):
    // turnRewards [0.1, 1]. Episode 1: malformed turn (0), then wrong answer: turnRewards [0, 0].
    const e0 = episode(1.1, [0.1, 1], 1, [0, 1, 1, 0, 1], [-1, 0, 0, -1, 1]);
    const e1 = episode(0, [0, 0], 0, [0, 1, 0, 1], [-1, 0, -1, 1]);
    const { perTurn, outcome } = turnLevelAdvantages([e0, e1], [[0, 1]], {
      scale: 'none',
      turnCoef: 1,
      outcomeCoef: 1,
      epsilon: 0,
    });
    // Outcome: {1, 0} -> +0.5 / -0.5. Turn 0 shaping {0.1, 0} -> +0.05 / -0.05. Turn 1 shaping {0, 0} -> 0.
    expect(Array.from(outcome)).toEqual([0.5, -0.5]);
    expect(perTurn[0][0]).toBeCloseTo(0.55, 6);
    expect(perTurn[0][1]).toBeCloseTo(0.5, 6);
    expect(perTurn[1][0]).toBeCloseTo(-0.55, 6);
    expect(perTurn[1][1]).toBeCloseTo(-0.5, 6);
    // With std scaling (n = 2, unbiased std of {0.1, 0} = 0.0707): turn advantage 0.05 / 0.0707 = 0.7071.
    const scaled = turnLevelAdvantages([e0, e1], [[0, 1]], {
      scale: 'std',
      turnCoef: 1,
      outcomeCoef: 0,
      epsilon: 0,
    });
    expect(scaled.perTurn[0][0]).toBeCloseTo(Math.SQRT1_2, 4);
  });
});

describe('GRPO loss', () => {
  it('matches the clipped objective and k3 KL computed by hand, and masks non-agent tokens', () => {
    // Two sequences x 3 targets. Mask keeps targets (0,0), (0,1), (1,2).
    const logProbs = [
      [Math.log(0.5), Math.log(0.9), -7],
      [-9, -9, Math.log(0.2)],
    ];
    const old = [
      [Math.log(0.4), Math.log(0.6), 0],
      [0, 0, Math.log(0.2 / 0.9)],
    ];
    const ref = [
      [Math.log(0.5), Math.log(0.45), 0],
      [0, 0, Math.log(0.2)],
    ];
    const adv = [
      [1, 1, 5],
      [5, 5, -2],
    ];
    const mask = [
      [1, 1, 0],
      [0, 0, 1],
    ];
    // Token (0,0): rho 1.25 -> clipped 1.2 * 1 = 1.2 (min with 1.25). KL: ref = pi -> 0.
    // Token (0,1): rho 1.5 -> min(1.5, 1.2) = 1.2. KL: r = 0.45/0.9 = 0.5: 0.5 - ln 0.5 - 1 = 0.193147.
    // Token (1,2): rho 0.9, A = -2: min(-1.8, clip(0.9) = 0.9 -> -1.8) = -1.8. KL 0.
    const beta = 0.1;
    const perToken = [-(1.2 - 0), -(1.2 - beta * 0.193147), -(-1.8 - 0)];
    const t = (x: number[][]) => tf.tensor2d(x) as TF.Tensor2D;
    const run = (aggregation: 'token-mean' | 'sequence-mean' | 'constant') =>
      tf.tidy(() =>
        grpoLoss(
          tf,
          {
            logProbs: t(logProbs),
            oldLogProbs: t(old),
            refLogProbs: t(ref),
            advantages: t(adv),
            mask: t(mask),
            entropy: t([
              [1, 2, 9],
              [9, 9, 3],
            ]),
          },
          { clip: 0.2, beta, aggregation, constantLength: 10 },
        ).map((s) => s.arraySync() as number),
      );
    const [tokenMean, kl, entropy, clipFraction] = run('token-mean');
    expect(tokenMean).toBeCloseTo((perToken[0] + perToken[1] + perToken[2]) / 3, 5);
    expect(kl).toBeCloseTo(0.193147 / 3, 5);
    expect(entropy).toBeCloseTo(2, 5);
    // |rho - 1| > 0.2 for tokens (0,0) (0.25) and (0,1) (0.5); not (1,2) (0.1).
    expect(clipFraction).toBeCloseTo(2 / 3, 5);
    expect(run('sequence-mean')[0]).toBeCloseTo(((perToken[0] + perToken[1]) / 2 + perToken[2]) / 2, 5);
    expect(run('constant')[0]).toBeCloseTo((perToken[0] + perToken[1] + perToken[2]) / (2 * 10), 5);
  });

  it('padBatch aligns target t with token t and keeps prompt and tool tokens out of the mask', () => {
    const padded = padBatch(
      [
        {
          tokens: Int32Array.from([0, 5, 6, 7, 8]),
          agentMask: Uint8Array.from([0, 0, 1, 0, 1]),
          extras: [Float32Array.from([0, 0, -0.5, 0, -0.25])],
        },
        {
          tokens: Int32Array.from([0, 9, 10]),
          agentMask: Uint8Array.from([0, 1, 1]),
          extras: [Float32Array.from([0, -1, -2])],
        },
      ],
      64,
    );
    expect(padded.length).toBe(5);
    expect(Array.from(padded.tokens)).toEqual([0, 5, 6, 7, 8, 0, 9, 10, 0, 0]);
    expect(Array.from(padded.mask)).toEqual([0, 1, 0, 1, 1, 1, 0, 0]);
    expect(Array.from(padded.extras[0])).toEqual([0, -0.5, 0, -0.25, -1, -2, 0, 0]);
    expect(padded.agentTokens).toBe(4);
  });
});
