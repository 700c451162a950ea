import { z } from 'zod';
import type { TextTurnSample, TrajectorySample } from '../../src-main/engine/events.ts';
import { defineNode, NodeError } from '../../src-main/engine/node-api.ts';
import { CharTokenizer } from '../agent/llm/tokenizer.ts';
import { SAMPLES_PER_ITERATION } from '../samples.ts';
import type { TextAdvantages, TextEpisodeRecord, TextTrajectories } from '../text-contracts.ts';

/**
 * Group-relative advantages: A_i = (r_i - mean(r_group)) / (std(r_group) + eps) with `scale: 'std'`
 * (std with Bessel's correction, as TRL's GRPO), or A_i = r_i - mean(r_group) with `scale: 'none'` (Dr. GRPO).
 */
export function groupRelative(
  rewards: ArrayLike<number>,
  groups: number[][],
  scale: 'std' | 'none',
  epsilon = 1e-4,
): Float32Array {
  const out = new Float32Array(rewards.length);
  for (const group of groups) {
    const n = group.length;
    let mean = 0;
    for (const i of group) mean += rewards[i];
    mean /= n;
    let sq = 0;
    for (const i of group) sq += (rewards[i] - mean) ** 2;
    const std = n > 1 ? Math.sqrt(sq / (n - 1)) : 0;
    for (const i of group) {
      const centred = rewards[i] - mean;
      // A group of equal rewards carries no signal: 0, also when epsilon is 0.
      out[i] = scale === 'none' ? centred : std + epsilon > 0 ? centred / (std + epsilon) : 0;
    }
  }
  return out;
}

/** The same advantage on every agent token of each episode (zero on prompt and reply tokens). */
export function broadcastToAgentTokens(
  episodes: TextEpisodeRecord[],
  perEpisode: Float32Array,
): Float32Array[] {
  return episodes.map((e, i) => {
    const mask = e.agentMask ?? new Uint8Array(0);
    const out = new Float32Array(mask.length);
    for (let t = 0; t < mask.length; t++) if (mask[t]) out[t] = perEpisode[i];
    return out;
  });
}

export function requireTokens(nodeId: string, batch: TextTrajectories): void {
  if (batch?.kind !== 'text') throw new NodeError(nodeId, 'needs text trajectories', 'trajectories');
  if (batch.episodes.some((e) => !e.agentMask)) {
    throw new NodeError(
      nodeId,
      'the episodes carry no tokens: token-level credit needs a trainable policy (agent.llm)',
      'trajectories',
    );
  }
}

/**
 * A few transcripts for the viewer: the first episode of the first groups, every agent turn split into
 * its tokens with the credit each received. Tokens are shown as the characters they stand for.
 */
export function textCreditSamples(
  batch: TextTrajectories,
  credit: TextAdvantages,
  tokenText: (id: number) => string,
  nodeId: string,
  iteration: number,
  count = SAMPLES_PER_ITERATION,
): TrajectorySample[] {
  const samples: TrajectorySample[] = [];
  for (const group of batch.groups.slice(0, count)) {
    const e = group[0];
    const episode = batch.episodes[e];
    if (!episode) continue;
    const advantages = credit.tokenAdvantages[e];
    const turns: TextTurnSample[] = episode.turns.map((t) => ({ ...t }));
    if (episode.tokens && episode.turnOfToken) {
      let agentTurn = -1;
      for (const turn of turns) {
        if (turn.role !== 'agent') continue;
        agentTurn += 1;
        const tokens: string[] = [];
        const values: number[] = [];
        episode.turnOfToken.forEach((k, t) => {
          if (k === agentTurn) {
            tokens.push(tokenText(episode.tokens![t]));
            values.push(Math.round(advantages[t] * 1e4) / 1e4);
          }
        });
        turn.tokens = tokens;
        turn.credit = values;
      }
    }
    samples.push({
      kind: 'text',
      nodeId,
      iteration,
      index: samples.length,
      reward: episode.reward,
      success: episode.success,
      turns,
    });
  }
  return samples;
}

const tokenizer = new CharTokenizer();
/** The text of a token of agent.llm's character-level tokenizer (tokens joined give the turn's text). */
export const charTokenText = (id: number) => tokenizer.tokenText(id);

const params = z.object({
  scale: z
    .enum(['std', 'none'])
    .default('std')
    .describe("'std' divides by the group's reward std (GRPO); 'none' does not (Dr. GRPO)"),
  epsilon: z.number().min(0).max(1).default(1e-4).describe('Added to the std before dividing'),
});

export default defineNode({
  type: 'credit.grpo',
  family: 'credit',
  title: 'GRPO advantages',
  summary: 'Group-relative advantages: reward minus the group mean, optionally over the group std.',
  doc: `Group Relative Policy Optimization (Shao et al. 2024, DeepSeekMath, arXiv 2402.03300): no value
function; the baseline of an episode is the mean reward of the G episodes sampled for the same prompt.

  A_i = (r_i - mean_j r_j) / (std_j r_j + eps)          (scale = 'std', GRPO's outcome supervision)
  A_i =  r_i - mean_j r_j                               (scale = 'none', Dr. GRPO: Liu et al. 2025,
                                                          "Understanding R1-Zero-Like Training", arXiv 2503.20783)

std uses Bessel's correction (n - 1), as TRL's GRPOTrainer. Dividing by the std weights questions by their
difficulty (a group that is almost always right or almost always wrong gets large advantages); Dr. GRPO
drops it. A group where every reward is equal gets zero advantage: it carries no signal.

Every agent token of episode i gets A_i; prompt and tool-reply tokens get 0. A few transcripts per
iteration go to the trajectory viewer, each agent token coloured by its advantage.

Metrics: advantage_abs_mean, zero_signal_groups (share of groups with equal rewards).`,
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
  keyParams: ['scale'],
  create(p, ctx) {
    return {
      async step(streams, info) {
        const batch = streams.trajectories as TextTrajectories;
        if (batch?.kind !== 'text')
          throw new NodeError(ctx.nodeId, 'needs text trajectories', 'trajectories');
        const rewards = batch.episodes.map((e) => e.reward);
        const perEpisode = groupRelative(rewards, batch.groups, p.scale, p.epsilon);
        const credit: TextAdvantages = {
          kind: 'text',
          episodeAdvantages: perEpisode,
          tokenAdvantages: broadcastToAgentTokens(batch.episodes, perEpisode),
        };
        if (batch.episodes.length === 0) return { outputs: { advantages: credit } };
        return {
          outputs: { advantages: credit },
          metrics: groupMetrics(rewards, batch.groups, perEpisode),
          samples: textCreditSamples(batch, credit, charTokenText, ctx.nodeId, info.iteration),
        };
      },
    };
  },
});

export function groupMetrics(
  rewards: number[],
  groups: number[][],
  perEpisode: Float32Array,
): Record<string, number> {
  let abs = 0;
  for (const a of perEpisode) abs += Math.abs(a);
  const flat = groups.filter((g) => g.every((i) => rewards[i] === rewards[g[0]])).length;
  return {
    advantage_abs_mean: abs / Math.max(1, perEpisode.length),
    zero_signal_groups: flat / Math.max(1, groups.length),
  };
}
