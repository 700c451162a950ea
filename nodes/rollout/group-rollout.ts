import { z } from 'zod';
import { defineNode, NodeError } from '../../src-main/engine/node-api.ts';
import { Rng } from '../../src-main/engine/rng.ts';
import {
  type GenerationOptions,
  isTrainableTextPolicy,
  type TextEnv,
  type TextEpisodeRecord,
  type TextPolicy,
  type TextProblem,
  type TextTrajectories,
} from '../text-contracts.ts';

export interface EpisodeRunOptions {
  maxNewTokens: number;
  temperature: number;
  topK: number;
  topP: number;
}

/**
 * Play every problem to the end, all episodes batched: each turn, one `generate` call for every episode
 * still running, then each environment answers its agent. Records the whole token sequence of each
 * episode (prompt, agent turns, replies) with the sampling log-probabilities, the agent-token mask and
 * the turn of each token, when the policy is trainable.
 */
export async function playEpisodes(
  env: TextEnv,
  policy: TextPolicy,
  problems: TextProblem[],
  o: EpisodeRunOptions,
  rng: Rng,
  beforeTurn?: () => Promise<void>,
): Promise<TextEpisodeRecord[]> {
  const trainable = isTrainableTextPolicy(policy) ? policy : undefined;
  const episodes = problems.map((p) => env.start(p));
  const contexts = problems.map((p) => p.prompt);
  const tokens: number[][] = [];
  const logProbs: number[][] = [];
  const mask: number[][] = [];
  const turnOf: number[][] = [];
  const records: TextEpisodeRecord[] = problems.map((problem, i) => {
    if (trainable) {
      const ids = Array.from(trainable.encode(problem.prompt, true));
      tokens.push(ids);
      logProbs.push(ids.map(() => 0));
      mask.push(ids.map(() => 0));
      turnOf.push(ids.map(() => -1));
    }
    return {
      problem,
      turns: episodes[i].turns,
      turnRewards: [],
      reward: 0,
      success: false,
      formatErrors: 0,
      toolCalls: 0,
      outcomeReward: 0,
    };
  });
  let active = problems.map((_, i) => i);
  for (let turn = 0; turn < env.maxTurns && active.length > 0; turn++) {
    await beforeTurn?.();
    if (trainable) {
      // An episode whose transcript fills the context cannot go on: it ends unsolved.
      active = active.filter((i) => tokens[i].length < trainable.contextLength - 1);
    }
    if (active.length === 0) break;
    const options: GenerationOptions = {
      maxNewTokens: o.maxNewTokens,
      temperature: o.temperature,
      topK: o.topK,
      topP: o.topP,
      stop: env.stop,
    };
    const completions = await policy.generate(
      active.map((i) => contexts[i]),
      options,
      rng,
    );
    const still: number[] = [];
    active.forEach((i, k) => {
      const completion = completions[k];
      const record = records[i];
      const result = episodes[i].act(completion.text);
      record.turnRewards.push(result.reward);
      record.reward += result.reward;
      if (result.formatError) record.formatErrors += 1;
      if (result.toolCall) record.toolCalls += 1;
      contexts[i] += completion.text + (result.reply ?? '');
      if (trainable) {
        const ids = completion.tokens ?? trainable.encode(completion.text, false);
        const lps = completion.logProbs ?? new Float32Array(ids.length);
        for (let t = 0; t < ids.length; t++) {
          tokens[i].push(ids[t]);
          logProbs[i].push(lps[t]);
          mask[i].push(1);
          turnOf[i].push(turn);
        }
        if (result.reply) {
          for (const id of trainable.encode(result.reply, false)) {
            tokens[i].push(id);
            logProbs[i].push(0);
            mask[i].push(0);
            turnOf[i].push(-1);
          }
        }
      }
      if (result.done) {
        record.success = result.success ?? false;
        record.outcomeReward = result.outcome ?? result.reward;
      } else {
        still.push(i);
      }
    });
    active = still;
  }
  if (trainable) {
    records.forEach((r, i) => {
      r.tokens = Int32Array.from(tokens[i]);
      r.logProbs = Float32Array.from(logProbs[i]);
      r.agentMask = Uint8Array.from(mask[i]);
      r.turnOfToken = Int16Array.from(turnOf[i]);
    });
  }
  return records;
}

export interface EpisodeSummary {
  reward: number;
  success: number;
  toolCallRate: number;
  formatErrorRate: number;
  responseLength: number;
  turns: number;
}

/** Means over episodes: reward, success, share of episodes with a tool call, format errors per turn. */
export function summarise(records: TextEpisodeRecord[]): EpisodeSummary {
  const n = Math.max(1, records.length);
  let reward = 0;
  let success = 0;
  let withCall = 0;
  let formatErrors = 0;
  let turns = 0;
  let agentTokens = 0;
  for (const r of records) {
    reward += r.reward;
    success += r.success ? 1 : 0;
    withCall += r.toolCalls > 0 ? 1 : 0;
    formatErrors += r.formatErrors;
    turns += r.turnRewards.length;
    if (r.agentMask) for (const m of r.agentMask) agentTokens += m;
    else for (const t of r.turns) if (t.role === 'agent') agentTokens += t.text.length;
  }
  return {
    reward: reward / n,
    success: success / n,
    toolCallRate: withCall / n,
    formatErrorRate: formatErrors / Math.max(1, turns),
    responseLength: agentTokens / n,
    turns: turns / n,
  };
}

const params = z.object({
  promptsPerIteration: z.number().int().min(1).max(4096).default(8).describe('Problems per iteration'),
  groupSize: z.number().int().min(1).max(256).default(8).describe('Completions per problem (G)'),
  maxNewTokens: z.number().int().min(1).max(4096).default(24).describe('New tokens per agent turn at most'),
  temperature: z.number().min(0).max(10).default(1).describe('Sampling temperature (0 = greedy)'),
  topK: z.number().int().min(0).max(100_000).default(0).describe('Keep the k likeliest tokens (0 = all)'),
  topP: z.number().gt(0).max(1).default(1).describe('Nucleus sampling mass (1 = all)'),
  startIteration: z
    .number()
    .int()
    .min(0)
    .max(10_000_000)
    .default(0)
    .describe('Collect nothing before this iteration (e.g. while an SFT phase runs)'),
  evalEvery: z
    .number()
    .int()
    .min(0)
    .max(1_000_000)
    .default(10)
    .describe('Measure held-out success every N iterations and on the last (0 = off)'),
  evalProblems: z
    .number()
    .int()
    .min(1)
    .max(100_000)
    .default(200)
    .describe('Held-out problems per measurement'),
  evalTemperature: z
    .number()
    .min(0)
    .max(10)
    .default(1)
    .describe('Sampling temperature of the held-out measurement (1 = the policy as trained, 0 = greedy)'),
});

export default defineNode({
  type: 'rollout.group',
  family: 'rollout',
  title: 'Group rollout (text)',
  summary: 'G completions per prompt, multi-turn with tool replies, for group-relative credit.',
  doc: `Each iteration draws \`promptsPerIteration\` training problems from the environment and plays each
one \`groupSize\` (G) times, as GRPO does (Shao et al. 2024, DeepSeekMath, arXiv 2402.03300): all P x G
episodes are generated as one batch per turn, and an environment reply (a tool result or a format error)
is appended to an episode's context before its next turn, up to the environment's turn limit.

Output: TextTrajectories with \`groups[g]\` the indices of the G episodes of problem g, and per episode the
token sequence (prompt, agent tokens, replies), the sampling log-probabilities, the mask of the agent's
tokens (only those get gradient) and the turn each token belongs to.

Held-out success: at every iteration that is a positive multiple of \`evalEvery\`, and on the last one once
collection has started (with
\`startIteration\` a multiple of it, the figure at \`startIteration\` is the SFT-only model, measured before
the first RL update), the policy plays \`evalProblems\` problems
of the environment's test split once each, sampled at \`evalTemperature\` (by default the temperature the
policy is trained at, so the figure is the policy's own pass@1), from a stream seeded by the run seed and
the iteration (it does not disturb the training stream).

Metrics: reward_mean, success_rate, tool_call_rate (share of episodes with a well-formed tool call),
format_error_rate (per agent turn), response_length (agent tokens per episode), turns_mean; on measuring
iterations heldout_success, heldout_tool_call_rate, heldout_format_error_rate.`,
  version: 1,
  inputs: [
    {
      name: 'env',
      type: 'Env',
      title: 'Environment',
      accepts: { observation: ['text'], action: ['text'] },
    },
    { name: 'policy', type: 'Policy', title: 'Policy', accepts: { action: ['text'] } },
  ],
  outputs: [
    {
      name: 'trajectories',
      type: 'Trajectories',
      title: 'Trajectories',
      provides: { observation: 'text' },
    },
  ],
  params,
  keyParams: ['promptsPerIteration', 'groupSize', 'temperature'],
  create(p, ctx) {
    const env = ctx.inputs.env as TextEnv;
    const policy = ctx.inputs.policy as TextPolicy;
    if (!env || typeof env.start !== 'function') {
      throw new NodeError(ctx.nodeId, 'needs a text environment (observation and action text)', 'env');
    }
    const runOptions = {
      maxNewTokens: p.maxNewTokens,
      temperature: p.temperature,
      topK: p.topK,
      topP: p.topP,
    };
    return {
      async step(_streams, info) {
        const metrics: Record<string, number> = {};
        const last = info.iteration === info.totalIterations - 1;
        // The final figure is taken once RL has started; during an SFT phase only the periodic ones.
        const finalEval = last && info.iteration >= p.startIteration;
        if (p.evalEvery > 0 && ((info.iteration > 0 && info.iteration % p.evalEvery === 0) || finalEval)) {
          const evalRng = new Rng((Math.imul(ctx.run.seed, 0x9e3779b1) ^ (info.iteration + 1)) >>> 0);
          const test = env.problems(p.evalProblems, 'test', evalRng);
          const records = await playEpisodes(
            env,
            policy,
            test,
            { ...runOptions, temperature: p.evalTemperature },
            evalRng,
            () => ctx.control.point(),
          );
          const s = summarise(records);
          metrics.heldout_success = s.success;
          metrics.heldout_tool_call_rate = s.toolCallRate;
          metrics.heldout_format_error_rate = s.formatErrorRate;
        }
        if (info.iteration < p.startIteration) {
          const empty: TextTrajectories = { kind: 'text', episodes: [], groups: [] };
          return { outputs: { trajectories: empty }, metrics };
        }
        const problems = env.problems(p.promptsPerIteration, 'train', ctx.rng);
        const repeated: TextProblem[] = [];
        const groups: number[][] = [];
        problems.forEach((problem) => {
          const group: number[] = [];
          for (let g = 0; g < p.groupSize; g++) {
            group.push(repeated.length);
            repeated.push(problem);
          }
          groups.push(group);
        });
        const episodes = await playEpisodes(env, policy, repeated, runOptions, ctx.rng, () =>
          ctx.control.point(),
        );
        policy.observeEpisodes?.(
          episodes.map((e) => ({ problem: e.problem, turns: e.turns, reward: e.reward, success: e.success })),
        );
        const s = summarise(episodes);
        const trajectories: TextTrajectories = { kind: 'text', episodes, groups };
        return {
          outputs: { trajectories },
          envSteps: Math.round(s.turns * episodes.length),
          metrics: {
            ...metrics,
            reward_mean: s.reward,
            success_rate: s.success,
            tool_call_rate: s.toolCallRate,
            format_error_rate: s.formatErrorRate,
            response_length: s.responseLength,
            turns_mean: s.turns,
          },
        };
      },
    };
  },
});
