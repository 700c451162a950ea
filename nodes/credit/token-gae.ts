import { z } from 'zod';
import { defineNode, NodeError, type Tf } from '../../src-main/engine/node-api.ts';
import { batchTensors, padBatch } from '../agent/llm/batch.ts';
import {
  isTextValueFunction,
  type TextAdvantages,
  type TextEpisodeRecord,
  type TextTrajectories,
  type TextValueFunction,
} from '../text-contracts.ts';
import { requireTokens, textCreditSamples } from './grpo.ts';

/** The token-level view of one episode that GAE needs (aligned with `TextEpisodeRecord.tokens`). */
export interface TokenEpisode {
  agentMask: Uint8Array;
  turnOfToken: Int16Array;
  turnRewards: number[];
}

/**
 * Per-token rewards: the reward of agent turn k on the last agent token of that turn (a turn that wrote no
 * token hands its reward to the latest agent token before it, else the first one after it), plus, where
 * given, a per-token term (the KL penalty -klCoef (log pi_old - log pi_ref)) on every agent token.
 */
export function tokenRewards(e: TokenEpisode, perToken?: Float32Array): Float32Array {
  const n = e.agentMask.length;
  const rewards = new Float32Array(n);
  const lastOfTurn = new Map<number, number>();
  const agentTokens: number[] = [];
  for (let t = 0; t < n; t++) {
    if (!e.agentMask[t]) continue;
    agentTokens.push(t);
    lastOfTurn.set(e.turnOfToken[t], t);
    if (perToken) rewards[t] += perToken[t];
  }
  if (agentTokens.length === 0) return rewards;
  e.turnRewards.forEach((r, k) => {
    let at = lastOfTurn.get(k);
    if (at === undefined) {
      const before = agentTokens.filter((t) => e.turnOfToken[t] < k);
      at = before.length > 0 ? before[before.length - 1] : agentTokens[0];
    }
    rewards[at] += r;
  });
  return rewards;
}

/**
 * GAE(lambda) over the agent's tokens of one episode, each token an action and the prefix before it the
 * state. With a_1 < ... < a_n the agent-token positions, V_j = V(x_<a_j) and r_j the token rewards:
 *   delta_j = r_j + gamma V_{j+1} - V_j     (V_{n+1} = 0: the episode has ended)
 *   A_j     = delta_j + gamma lambda A_{j+1},     R_j = A_j + V_j.
 * Prompt and tool-reply tokens are not actions: they get 0 and are skipped (the step from the last token
 * of a turn to the first of the next crosses the tool reply). Arrays are aligned with the tokens.
 */
export function tokenLevelGae(
  agentMask: Uint8Array,
  rewards: Float32Array,
  values: Float32Array,
  gamma: number,
  lambda: number,
): { advantages: Float32Array; returns: Float32Array } {
  const n = agentMask.length;
  const advantages = new Float32Array(n);
  const returns = new Float32Array(n);
  let nextValue = 0;
  let nextAdvantage = 0;
  for (let t = n - 1; t >= 0; t--) {
    if (!agentMask[t]) continue;
    const delta = rewards[t] + gamma * nextValue - values[t];
    nextAdvantage = delta + gamma * lambda * nextAdvantage;
    advantages[t] = nextAdvantage;
    returns[t] = nextAdvantage + values[t];
    nextValue = values[t];
  }
  return { advantages, returns };
}

/**
 * Per-token values V(x_<t) of the episodes (index t, zero at t = 0) and, when `withReference`, the
 * reference policy's log-probabilities, in no-gradient batches of `batchSize` episodes.
 */
export async function scoreEpisodes(
  tf: Tf,
  value: TextValueFunction,
  episodes: TextEpisodeRecord[],
  withReference: boolean,
  batchSize = 32,
): Promise<{ values: Float32Array[]; refLogProbs?: Float32Array[] }> {
  const values: Float32Array[] = [];
  const refLogProbs: Float32Array[] = [];
  for (let start = 0; start < episodes.length; start += batchSize) {
    const chunk = episodes.slice(start, start + batchSize);
    const padded = padBatch(
      chunk.map((e) => ({ tokens: e.tokens!, agentMask: e.agentMask! })),
      value.policy.contextLength,
    );
    const [v, ref] = tf.tidy(() => {
      const t = batchTensors(tf, padded);
      const out = [value.tokenValues(t.tokens)];
      if (withReference) out.push(value.policy.referenceLogProbs(t.tokens));
      return out;
    });
    const vData = (await v.data()) as Float32Array;
    const refData = ref ? ((await ref.data()) as Float32Array) : undefined;
    tf.dispose([v, ref].filter((x) => x !== undefined));
    const width = padded.length - 1;
    chunk.forEach((e, i) => {
      const n = e.tokens!.length;
      const ev = new Float32Array(n);
      const er = new Float32Array(n);
      for (let t = 1; t < n; t++) {
        ev[t] = vData[i * width + t - 1];
        if (refData) er[t] = refData[i * width + t - 1];
      }
      values.push(ev);
      refLogProbs.push(er);
    });
  }
  return withReference ? { values, refLogProbs } : { values };
}

const params = z.object({
  gamma: z
    .number()
    .min(0)
    .max(1)
    .default(1)
    .describe('Discount per agent token (1: undiscounted, as InstructGPT)'),
  lambda: z.number().min(0).max(1).default(0.95).describe('GAE lambda'),
  klCoef: z
    .number()
    .min(0)
    .max(10)
    .default(0)
    .describe('Per-token reward penalty -klCoef (log pi_old - log pi_ref) on agent tokens (0 = off)'),
  resetReference: z
    .boolean()
    .default(true)
    .describe('With a KL penalty: make the reference the current weights when RL starts (the SFT model)'),
});

export default defineNode({
  type: 'credit.token-gae',
  family: 'credit',
  title: 'Token-level GAE (text)',
  summary: 'GAE over the agent’s tokens with a value head: per-token advantages and return targets for PPO.',
  doc: `Generalised Advantage Estimation (Schulman et al., ICLR 2016) at the token level, as PPO for language
models does it (Stiennon et al. 2020; Ouyang et al. 2022, InstructGPT; Huang et al. 2024, "The N+
Implementation Details of RLHF with PPO", arXiv 2403.17031). Each token the agent writes is an action, the
prefix before it is the state, V(x_<t) comes from a value head (\`value.llm-head\`). Rewards sit on tokens:

  r_t = [t is the last token of agent turn k] r_turn(k) - klCoef (log pi_old(x_t) - log pi_ref(x_t))

so a tool call's turn-level reward lands on the end of the call and the outcome reward on the end of the
answer; the optional KL term is InstructGPT's per-token penalty to the reference (SFT) policy, with pi_old
the sampling log-probabilities. Over the agent tokens a_1 < ... < a_n of an episode:

  delta_j = r_{a_j} + gamma V(x_<a_{j+1}) - V(x_<a_j)       (0 after the last token: the episode ended)
  A_j = delta_j + gamma lambda A_{j+1},     R_j = A_j + V(x_<a_j)   (the value head's targets)

Prompt and tool-reply tokens are not actions (advantage 0); the step from the last token of one turn to
the first of the next crosses the tool reply, whose information the next state already contains.
Defaults gamma = 1, lambda = 0.95 (InstructGPT / Huang et al.).

**Why a node of its own** rather than a text mode of \`credit.gae\`: the vector GAE reads values the
rollout recorded and time-major arrays; here the values must be computed by a value head over whole token
sequences (no-gradient forward passes), rewards must be placed on tokens from turn rewards, and the result
is per-token and per-episode: sharing a node would share only the two-line recursion.

With \`klCoef\` > 0 and \`resetReference\`, the reference is set to the current weights the first time
episodes arrive (after SFT: the SFT model), before the penalty is computed; \`trainer.ppo\` does the same
at its first update, so both see the same reference. Output: per-token advantages (raw; the trainer
normalises them), return targets and the values used (PPO's old values); per episode, the advantage of
its first agent token. A few transcripts per iteration go to the viewer, each agent token coloured by
its advantage.

Metrics: advantage_abs_mean, value_mean, return_mean, explained_variance (of the returns by the values,
over agent tokens), kl_penalty (mean log pi_old - log pi_ref per agent token, when on).`,
  version: 1,
  inputs: [
    {
      name: 'trajectories',
      type: 'Trajectories',
      title: 'Trajectories',
      accepts: { observation: ['text'] },
    },
    {
      name: 'value',
      type: 'ValueFn',
      title: 'Value head',
      accepts: { observation: ['text'] },
      doc: 'V(x_<t) per token (value.llm-head).',
    },
  ],
  outputs: [
    { name: 'advantages', type: 'Advantages', title: 'Advantages', provides: { observation: 'text' } },
  ],
  params,
  keyParams: ['gamma', 'lambda', 'klCoef'],
  create(p, ctx) {
    const value = ctx.inputs.value;
    if (!isTextValueFunction(value)) {
      throw new NodeError(ctx.nodeId, 'needs a value head for text (value.llm-head)', 'value');
    }
    let started = false;
    return {
      async step(streams, info) {
        const batch = streams.trajectories as TextTrajectories;
        requireTokens(ctx.nodeId, batch);
        const empty: TextAdvantages = {
          kind: 'text',
          tokenAdvantages: [],
          episodeAdvantages: new Float32Array(0),
          tokenReturns: [],
          tokenValues: [],
        };
        if (batch.episodes.length === 0) return { outputs: { advantages: empty } };
        if (!started) {
          started = true;
          if (p.klCoef > 0 && p.resetReference) value.policy.resetReference();
        }
        const scored = await scoreEpisodes(ctx.tf, value, batch.episodes, p.klCoef > 0);
        const tokenAdvantages: Float32Array[] = [];
        const tokenReturns: Float32Array[] = [];
        const tokenValues: Float32Array[] = [];
        const episodeAdvantages = new Float32Array(batch.episodes.length);
        let tokens = 0;
        let absSum = 0;
        let valueSum = 0;
        let returnSum = 0;
        let klSum = 0;
        const valuesFlat: number[] = [];
        const returnsFlat: number[] = [];
        batch.episodes.forEach((e, i) => {
          const mask = e.agentMask!;
          const values = scored.values[i];
          let penalty: Float32Array | undefined;
          if (scored.refLogProbs) {
            penalty = new Float32Array(mask.length);
            for (let t = 0; t < mask.length; t++) {
              if (!mask[t]) continue;
              const kl = e.logProbs![t] - scored.refLogProbs[i][t];
              penalty[t] = -p.klCoef * kl;
              klSum += kl;
            }
          }
          const rewards = tokenRewards(
            { agentMask: mask, turnOfToken: e.turnOfToken!, turnRewards: e.turnRewards },
            penalty,
          );
          const { advantages, returns } = tokenLevelGae(mask, rewards, values, p.gamma, p.lambda);
          const oldValues = new Float32Array(mask.length);
          let first = -1;
          for (let t = 0; t < mask.length; t++) {
            if (!mask[t]) continue;
            if (first < 0) first = t;
            oldValues[t] = values[t];
            tokens += 1;
            absSum += Math.abs(advantages[t]);
            valueSum += values[t];
            returnSum += returns[t];
            valuesFlat.push(values[t]);
            returnsFlat.push(returns[t]);
          }
          // The episode's figure: the advantage of its first action (return from the start minus V).
          episodeAdvantages[i] = first >= 0 ? advantages[first] : 0;
          tokenAdvantages.push(advantages);
          tokenReturns.push(returns);
          tokenValues.push(oldValues);
        });
        const credit: TextAdvantages = {
          kind: 'text',
          tokenAdvantages,
          episodeAdvantages,
          tokenReturns,
          tokenValues,
        };
        const count = Math.max(1, tokens);
        return {
          outputs: { advantages: credit },
          metrics: {
            advantage_abs_mean: absSum / count,
            value_mean: valueSum / count,
            return_mean: returnSum / count,
            explained_variance: explainedVarianceOf(valuesFlat, returnsFlat),
            ...(scored.refLogProbs ? { kl_penalty: klSum / count } : {}),
          },
          samples: textCreditSamples(
            batch,
            credit,
            (id) => value.policy.tokenText(id),
            ctx.nodeId,
            info.iteration,
          ),
        };
      },
      saveState: () => ({ json: { started } }),
      loadState(state) {
        started = (state.json as { started?: boolean } | undefined)?.started ?? false;
      },
    };
  },
});

/** 1 - Var(R - V) / Var(R) (0 when the returns do not vary). */
function explainedVarianceOf(predicted: number[], target: number[]): number {
  const n = target.length;
  if (n === 0) return 0;
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const variance = (xs: number[]) => {
    const m = mean(xs);
    return xs.reduce((a, b) => a + (b - m) ** 2, 0) / xs.length;
  };
  const v = variance(target);
  return v === 0 ? 0 : 1 - variance(target.map((t, i) => t - predicted[i])) / v;
}
