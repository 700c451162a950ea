import { z } from 'zod';
import { defineNode, NodeError } from '../../src-main/engine/node-api.ts';
import type { TextAdvantages, TextTrajectories } from '../text-contracts.ts';
import { broadcastToAgentTokens, charTokenText, groupMetrics, textCreditSamples } from './grpo.ts';

/** Leave-one-out baseline: A_i = r_i - (1/(k-1)) sum_{j != i} r_j within each group of k (0 when k = 1). */
export function leaveOneOut(rewards: ArrayLike<number>, groups: number[][]): Float32Array {
  const out = new Float32Array(rewards.length);
  for (const group of groups) {
    const k = group.length;
    let sum = 0;
    for (const i of group) sum += rewards[i];
    for (const i of group) out[i] = k > 1 ? rewards[i] - (sum - rewards[i]) / (k - 1) : 0;
  }
  return out;
}

export default defineNode({
  type: 'credit.rloo',
  family: 'credit',
  title: 'RLOO advantages',
  summary: 'REINFORCE leave-one-out: reward minus the mean of the other samples of the same prompt.',
  doc: `REINFORCE Leave-One-Out (Kool, van Hoof & Welling 2019, "Buy 4 REINFORCE Samples, Get a Baseline for
Free!"; Ahmadian et al. 2024, "Back to Basics", arXiv 2402.14740): with k samples per prompt, each sample's
baseline is the mean reward of the other k - 1,

  A_i = r_i - (1 / (k - 1)) sum_{j != i} r_j  =  k / (k - 1) (r_i - mean_j r_j),

an unbiased baseline (it does not depend on sample i). Every agent token of episode i gets A_i; prompt and
tool-reply tokens get 0.

Metrics: advantage_abs_mean, zero_signal_groups.`,
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
  params: z.object({}),
  create(_p, ctx) {
    return {
      async step(streams, info) {
        const batch = streams.trajectories as TextTrajectories;
        if (batch?.kind !== 'text')
          throw new NodeError(ctx.nodeId, 'needs text trajectories', 'trajectories');
        const rewards = batch.episodes.map((e) => e.reward);
        const perEpisode = leaveOneOut(rewards, batch.groups);
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
