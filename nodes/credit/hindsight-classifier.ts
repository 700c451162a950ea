/**
 * The hindsight classifier of Hindsight Credit Assignment (Harutyunyan et al. 2019): a small MLP that
 * predicts the action taken, h(a | features), from features that include something seen *after* the
 * action (the return Z, or a future state). Trained by cross-entropy inside the credit node that owns it,
 * with host-side Adam; its weights and optimiser moments are saved with the node's checkpoint state.
 * Not a node: `credit.hca-return` and `credit.hca-state` share it.
 */
import type * as TF from '@tensorflow/tfjs';
import { Adam } from '../../src-main/engine/nn/adam.ts';
import { Mlp } from '../../src-main/engine/nn/mlp.ts';
import type { NodeState, Tf } from '../../src-main/engine/node-api.ts';
import type { Rng } from '../../src-main/engine/rng.ts';
import type { DiscretePolicy, VectorTrajectories } from '../contracts.ts';

export interface ClassifierOptions {
  hidden: number[];
  lr: number;
  epochs: number;
  minibatchSize: number;
}

export interface ClassifierFit {
  /** Mean cross-entropy over the minibatches of the last epoch. */
  loss: number;
}

export class HindsightClassifier {
  readonly net: Mlp;
  private readonly optimiser: Adam;
  private probsScratch = new Float32Array(0);

  constructor(
    private readonly tf: Tf,
    readonly featureSize: number,
    readonly numActions: number,
    private readonly options: ClassifierOptions,
    rng: Rng,
    nodeId: string,
  ) {
    const sizes = [featureSize, ...options.hidden, numActions];
    const gains = [...options.hidden.map(() => Math.SQRT2), 0.01];
    this.net = new Mlp(tf, { sizes, activation: 'tanh', gains }, rng, nodeId);
    this.optimiser = new Adam(tf, this.net.variables, { beta1: 0.9, beta2: 0.999, epsilon: 1e-8 });
  }

  /** Cross-entropy training on `count` rows of features (row-major) labelled with the actions taken. */
  /**
   * `baseLogits` ([count * numActions], optional) are added to the network's output: with log pi(.|x)
   * there, h = softmax(log pi + g) and the network g learns only how the hindsight input reweights the
   * policy (Bayes: h(a|x,Z) = pi(a|x) p(Z|x,a) / p(Z|x)), so h = pi exactly until evidence says otherwise.
   */
  async fit(
    features: Float32Array,
    actions: Int32Array,
    count: number,
    rng: Rng,
    baseLogits?: Float32Array,
  ): Promise<ClassifierFit> {
    const tf = this.tf;
    const d = this.featureSize;
    const mb = Math.min(this.options.minibatchSize, count);
    const mbFeatures = new Float32Array(mb * d);
    const mbActions = new Int32Array(mb);
    const k = this.numActions;
    const mbBase = new Float32Array(mb * k);
    let loss = 0;
    for (let epoch = 0; epoch < this.options.epochs; epoch++) {
      const order = rng.permutation(count);
      const losses: TF.Scalar[] = [];
      for (let start = 0; start + mb <= count; start += mb) {
        for (let r = 0; r < mb; r++) {
          const i = order[start + r];
          mbFeatures.set(features.subarray(i * d, (i + 1) * d), r * d);
          mbActions[r] = actions[i];
        }
        if (baseLogits) {
          for (let r = 0; r < mb; r++) {
            const i = order[start + r];
            mbBase.set(baseLogits.subarray(i * k, (i + 1) * k), r * k);
          }
        }
        const { grads, value } = tf.tidy(() => {
          const x = tf.tensor2d(mbFeatures, [mb, d]);
          const labels = tf.oneHot(tf.tensor1d(mbActions, 'int32'), this.numActions);
          const base = tf.tensor2d(mbBase, [mb, k]);
          const result = tf.variableGrads(() => {
            const logProbs = tf.logSoftmax(tf.add(this.net.apply(x), base));
            return tf.neg(tf.mean(tf.sum(tf.mul(labels, logProbs), 1))) as TF.Scalar;
          }, this.net.variables);
          return { grads: this.net.variables.map((v) => result.grads[v.name]), value: result.value };
        });
        await this.optimiser.apply(grads, this.options.lr, 1.0);
        tf.dispose(grads);
        losses.push(value);
      }
      const read = await Promise.all(losses.map((l) => l.data()));
      tf.dispose(losses);
      if (epoch === this.options.epochs - 1)
        loss = read.reduce((s, r) => s + r[0], 0) / Math.max(1, read.length);
    }
    await this.net.syncHost();
    return { loss };
  }

  /** h(. | features) for `count` rows on the host, [count * numActions]; valid until the next call. */
  probabilities(features: Float32Array, count: number, baseLogits?: Float32Array): Float32Array {
    const k = this.numActions;
    if (this.probsScratch.length < count * k) this.probsScratch = new Float32Array(count * k);
    const out = this.probsScratch;
    this.net.forwardHost(features, count, out);
    if (baseLogits) for (let i = 0; i < count * k; i++) out[i] += baseLogits[i];
    for (let row = 0; row < count; row++) {
      const o = row * k;
      let max = Number.NEGATIVE_INFINITY;
      for (let j = 0; j < k; j++) max = Math.max(max, out[o + j]);
      let total = 0;
      for (let j = 0; j < k; j++) {
        out[o + j] = Math.exp(out[o + j] - max);
        total += out[o + j];
      }
      for (let j = 0; j < k; j++) out[o + j] /= total;
    }
    return out;
  }

  async saveState(): Promise<NodeState> {
    const weights = await this.net.saveArrays();
    const moments = this.optimiser.saveArrays();
    const arrays: Record<string, Float32Array> = {};
    for (const [name, a] of Object.entries(weights)) arrays[`h_${name}`] = a;
    for (const [name, a] of Object.entries(moments)) arrays[`adam_${name}`] = a;
    return { json: { adamStep: this.optimiser.step }, arrays };
  }

  loadState(state: NodeState): void {
    const arrays = state.arrays ?? {};
    const pick = (prefix: string) =>
      Object.fromEntries(
        Object.entries(arrays)
          .filter(([name]) => name.startsWith(prefix))
          .map(([name, a]) => [name.slice(prefix.length), a]),
      );
    this.net.loadArrays(pick('h_'));
    this.optimiser.loadArrays(pick('adam_'), (state.json as { adamStep: number }).adamStep);
  }

  dispose(): void {
    this.net.dispose();
  }
}

/** Share of rows whose most probable action under `probs` ([count * numActions]) is the action taken. */
export function classifierAccuracy(
  probs: Float32Array,
  actions: Int32Array,
  count: number,
  numActions: number,
): number {
  let correct = 0;
  for (let i = 0; i < count; i++) {
    let best = 0;
    for (let a = 1; a < numActions; a++) {
      if (probs[i * numActions + a] > probs[i * numActions + best]) best = a;
    }
    if (best === actions[i]) correct += 1;
  }
  return correct / Math.max(1, count);
}

/** log pi(.|x) for every row of a batch of observations, [count * numActions], from the policy's logits. */
export async function policyLogProbs(
  tf: Tf,
  policy: DiscretePolicy,
  observations: Float32Array,
  count: number,
): Promise<Float32Array> {
  const logProbs = tf.tidy(() =>
    tf.logSoftmax(policy.logits(tf.tensor2d(observations, [count, policy.observationSize]))),
  );
  const data = (await logProbs.data()) as Float32Array;
  logProbs.dispose();
  return Float32Array.from(data);
}

/**
 * 1 for the steps whose episode ends inside the batch (terminated or truncated), 0 for the tail of each
 * env copy that the batch cut off: their return is unknown, so hindsight credit leaves them out.
 */
export function completeSteps(batch: VectorTrajectories): Uint8Array {
  const n = batch.numEnvs;
  const complete = new Uint8Array(batch.numSteps * n);
  for (let e = 0; e < n; e++) {
    let ended = false;
    for (let t = batch.numSteps - 1; t >= 0; t--) {
      const i = t * n + e;
      if (batch.terminated[i] || batch.truncated[i]) ended = true;
      complete[i] = ended ? 1 : 0;
    }
  }
  return complete;
}

/** The rows of `values` (row width `width`) where `keep` is 1, packed. */
export function keepRows<T extends Float32Array | Int32Array>(values: T, width: number, keep: Uint8Array): T {
  let count = 0;
  for (const k of keep) count += k;
  const out = new (values.constructor as new (n: number) => T)(count * width);
  let r = 0;
  for (let i = 0; i < keep.length; i++) {
    if (!keep[i]) continue;
    out.set(values.subarray(i * width, (i + 1) * width), r * width);
    r += 1;
  }
  return out;
}

/** One batch of classifier training rows: features, the actions taken, log pi(.|x) at the time. */
interface ReplayBatch {
  features: Float32Array;
  actions: Int32Array;
  baseLogits: Float32Array;
}

/**
 * The last `capacity` batches of (features, action) pairs: h is trained on all of them, since a
 * classifier fitted to one small batch is too noisy to tell pi from h. Saved with the node's state.
 */
export class HindsightReplay {
  private batches: ReplayBatch[] = [];

  constructor(
    readonly capacity: number,
    readonly featureSize: number,
    readonly numActions: number,
  ) {}

  add(features: Float32Array, actions: Int32Array, baseLogits: Float32Array): void {
    this.batches.push({ features, actions, baseLogits });
    if (this.batches.length > this.capacity) this.batches.shift();
  }

  get rows(): number {
    return this.batches.reduce((s, b) => s + b.actions.length, 0);
  }

  /** All rows, oldest first. */
  all(): ReplayBatch {
    const rows = this.rows;
    const out: ReplayBatch = {
      features: new Float32Array(rows * this.featureSize),
      actions: new Int32Array(rows),
      baseLogits: new Float32Array(rows * this.numActions),
    };
    let r = 0;
    for (const b of this.batches) {
      out.features.set(b.features, r * this.featureSize);
      out.actions.set(b.actions, r);
      out.baseLogits.set(b.baseLogits, r * this.numActions);
      r += b.actions.length;
    }
    return out;
  }

  saveArrays(): Record<string, Float32Array | Int32Array> {
    const arrays: Record<string, Float32Array | Int32Array> = {};
    this.batches.forEach((b, k) => {
      arrays[`replay${k}_features`] = b.features;
      arrays[`replay${k}_actions`] = b.actions;
      arrays[`replay${k}_base`] = b.baseLogits;
    });
    return arrays;
  }

  loadArrays(arrays: NonNullable<NodeState['arrays']>): void {
    this.batches = [];
    for (let k = 0; arrays[`replay${k}_actions`]; k++) {
      this.batches.push({
        features: Float32Array.from(arrays[`replay${k}_features`] ?? []),
        actions: Int32Array.from(arrays[`replay${k}_actions`] ?? []),
        baseLogits: Float32Array.from(arrays[`replay${k}_base`] ?? []),
      });
    }
  }
}
