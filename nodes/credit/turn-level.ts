import { z } from 'zod';
import { defineNode } from '../../src-main/engine/node-api.ts';
import type { TextAdvantages, TextEpisodeRecord, TextTrajectories } from '../text-contracts.ts';
import { charTokenText, groupMetrics, groupRelative, requireTokens, textCreditSamples } from './grpo.ts';

export interface TurnLevelOptions {
  scale: 'std' | 'none';
  turnCoef: number;
  outcomeCoef: number;
  epsilon: number;
}

/**
 * MT-GRPO-style turn-level advantages. With o_i the outcome reward and r_{i,k} the turn-level reward of
 * turn k (the turn's reward without the outcome; 0 for turns an episode did not reach):
 *   A^O_i = groupRelative(o)_i,   A^T_{i,k} = groupRelative(r_{., k})_i,
 *   A_{i,k} = turnCoef * A^T_{i,k} + outcomeCoef * A^O_i,
 * broadcast to the agent tokens of turn k. Returns per-turn advantages [episode][turn] too.
 */
export function turnLevelAdvantages(
  episodes: TextEpisodeRecord[],
  groups: number[][],
  o: TurnLevelOptions,
): { perTurn: number[][]; outcome: Float32Array } {
  const outcomes = episodes.map((e) => e.outcomeReward ?? e.reward);
  const outcome = groupRelative(outcomes, groups, o.scale, o.epsilon);
  const maxTurns = Math.max(0, ...episodes.map((e) => e.turnRewards.length));
  const perTurn = episodes.map(() => [] as number[]);
  for (let k = 0; k < maxTurns; k++) {
    const shaping = episodes.map((e) => {
      if (k >= e.turnRewards.length) return 0;
      const last = k === e.turnRewards.length - 1;
      return e.turnRewards[k] - (last ? (e.outcomeReward ?? e.reward) : 0);
    });
    const turnAdvantage = groupRelative(shaping, groups, o.scale, o.epsilon);
    episodes.forEach((e, i) => {
      if (k < e.turnRewards.length)
        perTurn[i].push(o.turnCoef * turnAdvantage[i] + o.outcomeCoef * outcome[i]);
    });
  }
  return { perTurn, outcome };
}

const params = z.object({
  scale: z
    .enum(['std', 'none'])
    .default('std')
    .describe("Group normalisation: 'std' (GRPO) or 'none' (Dr. GRPO)"),
  turnCoef: z.number().min(0).max(100).default(1).describe('Weight of the turn-level advantage'),
  outcomeCoef: z.number().min(0).max(100).default(1).describe('Weight of the outcome advantage'),
  epsilon: z.number().min(0).max(1).default(1e-4),
});

export default defineNode({
  type: 'credit.turn-level',
  family: 'credit',
  title: 'Turn-level advantages (MT-GRPO)',
  summary: 'Per-turn group advantages mixing turn rewards with the outcome, broadcast to each turn.',
  doc: `Turn-level credit for multi-turn agents, after MT-GRPO (Zeng et al. 2025, "Reinforcing Multi-Turn
Reasoning in LLM Agents via Turn-Level Credit Assignment", arXiv 2505.11821). Trajectory-level GRPO gives
every token of an episode the same advantage, so a good tool call in a failed episode is punished with
the rest. Here each turn k gets its own group-relative advantage from the turn-level rewards (e.g. a
well-formed tool call), and the outcome advantage is added to every turn:

  A^O_i     = (o_i - mean_group o) / (std_group o + eps)                      outcome reward o_i
  A^T_{i,k} = (r_{i,k} - mean_group r_{.,k}) / (std_group r_{.,k} + eps)      turn-k reward without the outcome
  A_{i,k}   = turnCoef * A^T_{i,k} + outcomeCoef * A^O_i

(\`scale = 'none'\` drops the std division, as Dr. GRPO). A turn an episode never reached counts as reward
0 in its group. With two turns and a turn reward only on the first, this is MT-GRPO's scheme: the tool
turn gets A^T + A^O, the answer turn A^O. Each turn's advantage is broadcast to that turn's agent tokens;
prompt and tool-reply tokens get 0.

Metrics: advantage_abs_mean, zero_signal_groups (outcome), turn_advantage_spread (mean |A_{i,k} - A^O_i|).`,
  version: 1,
  inputs: [
    {
      name: 'trajectories',
      type: 'Trajectories',
      title: 'Trajectories',
      accepts: { observation: ['text'] },
    },
  ],
  outputs: [
    { name: 'advantages', type: 'Advantages', title: 'Advantages', provides: { observation: 'text' } },
  ],
  params,
  keyParams: ['turnCoef', 'outcomeCoef'],
  create(p, ctx) {
    return {
      async step(streams, info) {
        const batch = streams.trajectories as TextTrajectories;
        requireTokens(ctx.nodeId, batch);
        const { perTurn, outcome } = turnLevelAdvantages(batch.episodes, batch.groups, p);
        const tokenAdvantages = batch.episodes.map((e, i) => {
          const out = new Float32Array(e.agentMask!.length);
          e.turnOfToken!.forEach((k, t) => {
            if (e.agentMask![t] && k >= 0) out[t] = perTurn[i][k] ?? 0;
          });
          return out;
        });
        const episodeAdvantages = Float32Array.from(
          perTurn.map((turns) => (turns.length ? turns.reduce((a, b) => a + b, 0) / turns.length : 0)),
        );
        const credit: TextAdvantages = { kind: 'text', tokenAdvantages, episodeAdvantages };
        if (batch.episodes.length === 0) return { outputs: { advantages: credit } };
        let spread = 0;
        let count = 0;
        perTurn.forEach((turns, i) => {
          for (const a of turns) {
            spread += Math.abs(a - p.outcomeCoef * outcome[i]);
            count += 1;
          }
        });
        const rewards = batch.episodes.map((e) => e.reward);
        return {
          outputs: { advantages: credit },
          metrics: {
            ...groupMetrics(rewards, batch.groups, episodeAdvantages),
            turn_advantage_spread: spread / Math.max(1, count),
          },
          samples: textCreditSamples(batch, credit, charTokenText, ctx.nodeId, info.iteration),
        };
      },
    };
  },
});
