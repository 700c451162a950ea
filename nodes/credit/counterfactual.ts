import type * as TF from '@tensorflow/tfjs';
import { z } from 'zod';
import { Adam } from '../../src-main/engine/nn/adam.ts';
import { Mlp } from '../../src-main/engine/nn/mlp.ts';
import { defineNode, NodeError, NonFiniteError } from '../../src-main/engine/node-api.ts';
import {
  type Advantages,
  type DiscretePolicy,
  isMultiAgentEnv,
  type VectorEnv,
  type VectorTrajectories,
} from '../contracts.ts';
import { vectorEpisodeSamples } from '../samples.ts';

/**
 * COMA's per-agent advantage for every row (numActions Q-values and policy probabilities per row):
 *   baseline_i = sum_u' pi_i(u') Q_i(u'),  A_i = Q_i(u_i) - baseline_i
 * where Q_i(u') = Q(s, (u^{-a}, u')) varies only the acting agent's action.
 */
export function counterfactualAdvantages(
  qValues: ArrayLike<number>,
  probs: ArrayLike<number>,
  actions: ArrayLike<number>,
  numActions: number,
): { advantages: Float32Array; baselines: Float32Array; qTaken: Float32Array } {
  const rows = actions.length;
  const advantages = new Float32Array(rows);
  const baselines = new Float32Array(rows);
  const qTaken = new Float32Array(rows);
  for (let i = 0; i < rows; i++) {
    let baseline = 0;
    for (let u = 0; u < numActions; u++) baseline += probs[i * numActions + u] * qValues[i * numActions + u];
    qTaken[i] = qValues[i * numActions + actions[i]];
    baselines[i] = baseline;
    advantages[i] = qTaken[i] - baseline;
  }
  return { advantages, baselines, qTaken };
}

/**
 * TD(lambda) targets for the centralised Q from the Q of the taken joint actions (time-major rows,
 * index t * numEnvs + row):
 *   y_t = r_t                                                    if the episode terminated at t
 *   y_t = r_t + gamma ((1 - lambda) Q(s_{t+1}, u_{t+1}) + lambda y_{t+1})   otherwise
 * and, where the next joint action is unknown (the batch's last step, a time-limit cut), y_t = Q(s_t, u_t):
 * the critic's own estimate, so those rows teach it nothing and bias nothing.
 */
export function lambdaReturnTargets(
  batch: Pick<VectorTrajectories, 'numEnvs' | 'numSteps' | 'rewards' | 'terminated' | 'truncated'>,
  qTaken: ArrayLike<number>,
  gamma: number,
  lambda: number,
): Float32Array {
  const { numEnvs: n, numSteps: steps, rewards, terminated, truncated } = batch;
  const targets = new Float32Array(steps * n);
  for (let e = 0; e < n; e++) {
    for (let t = steps - 1; t >= 0; t--) {
      const i = t * n + e;
      if (terminated[i]) targets[i] = rewards[i];
      else if (truncated[i] || t === steps - 1) targets[i] = qTaken[i];
      else targets[i] = rewards[i] + gamma * ((1 - lambda) * qTaken[i + n] + lambda * targets[i + n]);
    }
  }
  return targets;
}

/**
 * The critic's input for every row: [global state s, the other agents' actions one-hot (the acting
 * agent's own block left at zero), the acting agent's index one-hot], width S + A*U + A.
 */
export function counterfactualCriticInputs(batch: VectorTrajectories): {
  inputs: Float32Array;
  width: number;
} {
  const A = batch.numAgents ?? 1;
  const S = batch.stateSize ?? 0;
  const U = batch.numActions;
  const rowsPerStep = batch.numEnvs;
  const total = batch.numSteps * rowsPerStep;
  const width = S + A * U + A;
  const inputs = new Float32Array(total * width);
  const states = batch.states ?? new Float32Array(0);
  for (let i = 0; i < total; i++) {
    const o = i * width;
    inputs.set(states.subarray(i * S, (i + 1) * S), o);
    const row = i % rowsPerStep;
    const agent = row % A;
    const firstOfCopy = i - agent;
    for (let b = 0; b < A; b++) {
      if (b !== agent) inputs[o + S + b * U + batch.actions[firstOfCopy + b]] = 1;
    }
    inputs[o + S + A * U + agent] = 1;
  }
  return { inputs, width };
}

const params = z.object({
  gamma: z.number().min(0).max(1).default(0.99).describe('Discount factor'),
  lambda: z.number().min(0).max(1).default(0.8).describe('TD(lambda) of the critic targets'),
  hidden: z
    .array(z.number().int().min(1).max(4096))
    .min(0)
    .max(8)
    .default([64, 64])
    .describe('Hidden layer sizes of the centralised Q network'),
  criticLr: z.number().positive().max(1).default(1e-3).describe('Adam learning rate of the Q network'),
  criticEpochs: z
    .number()
    .int()
    .min(1)
    .max(100)
    .default(4)
    .describe('Passes of the Q network over each batch'),
  criticMinibatches: z.number().int().min(1).max(10_000).default(4).describe('Q minibatches per pass'),
  maxGradNorm: z
    .number()
    .positive()
    .max(1e6)
    .default(10)
    .describe('Global gradient-norm clip of the Q network'),
});

export default defineNode({
  type: 'credit.counterfactual',
  family: 'credit',
  title: 'Counterfactual baseline (COMA)',
  summary: "Per-agent advantage: Q(s,u) minus the expected Q over the agent's own action.",
  doc: `Counterfactual multi-agent policy gradients (Foerster, Farquhar, Afouras, Nardelli & Whiteson, AAAI
2018, "Counterfactual Multi-Agent Policy Gradients"). A centralised critic Q(s, u) of the joint action
answers, for each agent a, "what if only I had acted differently?":

  A^a(s, u) = Q(s, u) - sum_{u'^a} pi^a(u'^a | tau^a) Q(s, (u^{-a}, u'^a))

The baseline marginalises agent a's own action under its policy while keeping the others' actions
fixed, so it does not depend on u^a (the policy gradient stays unbiased) and it isolates agent a's
contribution to the shared reward: the multi-agent credit assignment problem.

The critic is learned inside this node, COMA's architecture: an MLP whose input is the global state s,
the other agents' actions u^{-a} (one-hot) and agent a's index, and whose |U| outputs are
Q(s, (u^{-a}, u')) for every action u' of agent a, so the baseline costs one forward pass. Each
iteration it is trained on the batch (Adam, \`criticEpochs\` x \`criticMinibatches\`, MSE on the taken joint
action) towards TD(lambda) targets computed with the pre-update critic (a target network refreshed every
iteration):

  y_t = r_t + gamma ((1 - lambda) Q(s_{t+1}, u_{t+1}) + lambda y_{t+1}),  y_t = r_t at a terminal step,

then the advantages are computed with the updated critic and pi^a from the wired policies (the ones
that collected the batch). Outputs per-agent advantages (row = copy * agents + agent) and the targets
y_t as returns. Original COMA used a plain actor-critic update; wired to trainer.ppo, the advantages drive
PPO's clipped surrogate instead.

Metrics: critic_loss, q_taken_mean, baseline_mean, advantage_mean, advantage_abs_mean.`,
  version: 1,
  inputs: [
    {
      name: 'env',
      type: 'Env',
      title: 'Environment',
      doc: 'The multi-agent environment: sets the size of the Q network (state, agents, actions).',
      accepts: { observation: ['vector'], action: ['discrete'], agents: ['multi'] },
    },
    {
      name: 'trajectories',
      type: 'Trajectories',
      title: 'Trajectories',
      doc: 'A multi-agent batch with joint actions and global states (rollout.multi-agent).',
      accepts: { observation: ['vector'], agents: ['multi'] },
    },
    {
      name: 'policy',
      type: 'Policy',
      title: 'Policies',
      multiple: true,
      doc: 'The policies that acted: one shared, or one per agent in agent order (for pi^a).',
      accepts: { action: ['discrete'] },
    },
  ],
  outputs: [{ name: 'advantages', type: 'Advantages', title: 'Advantages' }],
  params,
  keyParams: ['gamma', 'lambda'],
  create(p, ctx) {
    const tf = ctx.tf;
    const policies = [ctx.inputs.policy].flat() as DiscretePolicy[];
    const env = ctx.inputs.env as VectorEnv;
    if (!isMultiAgentEnv(env)) {
      throw new NodeError(ctx.nodeId, 'needs a multi-agent environment with a global state', 'env');
    }
    const U = env.numActions;
    const width = env.stateSize + env.numAgents * U + env.numAgents;
    const net = new Mlp(
      tf,
      { sizes: [width, ...p.hidden, U], activation: 'tanh', gains: [...p.hidden.map(() => Math.SQRT2), 1.0] },
      ctx.rng,
      ctx.nodeId,
    );
    const optimiser = new Adam(tf, net.variables, { beta1: 0.9, beta2: 0.999, epsilon: 1e-5 });

    const qValuesOf = async (inputs: Float32Array): Promise<Float32Array> => {
      const out = tf.tidy(() => net.apply(tf.tensor2d(inputs, [inputs.length / width, width])));
      const data = (await out.data()) as Float32Array;
      out.dispose();
      return data;
    };

    /** pi^a(. | o^a) for every row, from the policy of the row's agent. */
    const probsOf = async (batch: VectorTrajectories, A: number): Promise<Float32Array> => {
      const total = batch.numSteps * batch.numEnvs;
      const U = batch.numActions;
      const d = batch.observationSize;
      const probs = new Float32Array(total * U);
      for (let a = 0; a < policies.length; a++) {
        const out = tf.tidy(() =>
          tf.softmax(policies[a].logits(tf.tensor2d(batch.observations, [total, d]))),
        );
        const data = (await out.data()) as Float32Array;
        out.dispose();
        for (let i = 0; i < total; i++) {
          if (policies.length > 1 && (i % batch.numEnvs) % A !== a) continue;
          probs.set(data.subarray(i * U, (i + 1) * U), i * U);
        }
      }
      return probs;
    };

    return {
      async step(streams, info) {
        const batch = streams.trajectories as VectorTrajectories;
        const A = batch.numAgents;
        if (!A || !batch.states) {
          throw new NodeError(
            ctx.nodeId,
            'needs a multi-agent batch with joint actions and global states (rollout.multi-agent)',
            'trajectories',
          );
        }
        if (policies.length !== 1 && policies.length !== A) {
          throw new NodeError(ctx.nodeId, `wire one shared policy or one per agent (${A})`, 'policy');
        }
        const built = counterfactualCriticInputs(batch);
        if (built.width !== width || batch.numActions !== U) {
          throw new NodeError(
            ctx.nodeId,
            'the batch does not come from the wired environment',
            'trajectories',
          );
        }
        const inputs = built.inputs;
        const total = batch.numSteps * batch.numEnvs;

        // 1. Targets from the critic before this iteration's update.
        const qBefore = await qValuesOf(inputs);
        const taken = new Float32Array(total);
        for (let i = 0; i < total; i++) taken[i] = qBefore[i * U + batch.actions[i]];
        const targets = lambdaReturnTargets(batch, taken, p.gamma, p.lambda);

        // 2. Regress Q(s, u) on the targets.
        const mb = Math.floor(total / p.criticMinibatches);
        if (mb < 1) {
          throw new NodeError(
            ctx.nodeId,
            `more minibatches (${p.criticMinibatches}) than rows (${total})`,
            'criticMinibatches',
          );
        }
        const mbInputs = new Float32Array(mb * width);
        const mbActions = new Int32Array(mb);
        const mbTargets = new Float32Array(mb);
        let lossSum = 0;
        let updates = 0;
        for (let epoch = 0; epoch < p.criticEpochs; epoch++) {
          const order = ctx.rng.permutation(total);
          const losses: TF.Scalar[] = [];
          for (let start = 0; start + mb <= total; start += mb) {
            await ctx.control.point();
            for (let k = 0; k < mb; k++) {
              const i = order[start + k];
              mbInputs.set(inputs.subarray(i * width, (i + 1) * width), k * width);
              mbActions[k] = batch.actions[i];
              mbTargets[k] = targets[i];
            }
            const { grads, loss } = tf.tidy(() => {
              const x = tf.tensor2d(mbInputs, [mb, width]);
              const mask = tf.oneHot(tf.tensor1d(mbActions, 'int32'), U);
              const y = tf.tensor1d(mbTargets);
              let kept: TF.Scalar | undefined;
              const result = tf.variableGrads(() => {
                const q = tf.sum(tf.mul(net.apply(x), mask), 1);
                const l = tf.mean(tf.square(tf.sub(q, y))) as TF.Scalar;
                kept = tf.keep(l.clone());
                return l;
              }, net.variables);
              return { grads: net.variables.map((v) => result.grads[v.name]), loss: kept as TF.Scalar };
            });
            await optimiser.apply(grads, p.criticLr, p.maxGradNorm);
            tf.dispose(grads);
            losses.push(loss);
            updates += 1;
          }
          const values = await Promise.all(losses.map((l) => l.data()));
          for (const l of losses) l.dispose();
          for (const v of values) lossSum += v[0];
        }
        const criticLoss = lossSum / Math.max(1, updates);
        if (!Number.isFinite(criticLoss))
          throw new NonFiniteError(ctx.nodeId, 'critic_loss', String(criticLoss));

        // 3. Counterfactual advantages with the updated critic and the behaviour policies.
        const qAfter = await qValuesOf(inputs);
        const probs = await probsOf(batch, A);
        const { advantages, baselines, qTaken } = counterfactualAdvantages(qAfter, probs, batch.actions, U);
        const credit: Advantages = { advantages, returns: targets };
        const mean = (xs: Float32Array) => xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length);
        return {
          outputs: { advantages: credit },
          metrics: {
            critic_loss: criticLoss,
            q_taken_mean: mean(qTaken),
            baseline_mean: mean(baselines),
            advantage_mean: mean(advantages),
            advantage_abs_mean: mean(advantages.map(Math.abs)),
          },
          // The viewer shows each agent's steps with its counterfactual baseline as the "value".
          samples: vectorEpisodeSamples({ ...batch, values: baselines }, credit, ctx.nodeId, info.iteration),
        };
      },
      async saveState() {
        const weights = await net.saveArrays();
        const arrays: Record<string, Float32Array> = {};
        for (const [k, v] of Object.entries(weights)) arrays[`q.${k}`] = v;
        for (const [k, v] of Object.entries(optimiser.saveArrays())) arrays[`adam.${k}`] = v;
        return { json: { step: optimiser.step }, arrays };
      },
      loadState(state) {
        const weights: Record<string, ArrayLike<number>> = {};
        const moments: Record<string, ArrayLike<number>> = {};
        for (const [key, value] of Object.entries(state.arrays ?? {})) {
          if (key.startsWith('q.')) weights[key.slice(2)] = value;
          else if (key.startsWith('adam.')) moments[key.slice(5)] = value;
        }
        net.loadArrays(weights);
        optimiser.loadArrays(moments, (state.json as { step: number }).step);
      },
      dispose: () => net.dispose(),
    };
  },
});
