import { z } from 'zod';
import type { TrajectorySample } from '../../src-main/engine/events.ts';
import { defineNode, NodeError } from '../../src-main/engine/node-api.ts';
import { Rng } from '../../src-main/engine/rng.ts';
import { playEpisodes, summarise } from '../rollout/group-rollout.ts';
import { SAMPLES_PER_ITERATION } from '../samples.ts';
import type {
  EpisodeFeedback,
  TextEnv,
  TextEpisodeRecord,
  TextPolicy,
  TextTrajectories,
} from '../text-contracts.ts';

/** Hindsight for one finished episode: what the right answer was when it failed (Reflexion-style). */
export function hindsightFeedback(e: TextEpisodeRecord): string {
  if (e.success) return 'solved: do the same on similar tasks';
  const errors = e.formatErrors > 0 ? ` ${e.formatErrors} turn(s) did not follow the format.` : '';
  return `failed; the correct answer was ${e.problem.answer}.${errors}`;
}

const params = z.object({
  evalEvery: z
    .number()
    .int()
    .min(0)
    .max(1_000_000)
    .default(5)
    .describe('Measure held-out success every N iterations and on the last (0 = off; needs the env input)'),
  evalProblems: z.number().int().min(1).max(10_000).default(50).describe('Held-out problems per measurement'),
  maxNewTokens: z
    .number()
    .int()
    .min(1)
    .max(4096)
    .default(64)
    .describe('Token budget per turn of the held-out episodes (remote agents use their own maxTokens)'),
});

export default defineNode({
  type: 'trainer.in-context',
  family: 'trainer',
  title: 'In-context RL',
  summary: 'Trains without gradients: tells finished episodes, rewards and hindsight back to the agent.',
  doc: `The sink of an in-context RL pipeline: no weights change. Each iteration it takes the rollout's text
episodes and tells them back to the policy (\`observeEpisodes\`) with their rewards and hindsight feedback
(failed episodes: "the correct answer was 9716"), so the policy's memory, and with it its prompt, improves:
pi_{i+1}(a | s) = pi(a | s, M_{i+1}), M_{i+1} = update(M_i, episodes_i). This is the loop of Reflexion
(Shinn et al. 2023, arXiv 2303.11366: verbal feedback kept in an episodic memory instead of gradient
updates) and of in-context RL (Laskin et al. 2022, arXiv 2210.14215), with the history summarised into
rewards and outcomes as Krishnamurthy et al. 2024 (arXiv 2403.15371) found in-context exploration needs.

Held-out success: with the optional \`env\` wired, every \`evalEvery\` iterations and on the last, the
policy plays \`evalProblems\` problems of the environment's test split once each (seeded by the run seed and
the iteration); these episodes are not told back, so the figure measures what transfers to unseen tasks.

Metrics: reward_mean, success_rate, tool_call_rate, format_error_rate, episodes; heldout_success on
measuring iterations; and the policy's own counters prefixed \`agent_\` (for agent.llm-remote: requests,
retries, latency, prompt and completion tokens, memory size). A few transcripts go to the trajectory viewer.`,
  version: 1,
  inputs: [
    {
      name: 'policy',
      type: 'Policy',
      title: 'Policy',
      accepts: { action: ['text'], learns: ['in-context'] },
    },
    {
      name: 'trajectories',
      type: 'Trajectories',
      title: 'Trajectories',
      accepts: { observation: ['text'] },
    },
    {
      name: 'env',
      type: 'Env',
      title: 'Environment (held-out)',
      required: false,
      accepts: { observation: ['text'], action: ['text'] },
    },
  ],
  outputs: [{ name: 'metrics', type: 'Metrics', title: 'Metrics' }],
  params,
  keyParams: ['evalEvery', 'evalProblems'],
  trains: true,
  create(p, ctx) {
    const policy = ctx.inputs.policy as TextPolicy | undefined;
    if (!policy || typeof policy.observeEpisodes !== 'function') {
      throw new NodeError(ctx.nodeId, 'needs a policy that learns in context (agent.llm-remote)', 'policy');
    }
    const env = ctx.inputs.env as TextEnv | undefined;
    return {
      async step(streams, info) {
        const batch = streams.trajectories as TextTrajectories;
        if (batch?.kind !== 'text') {
          throw new NodeError(ctx.nodeId, 'needs text trajectories (rollout.group)', 'trajectories');
        }
        const feedback: EpisodeFeedback[] = batch.episodes.map((e) => ({
          problem: e.problem,
          turns: e.turns,
          reward: e.reward,
          success: e.success,
          feedback: hindsightFeedback(e),
        }));
        policy.observeEpisodes!(feedback);

        const metrics: Record<string, number> = { episodes: batch.episodes.length };
        if (batch.episodes.length > 0) {
          const s = summarise(batch.episodes);
          metrics.reward_mean = s.reward;
          metrics.success_rate = s.success;
          metrics.tool_call_rate = s.toolCallRate;
          metrics.format_error_rate = s.formatErrorRate;
        }
        const last = info.iteration === info.totalIterations - 1;
        if (env && p.evalEvery > 0 && (info.iteration % p.evalEvery === 0 || last)) {
          const evalRng = new Rng((Math.imul(ctx.run.seed, 0x9e3779b1) ^ (info.iteration + 7919)) >>> 0);
          const records = await playEpisodes(
            env,
            policy,
            env.problems(p.evalProblems, 'test', evalRng),
            { maxNewTokens: p.maxNewTokens, temperature: 1, topK: 0, topP: 1 },
            evalRng,
            () => ctx.control.point(),
          );
          const s = summarise(records);
          metrics.heldout_success = s.success;
          metrics.heldout_tool_call_rate = s.toolCallRate;
        }
        for (const [name, value] of Object.entries(policy.metrics?.() ?? {}))
          metrics[`agent_${name}`] = value;

        const samples: TrajectorySample[] = batch.episodes
          .slice(0, SAMPLES_PER_ITERATION)
          .map((e, index) => ({
            kind: 'text',
            nodeId: ctx.nodeId,
            iteration: info.iteration,
            index,
            reward: e.reward,
            success: e.success,
            turns: e.turns.map((t) => ({ ...t })),
          }));
        return { metrics, samples };
      },
    };
  },
});
