import type * as TF from '@tensorflow/tfjs';
import { z } from 'zod';
import { Adam } from '../../src-main/engine/nn/adam.ts';
import { Mlp } from '../../src-main/engine/nn/mlp.ts';
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

export interface LatentOptions {
  latentSize: number;
  hidden: number;
  transitionHeads: number;
  consistencyWeight: number;
  lr: number;
  batchSize: number;
}

/**
 * Encoder e(o) = z, K latent transition heads z'_k = z + g_k(z, a), an observation decoder d(z) and a
 * reward / termination head h(z, a) = [r, logit]. Observations are normalised by the buffer's statistics.
 */
export class LatentWorldModel implements ImaginationModel {
  readonly stateSize: number;
  readonly encoder: Mlp;
  readonly decoder: Mlp;
  readonly transitions: Mlp[];
  readonly heads: Mlp;
  private readonly optimiser: Adam;
  private readonly all: Mlp[];
  input: Normaliser;
  reward: Normaliser;
  private readonly obsNorm: Float32Array;
  private readonly zIn: Float32Array;
  private readonly zNext: Float32Array[];
  private readonly decoded: Float32Array[];
  private readonly headOut: Float32Array;

  constructor(
    private readonly tf: Tf,
    readonly observationSize: number,
    readonly numActions: number,
    readonly options: LatentOptions,
    rng: Rng,
    private readonly nodeId: string,
  ) {
    const d = observationSize;
    const zs = options.latentSize;
    const h = options.hidden;
    this.stateSize = zs;
    const mlp = (sizes: number[]) =>
      new Mlp(
        tf,
        { sizes, activation: 'relu', gains: [...sizes.slice(2).map(() => Math.SQRT2), 1] },
        rng,
        nodeId,
      );
    this.encoder = mlp([d, h, zs]);
    this.decoder = mlp([zs, h, d]);
    this.transitions = Array.from({ length: options.transitionHeads }, () => mlp([zs + numActions, h, zs]));
    this.heads = mlp([zs + numActions, h, 2]);
    this.all = [this.encoder, this.decoder, ...this.transitions, this.heads];
    this.optimiser = new Adam(
      tf,
      this.all.flatMap((m) => m.variables),
      { beta1: 0.9, beta2: 0.999, epsilon: 1e-8 },
    );
    this.input = { mean: new Float32Array(d), std: new Float32Array(d).fill(1) };
    this.reward = { mean: new Float32Array(1), std: new Float32Array(1).fill(1) };
    this.obsNorm = new Float32Array(d);
    this.zIn = new Float32Array(zs + numActions);
    this.zNext = this.transitions.map(() => new Float32Array(zs));
    this.decoded = this.transitions.map(() => new Float32Array(d));
    this.headOut = new Float32Array(2);
  }

  fitNormalisers(buffer: TransitionBuffer): void {
    this.input = fitNormaliser(buffer.observations, this.observationSize, buffer.size);
    this.reward = fitNormaliser(buffer.rewards, 1, buffer.size);
  }

  /**
   * `steps` Adam updates on minibatches drawn with replacement (each transition head gets its own draw,
   * so the heads disagree where data is thin). Loss:
   *   ||d(e(o)) - o||^2 + mean_k ||d(z'_k) - o'||^2 + beta mean_k ||z'_k - sg(e(o'))||^2 + (r_hat - r)^2 + BCE
   * (squared errors averaged over dimensions, on normalised observations; the s' terms only where s' is known).
   */
  async train(buffer: TransitionBuffer, steps: number, rng: Rng): Promise<number> {
    const tf = this.tf;
    const K = this.transitions.length;
    const B = this.options.batchSize;
    const d = this.observationSize;
    const A = this.numActions;
    const zs = this.options.latentSize;
    const obs = new Float32Array(K * B * d);
    const next = new Float32Array(K * B * d);
    const onehot = new Float32Array(K * B * A);
    const rewards = new Float32Array(K * B);
    const dones = new Float32Array(K * B);
    const mask = new Float32Array(K * B);
    const variables = this.all.flatMap((m) => m.variables);
    let lossSum = 0;
    for (let step = 0; step < steps; step++) {
      let known = 0;
      for (let row = 0; row < K * B; row++) {
        const i = rng.int(buffer.size);
        for (let j = 0; j < d; j++) {
          obs[row * d + j] = (buffer.observations[i * d + j] - this.input.mean[j]) / this.input.std[j];
          next[row * d + j] = (buffer.nextObservations[i * d + j] - this.input.mean[j]) / this.input.std[j];
        }
        for (let a = 0; a < A; a++) onehot[row * A + a] = a === buffer.actions[i] ? 1 : 0;
        rewards[row] = (buffer.rewards[i] - this.reward.mean[0]) / this.reward.std[0];
        dones[row] = buffer.terminated[i];
        mask[row] = buffer.hasNext[i];
        known += buffer.hasNext[i];
      }
      const { grads, loss } = tf.tidy(() => {
        const o = tf.tensor2d(obs, [K * B, d]);
        const o2 = tf.tensor2d(next, [K * B, d]);
        const act = tf.tensor2d(onehot, [K * B, A]);
        const m = tf.tensor1d(mask);
        // Computed outside the gradient closure: a constant target (the stop-gradient of Dreamer's KL term).
        const target = this.encoder.apply(o2);
        const result = tf.variableGrads(() => {
          const z = this.encoder.apply(o);
          const recon = tf.mean(tf.square(tf.sub(this.decoder.apply(z), o)));
          const za = tf.concat([z, act], 1);
          let predict = tf.scalar(0);
          let consistency = tf.scalar(0);
          for (let k = 0; k < K; k++) {
            const rows = (t: TF.Tensor2D, width: number) => t.slice([k * B, 0], [B, width]);
            const zNext = tf.add(rows(z, zs), this.transitions[k].apply(rows(za, zs + A))) as TF.Tensor2D;
            const mk = m.slice(k * B, B);
            const obsErr = tf.mean(tf.square(tf.sub(this.decoder.apply(zNext), rows(o2, d))), 1);
            const latentErr = tf.mean(tf.square(tf.sub(zNext, rows(target, zs))), 1);
            predict = tf.add(predict, tf.sum(tf.mul(obsErr, mk)));
            consistency = tf.add(consistency, tf.sum(tf.mul(latentErr, mk)));
          }
          const scale = 1 / Math.max(1, known);
          const out = this.heads.apply(za);
          const rewardLoss = tf.mean(
            tf.square(tf.sub(out.slice([0, 0], [K * B, 1]).reshape([K * B]), rewards)),
          );
          const doneLoss = tf.losses.sigmoidCrossEntropy(
            dones,
            out.slice([0, 1], [K * B, 1]).reshape([K * B]),
          );
          return tf.addN([
            recon,
            tf.mul(predict, scale),
            tf.mul(consistency, scale * this.options.consistencyWeight),
            rewardLoss,
            doneLoss,
          ]) as TF.Scalar;
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
    await Promise.all(this.all.map((m) => m.syncHost()));
  }

  encode(observations: Float32Array, count: number, states: Float32Array): void {
    const d = this.observationSize;
    for (let e = 0; e < count; e++) {
      for (let j = 0; j < d; j++)
        this.obsNorm[j] = (observations[e * d + j] - this.input.mean[j]) / this.input.std[j];
      this.encoder.forwardHost(
        this.obsNorm,
        1,
        states.subarray(e * this.stateSize, (e + 1) * this.stateSize),
      );
    }
  }

  decode(states: Float32Array, count: number, observations: Float32Array): void {
    const d = this.observationSize;
    for (let e = 0; e < count; e++) {
      const out = observations.subarray(e * d, (e + 1) * d);
      this.decoder.forwardHost(states, 1, out, e * this.stateSize);
      for (let j = 0; j < d; j++) out[j] = this.input.mean[j] + this.input.std[j] * out[j];
    }
  }

  /**
   * z' = mean_k z'_k; reward and P(done) from the head on (z, a); disagreement = mean over observation
   * dimensions of the heads' standard deviation of the decoded (normalised) next observation.
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
    const zs = this.stateSize;
    const d = this.observationSize;
    const K = this.transitions.length;
    for (let e = 0; e < count; e++) {
      for (let j = 0; j < zs; j++) this.zIn[j] = states[e * zs + j];
      for (let a = 0; a < this.numActions; a++) this.zIn[zs + a] = a === actions[e] ? 1 : 0;
      for (let k = 0; k < K; k++) {
        this.transitions[k].forwardHost(this.zIn, 1, this.zNext[k]);
        for (let j = 0; j < zs; j++) this.zNext[k][j] += this.zIn[j];
        this.decoder.forwardHost(this.zNext[k], 1, this.decoded[k]);
      }
      for (let j = 0; j < zs; j++) {
        let mean = 0;
        for (let k = 0; k < K; k++) mean += this.zNext[k][j];
        out.nextStates[e * zs + j] = mean / K;
      }
      let spread = 0;
      for (let j = 0; j < d; j++) {
        let mean = 0;
        for (let k = 0; k < K; k++) mean += this.decoded[k][j];
        mean /= K;
        let variance = 0;
        for (let k = 0; k < K; k++) variance += (this.decoded[k][j] - mean) ** 2;
        spread += Math.sqrt(variance / K);
      }
      this.heads.forwardHost(this.zIn, 1, this.headOut);
      out.rewards[e] = this.reward.mean[0] + this.reward.std[0] * this.headOut[0];
      out.doneProbs[e] = 1 / (1 + Math.exp(-this.headOut[1]));
      out.disagreement[e] = spread / d;
    }
  }

  get optimiserStep(): number {
    return this.optimiser.step;
  }

  async saveArrays(): Promise<Record<string, Float32Array>> {
    const out: Record<string, Float32Array> = {};
    const weights = await Promise.all(this.all.map((m) => m.saveArrays()));
    weights.forEach((w, k) => {
      for (const [name, a] of Object.entries(w)) out[`net${k}_${name}`] = a;
    });
    for (const [name, a] of Object.entries(this.optimiser.saveArrays())) out[`adam_${name}`] = a;
    out.inputMean = this.input.mean;
    out.inputStd = this.input.std;
    out.rewardMean = this.reward.mean;
    out.rewardStd = this.reward.std;
    return out;
  }

  loadArrays(arrays: Record<string, ArrayLike<number>>, optimiserStep: number): void {
    this.all.forEach((m, k) => {
      m.loadArrays(arraysWithPrefix(arrays, `net${k}_`));
    });
    this.optimiser.loadArrays(arraysWithPrefix(arrays, 'adam_'), optimiserStep);
    const get = (name: string, width: number) => checkpointArray(arrays, name, width);
    const d = this.observationSize;
    this.input = { mean: get('inputMean', d), std: get('inputStd', d) };
    this.reward = { mean: get('rewardMean', 1), std: get('rewardStd', 1) };
  }

  dispose(): void {
    for (const m of this.all) m.dispose();
    this.optimiser.dispose();
  }
}

/** One-step prediction error (normalised observation MSE) and disagreement on real transitions. */
export function latentErrorOnBatch(
  model: LatentWorldModel,
  buffer: TransitionBuffer,
  rows: Int32Array,
): { disagreement: number; error: number } {
  const d = model.observationSize;
  const z = new Float32Array(model.stateSize);
  const decoded = new Float32Array(d);
  const action = new Int32Array(1);
  const out = {
    nextStates: new Float32Array(model.stateSize),
    rewards: new Float32Array(1),
    doneProbs: new Float32Array(1),
    disagreement: new Float32Array(1),
  };
  let disagreement = 0;
  let error = 0;
  let known = 0;
  for (const i of rows) {
    model.encode(buffer.observations.subarray(i * d, (i + 1) * d), 1, z);
    action[0] = buffer.actions[i];
    model.predict(z, action, 1, out);
    disagreement += out.disagreement[0];
    if (!buffer.hasNext[i]) continue;
    model.decode(out.nextStates, 1, decoded);
    known += 1;
    let sq = 0;
    for (let j = 0; j < d; j++)
      sq += ((decoded[j] - buffer.nextObservations[i * d + j]) / model.input.std[j]) ** 2;
    error += sq / d;
  }
  return { disagreement: disagreement / Math.max(1, rows.length), error: error / Math.max(1, known) };
}

const params = z.object({
  latentSize: z.number().int().min(1).max(1024).default(16).describe('Size of the latent state z'),
  hidden: z.number().int().min(1).max(4096).default(64).describe('Hidden width of every network'),
  transitionHeads: z
    .number()
    .int()
    .min(2)
    .max(16)
    .default(3)
    .describe('Latent transition heads whose disagreement measures uncertainty'),
  consistencyWeight: z
    .number()
    .min(0)
    .max(100)
    .default(1)
    .describe('Weight of the latent consistency term ||z_next - sg(e(o_next))||^2'),
  lr: z.number().positive().max(1).default(1e-3).describe('Adam learning rate of the model'),
  trainSteps: z.number().int().min(0).max(100_000).default(40).describe('Model updates per iteration'),
  batchSize: z.number().int().min(1).max(65_536).default(128).describe('Transitions per head per update'),
  ...imaginationParams,
});

export default defineNode({
  type: 'world.latent',
  family: 'world',
  title: 'Latent world model',
  summary: 'Encoder, latent dynamics and decoders (Dreamer-style); offers an imagined Env for Dyna.',
  doc: `A small latent world model in the manner of Dreamer (Hafner, Lillicrap, Ba & Norouzi 2020, "Dream to
Control: Learning Behaviors by Latent Imagination"; World Models, Ha & Schmidhuber 2018), trained on the
real trajectories wired into it and offered as an **imagined environment** for Dyna-style training.

**Model.** An encoder z = e(o) (o normalised by the buffer's statistics), K latent transition heads
z'_k = z + g_k(z, a), an observation decoder o_hat = d(z), and a reward / termination head
[r_hat, l] = h(z, a) with P(done) = sigmoid(l). The loss per minibatch:

  L = ||d(e(o)) - o||^2 + mean_k ||d(z'_k) - o'||^2 + beta mean_k ||z'_k - sg(e(o'))||^2 + (r_hat - r)^2 + BCE(sigmoid(l), done)

(squared errors averaged over dimensions; the o' terms only where o' is known). The reconstruction and
prediction terms ground the latent in observations; the consistency term (Dreamer's latent KL reduced to
its deterministic mean, with the target's gradient stopped as in SPR/TD-MPC) keeps the latent dynamics
self-consistent over several imagined steps. Simplification against Dreamer: the latent is deterministic
(no RSSM stochastic state or recurrent memory), which suits fully observed tasks such as CartPole; the
disagreement of the K heads (Plan2Explore, Sekar et al. 2020) stands in for uncertainty.

**Imagination.** Episodes start from e(o) of real buffer observations; each step z' = mean_k z'_k and the
policy sees d(z'). Disagreement u = (1/dim) sum_j std_k(d(z'_k)_j) on normalised observations. Episodes end at
\`horizon\`, at P(done) >= \`terminationThreshold\` (terminated) or when u > \`uncertaintyCutoff\` (truncated).
Imagined steps count no real environment steps.

Metrics: \`uncertainty\` and \`model_error\` (normalised one-step MSE) on this iteration's fresh real
transitions before training on them, \`loss\`, \`buffer_size\`, \`imagined_uncertainty\`,
\`imagined_episode_length\`, \`uncertainty_cut_fraction\`, \`termination_fraction\`.`,
  version: 1,
  ...worldModelPorts,
  params,
  keyParams: ['latentSize', 'horizon', 'uncertaintyCutoff'],
  create(p, ctx) {
    const real = ctx.inputs.env as VectorEnv;
    const d = real.observationSize;
    const model = new LatentWorldModel(
      ctx.tf,
      d,
      real.numActions,
      {
        latentSize: p.latentSize,
        hidden: p.hidden,
        transitionHeads: p.transitionHeads,
        consistencyWeight: p.consistencyWeight,
        lr: p.lr,
        batchSize: p.batchSize,
      },
      ctx.rng,
      ctx.nodeId,
    );
    return worldModelInstance(ctx, p, model, {
      evaluate: latentErrorOnBatch,
      // Imagined copies mid-episode hold latents of the old model: carry them over as observations.
      aroundTraining(imagined) {
        const midEpisode = imagined.started ? Float32Array.from(imagined.observations()) : undefined;
        return () => {
          if (midEpisode) model.encode(midEpisode, imagined.numEnvs, imagined.states);
        };
      },
    });
  },
});
