import { z } from 'zod';
import { defineNode } from '../../src-main/engine/node-api.ts';
import type {
  DiscretePolicy,
  GatedPolicy,
  ValueFunction,
  VectorEnv,
  VectorTrajectories,
} from '../contracts.ts';
import { EpisodeWindow } from './episode-window.ts';

export default defineNode({
  type: 'rollout.vector',
  family: 'rollout',
  title: 'Vector rollout',
  summary: 'Collects envs x steps of experience each iteration from a policy.',
  doc: `Each iteration, steps every copy of the environment \`stepsPerEnv\` times with actions sampled from
the policy, recording observations, actions, their log-probabilities, rewards, V(s_t) and how each episode
ended (the synchronous advantage actor-critic layout of Mnih et al. 2016, used by PPO).

Termination and truncation are kept apart: when an episode is cut by a time limit, V(final observation)
is recorded so that credit assigners bootstrap through the cut instead of treating it as a terminal state
(Pardo et al. 2018, "Time Limits in Reinforcement Learning").

Metrics: \`episode_return_mean\` and \`episode_length_mean\` over the last \`window\` finished episodes,
\`episodes\` finished this iteration, and any task metrics the environment reports (e.g.
\`optimal_action_rate\` on the hindsight-credit tasks). On an imagined environment (a world model's, for
Dyna) the steps are reported as \`imagined_steps\` and not counted as real environment steps. Each step
also records the final observation of an episode that ended there, and the observation after the last step, for hindsight credit assigners.
Where the environment reports per-step \`costs\` and \`trueRewards\` they are carried in the batch; where the
policy is a safety gate, its interventions are logged into the batch (penalties subtracted from the
step's reward), counted in \`interventions\`, and a 'pause' rule pauses the run after the iteration.`,
  version: 1,
  inputs: [
    {
      name: 'env',
      type: 'Env',
      title: 'Environment',
      accepts: { observation: ['vector'], action: ['discrete'] },
    },
    { name: 'policy', type: 'Policy', title: 'Policy', accepts: { action: ['discrete'] } },
    {
      name: 'value',
      type: 'ValueFn',
      title: 'Value function',
      required: false,
      doc: 'Records V(s_t) for GAE.',
    },
  ],
  outputs: [
    {
      name: 'trajectories',
      type: 'Trajectories',
      title: 'Trajectories',
      provides: { observation: 'vector' },
    },
  ],
  params: z.object({
    stepsPerEnv: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .default(128)
      .describe('Steps per env copy per iteration'),
    window: z
      .number()
      .int()
      .min(1)
      .max(10_000)
      .default(20)
      .describe('Episodes averaged in the return metric'),
  }),
  keyParams: ['stepsPerEnv'],
  create(params, ctx) {
    const env = ctx.inputs.env as VectorEnv;
    const policy = ctx.inputs.policy as DiscretePolicy;
    const value = ctx.inputs.value as ValueFunction | undefined;
    const n = env.numEnvs;
    const d = env.observationSize;
    const steps = params.stepsPerEnv;
    if (policy.observationSize !== d) {
      throw new Error(
        `${ctx.nodeId}: policy expects observations of size ${policy.observationSize}, env gives ${d}`,
      );
    }
    const runningReturn = new Float64Array(n);
    const runningLength = new Int32Array(n);
    const window = new EpisodeWindow(params.window);
    const actions = new Int32Array(n);
    const logProbs = new Float32Array(n);
    const finalValue = new Float32Array(1);

    return {
      async step() {
        await policy.syncHost();
        await value?.syncHost();
        const batch: VectorTrajectories = {
          kind: 'vector',
          numEnvs: n,
          numSteps: steps,
          observationSize: d,
          numActions: env.numActions,
          observations: new Float32Array(steps * n * d),
          actions: new Int32Array(steps * n),
          logProbs: new Float32Array(steps * n),
          rewards: new Float32Array(steps * n),
          values: new Float32Array(steps * n),
          terminated: new Uint8Array(steps * n),
          truncated: new Uint8Array(steps * n),
          truncationValues: new Float32Array(steps * n),
          lastValues: new Float32Array(n),
          finalObservations: new Float32Array(steps * n * d),
          lastObservations: new Float32Array(n * d),
        };
        let finished = 0;
        let interventions = 0;
        let pauseReason: string | undefined;
        for (let t = 0; t < steps; t++) {
          await ctx.control.point();
          const obs = env.observations();
          batch.observations.set(obs, t * n * d);
          policy.sampleHost(obs, n, ctx.rng, actions, logProbs);
          value?.predictHost(obs, n, batch.values, t * n);
          batch.actions.set(actions, t * n);
          batch.logProbs.set(logProbs, t * n);
          // A safety gate wrapped around the policy logs what it blocked, penalised or paused on.
          const gated = (policy as Partial<GatedPolicy>).takeInterventions?.() ?? [];
          const result = env.step(actions);
          batch.rewards.set(result.rewards, t * n);
          for (const { penalty, ...logged } of gated) {
            batch.interventions ??= [];
            batch.interventions.push({ ...logged, t });
            if (penalty) batch.rewards[t * n + logged.env] -= penalty;
            if (logged.effect === 'paused') pauseReason ??= `rule '${logged.rule}' fired at step ${t}`;
          }
          interventions += gated.length;
          if (result.costs) {
            batch.costs ??= new Float32Array(steps * n);
            batch.costs.set(result.costs, t * n);
          }
          if (result.trueRewards) {
            batch.trueRewards ??= new Float32Array(steps * n);
            batch.trueRewards.set(result.trueRewards, t * n);
          }
          batch.terminated.set(result.terminated, t * n);
          batch.truncated.set(result.truncated, t * n);
          for (let e = 0; e < n; e++) {
            runningReturn[e] += batch.rewards[t * n + e];
            runningLength[e] += 1;
            if (result.terminated[e] || result.truncated[e]) {
              batch.finalObservations?.set(
                result.finalObservations.subarray(e * d, (e + 1) * d),
                (t * n + e) * d,
              );
              if (result.truncated[e] && value) {
                value.predictHost(result.finalObservations.subarray(e * d, (e + 1) * d), 1, finalValue);
                batch.truncationValues[t * n + e] = finalValue[0];
              }
              window.add(runningReturn[e], runningLength[e]);
              runningReturn[e] = 0;
              runningLength[e] = 0;
              finished += 1;
            }
          }
        }
        batch.lastObservations?.set(env.observations());
        value?.predictHost(batch.lastObservations ?? env.observations(), n, batch.lastValues);
        return {
          outputs: { trajectories: batch },
          // Steps in a learned model's imagination are not real environment steps.
          envSteps: env.imagined ? 0 : steps * n,
          metrics: {
            ...(env.imagined ? { imagined_steps: steps * n } : {}),
            episode_return_mean: window.mean(window.returns),
            episode_length_mean: window.mean(window.lengths),
            episodes: finished,
            ...env.metrics?.(),
            ...('takeInterventions' in policy ? { interventions } : {}),
          },
          ...(pauseReason ? { pause: { reason: `safety gate: ${pauseReason}` } } : {}),
        };
      },
      saveState: () => ({
        json: { returns: window.returns, lengths: window.lengths },
        arrays: { runningReturn: runningReturn.slice(), runningLength: runningLength.slice() },
      }),
      loadState(state) {
        const json = state.json as { returns: number[]; lengths: number[] };
        window.returns = [...json.returns];
        window.lengths = [...json.lengths];
        runningReturn.set(state.arrays?.runningReturn ?? []);
        runningLength.set(state.arrays?.runningLength ?? []);
      },
    };
  },
});
