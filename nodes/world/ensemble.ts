import type * as TF from '@tensorflow/tfjs';
import { z } from 'zod';
import { Adam } from '../../src-main/engine/nn/adam.ts';
import { type Activation, Mlp } from '../../src-main/engine/nn/mlp.ts';
import { defineNode, NonFiniteError, type Tf } from '../../src-main/engine/node-api.ts';
import type { Rng } from '../../src-main/engine/rng.ts';
import type { VectorEnv } from '../contracts.ts';
import {
  arraysWithPrefix,
  checkpointArray,
  fitNormaliser,
  type ImaginationModel,
  type Normaliser,
  type TransitionBuffer,
} from './imagination.ts';
import { imaginationParams, worldModelInstance, worldModelPorts } from './world-node.ts';

export interface EnsembleOptions {
  members: number;
  hidden: number[];
  activation: Activation;
  lr: number;
  batchSize: number;
}

/**
 * K independently initialised MLPs f_k(normalise(s), onehot(a)) -> [normalised (s' - s), normalised r,
 * termination logit]. Trained with Adam on the mean of the members' losses; each member draws its own
 * minibatch with replacement from the buffer (the bootstrap of Lakshminarayanan et al. 2017 / PETS).
 */
export class DynamicsEnsemble implements ImaginationModel {
  readonly members: Mlp[];
  readonly stateSize: number;
  private readonly optimiser: Adam;
  private readonly inputSize: number;
  private readonly outputSize: number;
  input: Normaliser;
  delta: Normaliser;
  reward: Normaliser;
  private readonly hostIn: Float32Array;
  private readonly hostOut: Float32Array[];

  constructor(
    private readonly tf: Tf,
    readonly observationSize: number,
    readonly numActions: number,
    readonly options: EnsembleOptions,
    rng: Rng,
    private readonly nodeId: string,
  ) {
    const d = observationSize;
    this.stateSize = d;
    this.inputSize = d + numActions;
    this.outputSize = d + 2;
    const sizes = [this.inputSize, ...options.hidden, this.outputSize];
    const gains = [...options.hidden.map(() => Math.SQRT2), 1];
    this.members = Array.from(
      { length: options.members },
      () => new Mlp(tf, { sizes, activation: options.activation, gains }, rng, nodeId),
    );
    this.optimiser = new Adam(
      tf,
      this.members.flatMap((m) => m.variables),
      { beta1: 0.9, beta2: 0.999, epsilon: 1e-8 },
    );
    const identity = (width: number): Normaliser => ({
      mean: new Float32Array(width),
      std: new Float32Array(width).fill(1),
    });
    this.input = identity(d);
    this.delta = identity(d);
    this.reward = identity(1);
    this.hostIn = new Float32Array(this.inputSize);
    this.hostOut = this.members.map(() => new Float32Array(this.outputSize));
  }

  /** Refits the input/output normalisers to the buffer (before a round of training, as MBPO does). */
  fitNormalisers(buffer: TransitionBuffer): void {
    const d = this.observationSize;
    const n = buffer.size;
    this.input = fitNormaliser(buffer.observations, d, n);
    const deltas = new Float32Array(n * d);
    for (let i = 0; i < n * d; i++) deltas[i] = buffer.nextObservations[i] - buffer.observations[i];
    this.delta = fitNormaliser(deltas, d, n, (r) => buffer.hasNext[r] === 1);
    this.reward = fitNormaliser(buffer.rewards, 1, n);
  }

  private writeInput(
    obs: ArrayLike<number>,
    obsOffset: number,
    action: number,
    out: Float32Array,
    at: number,
  ) {
    const d = this.observationSize;
    for (let j = 0; j < d; j++) out[at + j] = (obs[obsOffset + j] - this.input.mean[j]) / this.input.std[j];
    for (let a = 0; a < this.numActions; a++) out[at + d + a] = a === action ? 1 : 0;
  }

  /**
   * `steps` Adam updates; per update each member k samples `batchSize` buffer rows with replacement and
   * the loss is mean_k [ masked MSE(delta) + MSE(reward) + BCE(termination) ]. Returns the mean loss.
   */
  async train(buffer: TransitionBuffer, steps: number, rng: Rng): Promise<number> {
    const tf = this.tf;
    const K = this.members.length;
    const B = this.options.batchSize;
    const d = this.observationSize;
    const x = new Float32Array(K * B * this.inputSize);
    const yDelta = new Float32Array(K * B * d);
    const yReward = new Float32Array(K * B);
    const yDone = new Float32Array(K * B);
    const mask = new Float32Array(K * B);
    const variables = this.members.flatMap((m) => m.variables);
    let lossSum = 0;
    for (let step = 0; step < steps; step++) {
      const known = new Float32Array(K);
      for (let k = 0; k < K; k++) {
        for (let b = 0; b < B; b++) {
          const row = k * B + b;
          const i = rng.int(buffer.size);
          this.writeInput(buffer.observations, i * d, buffer.actions[i], x, row * this.inputSize);
          for (let j = 0; j < d; j++) {
            const change = buffer.nextObservations[i * d + j] - buffer.observations[i * d + j];
            yDelta[row * d + j] = (change - this.delta.mean[j]) / this.delta.std[j];
          }
          yReward[row] = (buffer.rewards[i] - this.reward.mean[0]) / this.reward.std[0];
          yDone[row] = buffer.terminated[i];
          mask[row] = buffer.hasNext[i];
          known[k] += buffer.hasNext[i];
        }
      }
      const { grads, loss } = tf.tidy(() => {
        const xs = tf.tensor2d(x, [K * B, this.inputSize]);
        const deltas = tf.tensor2d(yDelta, [K * B, d]);
        const rewards = tf.tensor1d(yReward);
        const dones = tf.tensor1d(yDone);
        const masks = tf.tensor1d(mask);
        const result = tf.variableGrads(() => {
          let total = tf.scalar(0);
          for (let k = 0; k < K; k++) {
            const rows = (t: TF.Tensor) => t.slice(k * B, B);
            const out = this.members[k].apply(xs.slice([k * B, 0], [B, this.inputSize]));
            const predDelta = out.slice([0, 0], [B, d]);
            const predReward = out.slice([0, d], [B, 1]).reshape([B]);
            const doneLogit = out.slice([0, d + 1], [B, 1]).reshape([B]);
            const deltaErr = tf.mean(tf.square(tf.sub(predDelta, deltas.slice([k * B, 0], [B, d]))), 1);
            const deltaLoss = tf.div(tf.sum(tf.mul(deltaErr, rows(masks))), Math.max(1, known[k]));
            const rewardLoss = tf.mean(tf.square(tf.sub(predReward, rows(rewards))));
            const doneLoss = tf.losses.sigmoidCrossEntropy(rows(dones), doneLogit);
            total = tf.add(total, tf.add(deltaLoss, tf.add(rewardLoss, doneLoss)));
          }
          return tf.div(total, K) as TF.Scalar;
        }, variables);
        return { grads: variables.map((v) => result.grads[v.name]), loss: result.value };
      });
      await this.optimiser.apply(grads, this.options.lr);
      tf.dispose(grads);
      const value = (await loss.data())[0];
      loss.dispose();
      if (!Number.isFinite(value))
        throw new NonFiniteError(this.nodeId, 'loss', `model training step ${step}`);
      lossSum += value;
    }
    await this.syncHost();
    return lossSum / Math.max(1, steps);
  }

  async syncHost(): Promise<void> {
    await Promise.all(this.members.map((m) => m.syncHost()));
  }

  encode(observations: Float32Array, count: number, states: Float32Array): void {
    states.set(observations.subarray(0, count * this.observationSize));
  }

  decode(states: Float32Array, count: number, observations: Float32Array): void {
    observations.set(states.subarray(0, count * this.observationSize));
  }

  /**
   * Next state = s + mean_k delta_k; reward = mean_k r_k; termination probability = mean_k sigmoid(l_k);
   * disagreement = mean over dimensions of the members' standard deviation of the normalised delta.
   */
  predict(
    states: Float32Array,
    actions: Int32Array,
    count: number,
    out: {
      nextStates: Float32Array;
      rewards: Float32Array;
      doneProbs: Float32Array;
      disagreement: Float32Array;
    },
  ): void {
    const d = this.observationSize;
    const K = this.members.length;
    for (let e = 0; e < count; e++) {
      this.writeInput(states, e * d, actions[e], this.hostIn, 0);
      for (let k = 0; k < K; k++) this.members[k].forwardHost(this.hostIn, 1, this.hostOut[k]);
      let spread = 0;
      for (let j = 0; j < d; j++) {
        let mean = 0;
        for (let k = 0; k < K; k++) mean += this.hostOut[k][j];
        mean /= K;
        let variance = 0;
        for (let k = 0; k < K; k++) variance += (this.hostOut[k][j] - mean) ** 2;
        spread += Math.sqrt(variance / K);
        out.nextStates[e * d + j] = states[e * d + j] + this.delta.mean[j] + this.delta.std[j] * mean;
      }
      let reward = 0;
      let done = 0;
      for (let k = 0; k < K; k++) {
        reward += this.hostOut[k][d];
        done += 1 / (1 + Math.exp(-this.hostOut[k][d + 1]));
      }
      out.rewards[e] = this.reward.mean[0] + this.reward.std[0] * (reward / K);
      out.doneProbs[e] = done / K;
      out.disagreement[e] = spread / d;
    }
  }

  async saveArrays(): Promise<Record<string, Float32Array>> {
    const out: Record<string, Float32Array> = {};
    const weights = await Promise.all(this.members.map((m) => m.saveArrays()));
    weights.forEach((w, k) => {
      for (const [name, a] of Object.entries(w)) out[`member${k}_${name}`] = a;
    });
    for (const [name, a] of Object.entries(this.optimiser.saveArrays())) out[`adam_${name}`] = a;
    out.inputMean = this.input.mean;
    out.inputStd = this.input.std;
    out.deltaMean = this.delta.mean;
    out.deltaStd = this.delta.std;
    out.rewardMean = this.reward.mean;
    out.rewardStd = this.reward.std;
    return out;
  }

  get optimiserStep(): number {
    return this.optimiser.step;
  }

  loadArrays(arrays: Record<string, ArrayLike<number>>, optimiserStep: number): void {
    this.members.forEach((m, k) => {
      m.loadArrays(arraysWithPrefix(arrays, `member${k}_`));
    });
    this.optimiser.loadArrays(arraysWithPrefix(arrays, 'adam_'), optimiserStep);
    const get = (name: string, width: number) => checkpointArray(arrays, name, width);
    const d = this.observationSize;
    this.input = { mean: get('inputMean', d), std: get('inputStd', d) };
    this.delta = { mean: get('deltaMean', d), std: get('deltaStd', d) };
    this.reward = { mean: get('rewardMean', 1), std: get('rewardStd', 1) };
  }

  dispose(): void {
    for (const m of this.members) m.dispose();
    this.optimiser.dispose();
  }
}

/** Mean over a batch of the ensemble's disagreement and of its squared error on the normalised delta. */
export function evaluateOnBatch(
  model: DynamicsEnsemble,
  buffer: TransitionBuffer,
  rows: Int32Array,
): { disagreement: number; error: number } {
  const d = model.observationSize;
  const states = new Float32Array(d);
  const action = new Int32Array(1);
  const out = {
    nextStates: new Float32Array(d),
    rewards: new Float32Array(1),
    doneProbs: new Float32Array(1),
    disagreement: new Float32Array(1),
  };
  let disagreement = 0;
  let error = 0;
  let known = 0;
  for (const i of rows) {
    states.set(buffer.observations.subarray(i * d, (i + 1) * d));
    action[0] = buffer.actions[i];
    model.predict(states, action, 1, out);
    disagreement += out.disagreement[0];
    if (!buffer.hasNext[i]) continue;
    known += 1;
    let sq = 0;
    for (let j = 0; j < d; j++) {
      sq += ((out.nextStates[j] - buffer.nextObservations[i * d + j]) / model.delta.std[j]) ** 2;
    }
    error += sq / d;
  }
  return { disagreement: disagreement / Math.max(1, rows.length), error: error / Math.max(1, known) };
}

const params = z.object({
  members: z.number().int().min(2).max(32).default(5).describe('Ensemble size K'),
  hidden: z
    .array(z.number().int().min(1).max(4096))
    .min(1)
    .max(8)
    .default([64, 64])
    .describe('Hidden layer widths of each member'),
  activation: z.enum(['relu', 'tanh']).default('relu').describe('Hidden activation'),
  lr: z.number().positive().max(1).default(1e-3).describe('Adam learning rate of the model'),
  trainSteps: z.number().int().min(0).max(100_000).default(40).describe('Model updates per iteration'),
  batchSize: z.number().int().min(1).max(65_536).default(128).describe('Transitions per member per update'),
  ...imaginationParams,
});

export default defineNode({
  type: 'world.ensemble',
  family: 'world',
  title: 'Ensemble world model',
  summary: 'K MLPs learn dynamics, reward and termination; offers an imagined Env for Dyna.',
  doc: `A probabilistic-ensemble-style dynamics model (PETS, Chua et al. 2018; MBPO, Janner et al. 2019),
trained on the real trajectories wired into it, offered as an **imagined environment** so that a rollout
node can collect model-generated experience for the learner: Dyna (Sutton 1991, "Dyna, an integrated
architecture for learning, planning, and reacting").

**Model.** K MLPs, each f_k(s_norm, onehot(a)) = [dhat_k, rhat_k, l_k], with s_norm = (s - mu_s) / sigma_s and
targets normalised by the buffer's statistics (refitted each iteration): dhat approximates (s' - s - mu_d) / sigma_d,
rhat approximates (r - mu_r) / sigma_r and sigmoid(l_k) = P(terminated | s, a). Loss per member:

  L_k = mean_{known s'} ||dhat_k - d||^2 / dim + mean (rhat_k - r)^2 + BCE(sigmoid(l_k), terminated)

minimised with Adam; each member draws its own minibatch with replacement (bootstrap-style resampling,
Lakshminarayanan et al. 2017), which with independent initialisations keeps the members diverse where
data is missing. Real transitions live in a replay buffer inside the node (saved in checkpoints).

**Imagination.** s' = s + mu_d + sigma_d mean_k dhat_k, r = mean_k r_k, P(done) = mean_k sigmoid(l_k).
The **disagreement** u = (1/dim) sum_j std_k(dhat_{k,j}) estimates epistemic uncertainty. Imagined episodes
start from real states drawn from the buffer (MBPO's branched rollouts) and end at \`horizon\` steps, when
P(done) >= \`terminationThreshold\` (terminated), or when u > \`uncertaintyCutoff\` (truncated: the learner
bootstraps from V instead of trusting the model further). The imagined Env counts no real environment steps.

Wiring: real rollout -> \`trajectories\`; \`env\` (the real Env, for shapes); the \`imagined\` output feeds a
second rollout whose experience is mixed with the real one (\`rollout.mix\`) before the trainer. The
compiler orders the world model after the real rollout and before the imagined rollout.

Metrics: \`uncertainty\` (mean disagreement on this iteration's fresh real transitions, before training
on them), \`model_error\` (their normalised next-state MSE, a held-out error), \`loss\`, \`buffer_size\`, and
for the imagination since the last iteration \`imagined_uncertainty\`, \`imagined_episode_length\`,
\`uncertainty_cut_fraction\`, \`termination_fraction\`.`,
  version: 1,
  ...worldModelPorts,
  params,
  keyParams: ['members', 'horizon', 'uncertaintyCutoff'],
  create(p, ctx) {
    const real = ctx.inputs.env as VectorEnv;
    const d = real.observationSize;
    const model = new DynamicsEnsemble(
      ctx.tf,
      d,
      real.numActions,
      { members: p.members, hidden: p.hidden, activation: p.activation, lr: p.lr, batchSize: p.batchSize },
      ctx.rng,
      ctx.nodeId,
    );
    return worldModelInstance(ctx, p, model, {
      evaluate: evaluateOnBatch,
    });
  },
});
