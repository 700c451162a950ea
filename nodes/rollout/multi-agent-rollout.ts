import { z } from 'zod';
import { defineNode, NodeError } from '../../src-main/engine/node-api.ts';
import type { Rng } from '../../src-main/engine/rng.ts';
import {
  type DiscretePolicy,
  isMultiAgentEnv,
  type ValueFunction,
  type VectorEnv,
  type VectorTrajectories,
} from '../contracts.ts';
import { EpisodeWindow } from './episode-window.ts';

/**
 * Who acts for which agent: one shared policy for every row, or policy i for the rows of agent i.
 * Rows are (copy, agent) pairs, row = copy * numAgents + agent.
 */
export class AgentRouter {
  private gathered = new Float32Array(0);
  private actionScratch = new Int32Array(0);
  private logProbScratch = new Float32Array(0);

  constructor(
    readonly numAgents: number,
    readonly numCopies: number,
    readonly width: number,
  ) {}

  /** Rows of agent `a` out of a row-major [copies * agents, width] array. */
  gather(rows: Float32Array, a: number): Float32Array {
    const { numAgents: A, numCopies: n, width: d } = this;
    if (this.gathered.length !== n * d) this.gathered = new Float32Array(n * d);
    for (let c = 0; c < n; c++) {
      const from = (c * A + a) * d;
      this.gathered.set(rows.subarray(from, from + d), c * d);
    }
    return this.gathered;
  }

  sample(
    policies: DiscretePolicy[],
    observations: Float32Array,
    rng: Rng,
    actions: Int32Array,
    logProbs: Float32Array,
  ): void {
    const { numAgents: A, numCopies: n } = this;
    if (policies.length === 1) {
      policies[0].sampleHost(observations, n * A, rng, actions, logProbs);
      return;
    }
    if (this.actionScratch.length !== n) {
      this.actionScratch = new Int32Array(n);
      this.logProbScratch = new Float32Array(n);
    }
    for (let a = 0; a < A; a++) {
      policies[a].sampleHost(this.gather(observations, a), n, rng, this.actionScratch, this.logProbScratch);
      for (let c = 0; c < n; c++) {
        actions[c * A + a] = this.actionScratch[c];
        logProbs[c * A + a] = this.logProbScratch[c];
      }
    }
  }
}

export default defineNode({
  type: 'rollout.multi-agent',
  family: 'rollout',
  title: 'Multi-agent rollout',
  summary: 'Steps a multi-agent env with one policy per agent (or one shared) and records global states.',
  doc: `Collects \`stepsPerEnv\` joint steps of every copy of a multi-agent environment each iteration, for
centralised training with decentralised execution (CTDE; Lowe et al. 2017, Foerster et al. 2018, Yu et al.
2022). One environment step is one joint step of one copy (the run's \`envSteps\`). At each step every agent i samples u^i ~ pi^i(. | o^i) from **its own observation**, the env steps
with the joint action u = (u^1..u^n) and returns the shared reward.

Policies: wire one policy per agent (independent networks, in agent order) or a single policy shared by
all agents (parameter sharing, as in MAPPO; the env's one-hot agent-id feature lets a shared network
still act differently per agent).

Critic (optional): a centralised critic (value.centralised) is evaluated on the global state s_t and
its V(s_t) recorded on every agent's row; a decentralised critic (value.mlp, shared by the agents) is
evaluated on each agent's own observation, as in independent PPO (IPPO, de Witt et al. 2020).

Output: one batch whose rows are (copy, agent) pairs, row = copy * numAgents + agent, i.e. per-agent
trajectories side by side, with \`numAgents\`, \`stateSize\` and the global \`states\` of every row. Single-
agent credit assigners (GAE, Monte-Carlo) compute per-agent credit on it unchanged; \`credit.counterfactual\`
also reads the joint actions and states.

Metrics: \`episode_return_mean\` / \`episode_length_mean\` of the team (the shared return) over the last
\`window\` finished episodes, \`episodes\` finished this iteration, and any task metrics the environment
reports (e.g. \`optimal_joint_rate\` on the matrix games).`,
  version: 1,
  inputs: [
    {
      name: 'env',
      type: 'Env',
      title: 'Environment',
      doc: 'A multi-agent environment (it provides agents: multi).',
      accepts: { observation: ['vector'], action: ['discrete'], agents: ['multi'] },
    },
    {
      name: 'policy',
      type: 'Policy',
      title: 'Policies',
      doc: 'One shared policy, or one per agent in agent order.',
      multiple: true,
      accepts: { action: ['discrete'] },
    },
    {
      name: 'value',
      type: 'ValueFn',
      title: 'Critic',
      required: false,
      doc: 'A centralised critic V(s) (value.centralised), or a decentralised V(o) shared by the agents.',
    },
  ],
  outputs: [
    {
      name: 'trajectories',
      type: 'Trajectories',
      title: 'Trajectories',
      provides: { observation: 'vector', agents: 'multi' },
    },
  ],
  params: z.object({
    stepsPerEnv: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .default(32)
      .describe('Joint steps per env copy per iteration'),
    window: z
      .number()
      .int()
      .min(1)
      .max(10_000)
      .default(50)
      .describe('Episodes averaged in the return metric'),
  }),
  keyParams: ['stepsPerEnv'],
  create(params, ctx) {
    const env = ctx.inputs.env as VectorEnv;
    if (!isMultiAgentEnv(env)) {
      throw new NodeError(
        ctx.nodeId,
        'needs a multi-agent environment (one with agents and a global state)',
        'env',
      );
    }
    const policies = (ctx.inputs.policy as DiscretePolicy[] | undefined) ?? [];
    const value = ctx.inputs.value as ValueFunction | undefined;
    const A = env.numAgents;
    const n = env.numCopies;
    const rows = env.numEnvs;
    const d = env.observationSize;
    const S = env.stateSize;
    if (policies.length !== 1 && policies.length !== A) {
      throw new NodeError(
        ctx.nodeId,
        `wire one shared policy or one per agent (${A}); got ${policies.length}`,
        'policy',
      );
    }
    for (const policy of policies) {
      if (policy.observationSize !== d || policy.numActions !== env.numActions) {
        throw new NodeError(
          ctx.nodeId,
          `policy ${policy.nodeId} takes ${policy.observationSize} inputs and ${policy.numActions} actions; each agent sees ${d} and has ${env.numActions}`,
          'policy',
        );
      }
    }
    const critic = value?.input === 'state' ? value : undefined;
    const localCritic = value && !critic ? value : undefined;
    const router = new AgentRouter(A, n, d);
    const runningReturn = new Float64Array(n);
    const runningLength = new Int32Array(n);
    const window = new EpisodeWindow(params.window);
    const actions = new Int32Array(rows);
    const logProbs = new Float32Array(rows);
    const copyValues = new Float32Array(n);
    const finalValue = new Float32Array(1);
    const steps = params.stepsPerEnv;

    /** Write V of each copy's state onto all its agent rows. */
    const spread = (source: Float32Array, target: Float32Array, offset: number) => {
      for (let c = 0; c < n; c++) for (let a = 0; a < A; a++) target[offset + c * A + a] = source[c];
    };

    return {
      async step() {
        await Promise.all(policies.map((p) => p.syncHost()));
        await value?.syncHost();
        const batch: VectorTrajectories = {
          kind: 'vector',
          numEnvs: rows,
          numSteps: steps,
          observationSize: d,
          numActions: env.numActions,
          observations: new Float32Array(steps * rows * d),
          actions: new Int32Array(steps * rows),
          logProbs: new Float32Array(steps * rows),
          rewards: new Float32Array(steps * rows),
          values: new Float32Array(steps * rows),
          terminated: new Uint8Array(steps * rows),
          truncated: new Uint8Array(steps * rows),
          truncationValues: new Float32Array(steps * rows),
          lastValues: new Float32Array(rows),
          numAgents: A,
          stateSize: S,
          states: new Float32Array(steps * rows * S),
        };
        const states = batch.states as Float32Array;
        let finished = 0;
        for (let t = 0; t < steps; t++) {
          await ctx.control.point();
          const obs = env.observations();
          const copyStates = env.states();
          batch.observations.set(obs, t * rows * d);
          for (let r = 0; r < rows; r++) {
            const c = Math.floor(r / A);
            states.set(copyStates.subarray(c * S, (c + 1) * S), (t * rows + r) * S);
          }
          router.sample(policies, obs, ctx.rng, actions, logProbs);
          if (critic) {
            critic.predictHost(copyStates, n, copyValues);
            spread(copyValues, batch.values, t * rows);
          } else {
            localCritic?.predictHost(obs, rows, batch.values, t * rows);
          }
          batch.actions.set(actions, t * rows);
          batch.logProbs.set(logProbs, t * rows);
          const result = env.step(actions);
          batch.rewards.set(result.rewards, t * rows);
          batch.terminated.set(result.terminated, t * rows);
          batch.truncated.set(result.truncated, t * rows);
          for (let c = 0; c < n; c++) {
            // The team's return: the mean of its agents' rewards (equal under a shared reward).
            let teamReward = 0;
            for (let a = 0; a < A; a++) teamReward += result.rewards[c * A + a];
            runningReturn[c] += teamReward / A;
            runningLength[c] += 1;
            const first = c * A;
            if (!(result.terminated[first] || result.truncated[first])) continue;
            if (result.truncated[first] && critic) {
              critic.predictHost(env.finalStates().subarray(c * S, (c + 1) * S), 1, finalValue);
              for (let a = 0; a < A; a++) batch.truncationValues[t * rows + first + a] = finalValue[0];
            } else if (result.truncated[first] && localCritic) {
              for (let a = 0; a < A; a++) {
                const row = first + a;
                const final = result.finalObservations.subarray(row * d, (row + 1) * d);
                localCritic.predictHost(final, 1, finalValue);
                batch.truncationValues[t * rows + row] = finalValue[0];
              }
            }
            window.add(runningReturn[c], runningLength[c]);
            runningReturn[c] = 0;
            runningLength[c] = 0;
            finished += 1;
          }
        }
        if (critic) {
          critic.predictHost(env.states(), n, copyValues);
          spread(copyValues, batch.lastValues, 0);
        } else {
          localCritic?.predictHost(env.observations(), rows, batch.lastValues);
        }
        return {
          outputs: { trajectories: batch },
          envSteps: steps * n,
          metrics: {
            episode_return_mean: window.mean(window.returns),
            episode_length_mean: window.mean(window.lengths),
            episodes: finished,
            ...(env.metrics?.() ?? {}),
          },
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
