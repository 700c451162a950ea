/**
 * The PPO update of small MLPs on the host: forward pass, the PPO loss of trainer.ppo (`ppoLoss`) and its
 * exact gradient, and the backward pass, in float32 WebAssembly SIMD kernels (wasm-simd.ts) and
 * typed-array loops. For a 64-64 actor and critic a minibatch is ~150 tfjs ops whose fixed per-op cost
 * (not the arithmetic) dominates; here it is a few million multiply-adds with no allocation. Same math as the tensor path (tested to agree within float32
 * rounding in test/unit/nn-host-ppo.test.ts); trainer.ppo picks it for small networks (`updateOn`).
 */
import type { Activation } from './mlp.ts';
import { ACT_IDENTITY, ACT_RELU, ACT_TANH, arenaFloats, SimdArena, type SimdBuffer } from './wasm-simd.ts';

/** A host-side float array: float32 from the SIMD passes, float64 where a caller keeps extra precision. */
export type HostArray = Float32Array | Float64Array;

/**
 * Forward/backward of one MLP over a batch in float32, with activations kept for the backward pass. The
 * buffers live in a `SimdArena` (wasm-simd.ts): the multiplies, bias + activation and activation
 * gradients run there; transposes and bias-gradient sums stay in JS.
 */
export class HostMlpPass {
  private readonly arena: SimdArena;
  /** acts[0] = input, acts[l] = output of layer l (after the activation except for the last layer). */
  private readonly acts: SimdBuffer[];
  private readonly deltas: SimdBuffer[];
  /** Per layer: W as [in, out], W transposed [out, in] and the bias, set by loadParams(). */
  private readonly weights: SimdBuffer[] = [];
  private readonly weightsT: SimdBuffer[] = [];
  private readonly biases: SimdBuffer[] = [];
  private readonly actT: SimdBuffer;
  private readonly deltaT: SimdBuffer;
  private readonly gradW: SimdBuffer[] = [];
  private readonly act: number;
  /** Gradients aligned with the parameter list [W0, b0, W1, b1, ...] (views into the arena). */
  readonly grads: Float32Array[] = [];

  constructor(
    readonly sizes: number[],
    readonly activation: Activation,
    readonly batch: number,
  ) {
    const layers = sizes.length - 1;
    const widest = Math.max(...sizes);
    const perLayer = (l: number) => [sizes[l] * sizes[l + 1], sizes[l] * sizes[l + 1], sizes[l + 1]];
    const request = [
      ...sizes.flatMap((n) => [n * batch, n * batch]),
      ...sizes.slice(0, layers).flatMap((_, l) => [...perLayer(l), ...perLayer(l)]),
      widest * batch,
      widest * batch,
    ];
    this.arena = new SimdArena(arenaFloats(request));
    this.acts = sizes.map((n) => this.arena.alloc(n * batch));
    this.deltas = sizes.map((n) => this.arena.alloc(n * batch));
    for (let l = 0; l < layers; l++) {
      const n = sizes[l] * sizes[l + 1];
      this.weights.push(this.arena.alloc(n));
      this.weightsT.push(this.arena.alloc(n));
      this.biases.push(this.arena.alloc(sizes[l + 1]));
      this.gradW.push(this.arena.alloc(n));
      this.grads.push(this.gradW[l].view, this.arena.alloc(sizes[l + 1]).view);
    }
    this.actT = this.arena.alloc(widest * batch);
    this.deltaT = this.arena.alloc(widest * batch);
    this.act = activation === 'tanh' ? ACT_TANH : ACT_RELU;
  }

  /** Copy weights [W0, b0, W1, b1, ...] (W as [in, out]) in; forward() and backward() use them. */
  loadParams(params: Float32Array[]): void {
    for (let l = 0; l + 1 < this.sizes.length; l++) {
      this.weights[l].view.set(params[2 * l]);
      this.arena.transpose(this.weights[l], this.sizes[l], this.sizes[l + 1], this.weightsT[l]);
      this.biases[l].view.set(params[2 * l + 1]);
    }
  }

  /** Forward pass of `count` rows (row-major [count, in] from `inputOffset`); returns the [count, out] outputs (a view). */
  forward(input: Float32Array, count: number, inputOffset = 0): Float32Array {
    const { sizes } = this;
    const layers = sizes.length - 1;
    const x = this.acts[0].view;
    for (let k = 0; k < count * sizes[0]; k++) x[k] = input[inputOffset + k];
    for (let l = 0; l < layers; l++) {
      const z = this.acts[l + 1];
      this.arena.matMulTransposed(this.acts[l], count, this.weightsT[l], sizes[l + 1], sizes[l], z);
      const act = l + 1 < layers ? this.act : ACT_IDENTITY;
      this.arena.biasActivation(z, count, sizes[l + 1], this.biases[l], act);
    }
    return this.acts[layers].view;
  }

  /** The [count, out] gradient buffer for the outputs; fill it, then call backward(). */
  outputGradient(): Float32Array {
    return this.deltas[this.sizes.length - 1].view;
  }

  /** Backward pass of the last forward() (same params): overwrites `grads` with dLoss/dParams. */
  backward(count: number): void {
    const { sizes } = this;
    const layers = sizes.length - 1;
    for (let l = layers - 1; l >= 0; l--) {
      const nIn = sizes[l];
      const nOut = sizes[l + 1];
      const dz = this.deltas[l + 1];
      const h = this.acts[l];
      const gb = this.grads[2 * l + 1];
      gb.fill(0);
      const dzView = dz.view;
      for (let r = 0; r < count; r++) {
        const zo = r * nOut;
        for (let j = 0; j < nOut; j++) gb[j] += dzView[zo + j];
      }
      // dW[i, j] = sum_r h[r, i] dz[r, j]: rows of h^T against rows of dz^T.
      this.arena.transpose(h, count, nIn, this.actT);
      this.arena.transpose(dz, count, nOut, this.deltaT);
      this.arena.matMulTransposed(this.actT, nIn, this.deltaT, nOut, count, this.gradW[l]);
      if (l === 0) break;
      // dh[r, i] = sum_j dz[r, j] W[i, j], then through the activation of layer l (whose output is h).
      const dh = this.deltas[l];
      this.arena.matMulTransposed(dz, count, this.weights[l], nIn, nOut, dh);
      this.arena.activationGradient(dh, h, count * nIn, this.act);
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
  logits: HostArray,
  numActions: number,
  values: HostArray | undefined,
  x: HostPpoMinibatch,
  o: HostPpoOptions,
  dLogits: HostArray,
  dValues: HostArray | undefined,
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
