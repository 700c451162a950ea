/**
 * The PPO update of small MLPs on the host: forward pass, the PPO loss of trainer.ppo (`ppoLoss`) and its
 * exact gradient, and the backward pass, all in typed-array loops. For a 64-64 actor and critic a
 * minibatch is ~150 tfjs ops whose fixed per-op cost (not the arithmetic) dominates; here it is a few
 * million multiply-adds with no allocation. Same math as the tensor path (tested to agree within float32
 * rounding in test/unit/nn-host-ppo.test.ts); trainer.ppo picks it for small networks (`updateOn`).
 */
import type { Activation } from './mlp.ts';

/**
 * out[r, c] = sum_k a[r, k] * b[c, k] for r < rows, c < cols (a: [rows, inner], b: [cols, inner],
 * out: [rows, cols], all row-major): every product is a dot product of two contiguous rows. Blocked
 * 4 rows x 2 columns so that 8 independent sums share 6 loads per step (~3x a naive triple loop in V8).
 */
export function matMulTransposed(
  a: Float64Array,
  rows: number,
  b: Float64Array,
  cols: number,
  inner: number,
  out: Float64Array,
): void {
  let r = 0;
  for (; r + 3 < rows; r += 4) {
    const a0 = r * inner;
    const a1 = a0 + inner;
    const a2 = a1 + inner;
    const a3 = a2 + inner;
    const o0 = r * cols;
    const o1 = o0 + cols;
    const o2 = o1 + cols;
    const o3 = o2 + cols;
    for (let c = 0; c < cols; c += 2) {
      const pair = c + 1 < cols;
      const b0 = c * inner;
      const b1 = pair ? b0 + inner : b0;
      let s00 = 0;
      let s01 = 0;
      let s10 = 0;
      let s11 = 0;
      let s20 = 0;
      let s21 = 0;
      let s30 = 0;
      let s31 = 0;
      for (let k = 0; k < inner; k++) {
        const y0 = b[b0 + k];
        const y1 = b[b1 + k];
        const x0 = a[a0 + k];
        const x1 = a[a1 + k];
        const x2 = a[a2 + k];
        const x3 = a[a3 + k];
        s00 += x0 * y0;
        s01 += x0 * y1;
        s10 += x1 * y0;
        s11 += x1 * y1;
        s20 += x2 * y0;
        s21 += x2 * y1;
        s30 += x3 * y0;
        s31 += x3 * y1;
      }
      out[o0 + c] = s00;
      out[o1 + c] = s10;
      out[o2 + c] = s20;
      out[o3 + c] = s30;
      if (pair) {
        out[o0 + c + 1] = s01;
        out[o1 + c + 1] = s11;
        out[o2 + c + 1] = s21;
        out[o3 + c + 1] = s31;
      }
    }
  }
  for (; r < rows; r++) {
    const a0 = r * inner;
    for (let c = 0; c < cols; c++) {
      const b0 = c * inner;
      let s = 0;
      for (let k = 0; k < inner; k++) s += a[a0 + k] * b[b0 + k];
      out[r * cols + c] = s;
    }
  }
}

/** out = transpose of the row-major [rows, cols] matrix m (as float64). */
export function transposeInto(m: ArrayLike<number>, rows: number, cols: number, out: Float64Array): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    for (let c = 0; c < cols; c++) out[c * rows + r] = m[o + c];
  }
}

/** Forward/backward of one MLP over a batch, with activations kept for the backward pass. */
export class HostMlpPass {
  /** acts[0] = input, acts[l] = output of layer l (after the activation except for the last layer). */
  private readonly acts: Float64Array[];
  private readonly deltas: Float64Array[];
  /** Per layer: W as float64 [in, out] and transposed [out, in], refreshed by forward(). */
  private readonly weights: Float64Array[];
  private readonly weightsT: Float64Array[];
  private readonly actT: Float64Array;
  private readonly deltaT: Float64Array;
  private readonly gradW: Float64Array[];
  /** Gradient accumulators aligned with the parameter list [W0, b0, W1, b1, ...]. */
  readonly grads: Float64Array[];

  constructor(
    readonly sizes: number[],
    readonly activation: Activation,
    readonly batch: number,
  ) {
    this.acts = sizes.map((s) => new Float64Array(s * batch));
    this.deltas = sizes.map((s) => new Float64Array(s * batch));
    this.grads = [];
    this.weights = [];
    this.weightsT = [];
    this.gradW = [];
    for (let l = 0; l + 1 < sizes.length; l++) {
      const n = sizes[l] * sizes[l + 1];
      this.grads.push(new Float64Array(n), new Float64Array(sizes[l + 1]));
      this.weights.push(new Float64Array(n));
      this.weightsT.push(new Float64Array(n));
      this.gradW.push(this.grads[2 * l]);
    }
    const widest = Math.max(...sizes);
    this.actT = new Float64Array(widest * batch);
    this.deltaT = new Float64Array(widest * batch);
  }

  /** Forward pass of `count` rows (row-major [count, in]); returns the [count, out] outputs (a view). */
  forward(params: Float32Array[], input: Float32Array, count: number): Float64Array {
    const { sizes } = this;
    const layers = sizes.length - 1;
    const tanh = this.activation === 'tanh';
    const x0 = this.acts[0];
    for (let k = 0; k < count * sizes[0]; k++) x0[k] = input[k];
    for (let l = 0; l < layers; l++) {
      const w = params[2 * l];
      const b = params[2 * l + 1];
      const nIn = sizes[l];
      const nOut = sizes[l + 1];
      this.weights[l].set(w);
      transposeInto(w, nIn, nOut, this.weightsT[l]);
      const z = this.acts[l + 1];
      matMulTransposed(this.acts[l], count, this.weightsT[l], nOut, nIn, z);
      const hidden = l + 1 < layers;
      for (let r = 0; r < count; r++) {
        const zo = r * nOut;
        for (let j = 0; j < nOut; j++) {
          const v = z[zo + j] + b[j];
          z[zo + j] = hidden ? (tanh ? Math.tanh(v) : v > 0 ? v : 0) : v;
        }
      }
    }
    return this.acts[layers];
  }

  /** The [count, out] gradient buffer for the outputs; fill it, then call backward(). */
  outputGradient(): Float64Array {
    return this.deltas[this.sizes.length - 1];
  }

  /** Backward pass of the last forward() (same params): overwrites `grads` with dLoss/dParams. */
  backward(count: number): void {
    const { sizes } = this;
    const layers = sizes.length - 1;
    const tanh = this.activation === 'tanh';
    for (let l = layers - 1; l >= 0; l--) {
      const nIn = sizes[l];
      const nOut = sizes[l + 1];
      const dz = this.deltas[l + 1];
      const h = this.acts[l];
      const gb = this.grads[2 * l + 1];
      gb.fill(0);
      for (let r = 0; r < count; r++) {
        const zo = r * nOut;
        for (let j = 0; j < nOut; j++) gb[j] += dz[zo + j];
      }
      // dW[i, j] = sum_r h[r, i] dz[r, j]: rows of h^T against rows of dz^T.
      transposeInto(h, count, nIn, this.actT);
      transposeInto(dz, count, nOut, this.deltaT);
      matMulTransposed(this.actT, nIn, this.deltaT, nOut, count, this.gradW[l]);
      if (l === 0) break;
      // dh[r, i] = sum_j dz[r, j] W[i, j], then through the activation of layer l (whose output is h).
      const dh = this.deltas[l];
      matMulTransposed(dz, count, this.weights[l], nIn, nOut, dh);
      for (let k = 0; k < count * nIn; k++) {
        const a = h[k];
        dh[k] = tanh ? dh[k] * (1 - a * a) : a > 0 ? dh[k] : 0;
      }
    }
  }
}

export interface HostPpoMinibatch {
  count: number;
  actions: Int32Array;
  oldLogProbs: Float32Array;
  advantages: Float32Array;
  oldValues: Float32Array;
  returns: Float32Array;
}

export interface HostPpoOptions {
  clip: number;
  clipValueLoss: boolean;
  entropyCoef: number;
  valueCoef: number;
}

/**
 * The PPO loss of `ppoLoss` (trainer.ppo) on host logits/values, writing dLoss/dLogits into `dLogits`
 * and dLoss/dValues into `dValues` (when values are given). Gradient routing follows tfjs's: max() sends
 * the gradient to its first argument on ties, clip passes it inside the closed interval.
 * Returns [policy, value, entropy, approxKl, clipFraction].
 */
export function ppoLossHost(
  logits: Float64Array,
  numActions: number,
  values: Float64Array | undefined,
  x: HostPpoMinibatch,
  o: HostPpoOptions,
  dLogits: Float64Array,
  dValues: Float64Array | undefined,
): [number, number, number, number, number] {
  const n = x.count;
  const k = numActions;
  const lo = 1 - o.clip;
  const hi = 1 + o.clip;
  let policySum = 0;
  let entropySum = 0;
  let klSum = 0;
  let clipped = 0;
  for (let r = 0; r < n; r++) {
    const o0 = r * k;
    let max = Number.NEGATIVE_INFINITY;
    for (let j = 0; j < k; j++) if (logits[o0 + j] > max) max = logits[o0 + j];
    let total = 0;
    for (let j = 0; j < k; j++) total += Math.exp(logits[o0 + j] - max);
    const logTotal = Math.log(total) + max;
    let entropy = 0;
    for (let j = 0; j < k; j++) {
      const lp = logits[o0 + j] - logTotal;
      entropy -= Math.exp(lp) * lp;
    }
    const a = x.actions[r];
    const logRatio = logits[o0 + a] - logTotal - x.oldLogProbs[r];
    const ratio = Math.exp(logRatio);
    const adv = x.advantages[r];
    const unclippedLoss = -adv * ratio;
    const ratioClipped = ratio < lo ? lo : ratio > hi ? hi : ratio;
    const clippedLoss = -adv * ratioClipped;
    // d(per-row policy loss)/d ratio
    let dRatio: number;
    if (unclippedLoss >= clippedLoss) {
      policySum += unclippedLoss;
      dRatio = -adv;
    } else {
      policySum += clippedLoss;
      dRatio = ratio >= lo && ratio <= hi ? -adv : 0;
    }
    entropySum += entropy;
    klSum += ratio - 1 - logRatio;
    if (Math.abs(ratio - 1) > o.clip) clipped += 1;
    for (let j = 0; j < k; j++) {
      const lp = logits[o0 + j] - logTotal;
      const p = Math.exp(lp);
      const policyGrad = dRatio * ratio * ((j === a ? 1 : 0) - p);
      // loss has -c_e * mean(H); dH/dz_j = -p_j (log p_j + H)
      const entropyGrad = o.entropyCoef * p * (lp + entropy);
      dLogits[o0 + j] = (policyGrad + entropyGrad) / n;
    }
  }
  let valueSum = 0;
  if (values && dValues) {
    for (let r = 0; r < n; r++) {
      const v = values[r];
      const ret = x.returns[r];
      const err = (v - ret) * (v - ret);
      let d = v - ret;
      let term = err;
      if (o.clipValueLoss) {
        const old = x.oldValues[r];
        const delta = v - old;
        const deltaClipped = delta < -o.clip ? -o.clip : delta > o.clip ? o.clip : delta;
        const vClipped = old + deltaClipped;
        const errClipped = (vClipped - ret) * (vClipped - ret);
        if (err < errClipped) {
          term = errClipped;
          d = delta >= -o.clip && delta <= o.clip ? vClipped - ret : 0;
        }
      }
      valueSum += term;
      // c_v * 0.5 * mean(term): d/dv = c_v * d / n
      dValues[r] = (o.valueCoef * d) / n;
    }
  }
  return [policySum / n, values ? (0.5 * valueSum) / n : 0, entropySum / n, klSum / n, clipped / n];
}
