/**
 * Causal multi-head self-attention of whole sequences, forward and backward, with the host SIMD kernels of
 * `wasm-simd.ts`: the attention of the host trunk (host-trunk.ts). tfjs-wasm runs batched (4-D) matMuls at
 * under 1 GFLOP/s against ~10 for the 2-D ones, so as tensor ops the attention products dominated a step.
 *
 * For each sequence b and head h, with q' = Q / sqrt(d_h) (Vaswani et al. 2017):
 *   S = q' K^T (causal: key j <= query i),  P = softmax(S),  O = P V
 * and the backward pass, from the P the forward pass kept (or recomputed from the input):
 *   dV = P^T dO,  dP = dO V^T,  dS = P . (dP - rowsum(P . dP)),  dQ = dS K / sqrt(d_h),  dK = dS^T q'
 * Input and output keep the model's row layout: qkv [B*T, 3d] (queries, keys, values; head h at columns
 * h*d_h..) in, the heads merged back [B*T, d] out, so no head split/merge transposes are needed.
 */
import { SimdArena, type SimdBuffer } from '../../../src-main/engine/nn/wasm-simd.ts';

/** Scratch for one (sequence, head) pair of length t and head size dh, reused across calls. */
class Scratch {
  readonly arena: SimdArena;
  readonly q: SimdBuffer;
  readonly k: SimdBuffer;
  readonly v: SimdBuffer;
  readonly dOut: SimdBuffer;
  readonly out: SimdBuffer;
  readonly dq: SimdBuffer;
  readonly dk: SimdBuffer;
  readonly dv: SimdBuffer;
  readonly p: SimdBuffer; // [t, t]
  readonly dp: SimdBuffer;

  constructor(
    readonly t: number,
    readonly dh: number,
  ) {
    const vec = Math.ceil((t * dh) / 4) * 4;
    const mat = Math.ceil((t * t) / 4) * 4;
    this.arena = new SimdArena(8 * vec + 2 * mat);
    const a = this.arena;
    [this.q, this.k, this.v, this.dOut, this.out, this.dq, this.dk, this.dv] = Array.from({ length: 8 }, () =>
      a.alloc(t * dh),
    );
    [this.p, this.dp] = Array.from({ length: 2 }, () => a.alloc(t * t));
  }
}

const scratches = new Map<string, Scratch>();
function scratchFor(t: number, dh: number): Scratch {
  const key = `${t}x${dh}`;
  let s = scratches.get(key);
  if (!s) {
    s = new Scratch(t, dh);
    scratches.set(key, s);
  }
  return s;
}

/** Copy one head's queries (scaled), keys and values of sequence `row` out of qkv [B*T, 3d]. */
function gather(s: Scratch, qkv: Float32Array, row: number, head: number, d: number, scale: number): void {
  const { t, dh } = s;
  const q = s.q.view;
  const k = s.k.view;
  const v = s.v.view;
  for (let i = 0; i < t; i++) {
    const src = (row * t + i) * 3 * d + head * dh;
    for (let c = 0; c < dh; c++) {
      q[i * dh + c] = qkv[src + c] * scale;
      k[i * dh + c] = qkv[src + d + c];
      v[i * dh + c] = qkv[src + 2 * d + c];
    }
  }
}

/** P = softmax of the causal scores, computed into s.p. */
function probabilities(s: Scratch): void {
  const { t, dh } = s;
  s.arena.kernels.mm(s.q.offset, t, s.k.offset, t, dh, s.p.offset);
  const p = s.p.view;
  for (let i = 0; i < t; i++) {
    const row = i * t;
    let max = Number.NEGATIVE_INFINITY;
    for (let j = 0; j <= i; j++) if (p[row + j] > max) max = p[row + j];
    let total = 0;
    for (let j = 0; j <= i; j++) {
      const e = Math.exp(p[row + j] - max);
      p[row + j] = e;
      total += e;
    }
    const inv = 1 / total;
    for (let j = 0; j <= i; j++) p[row + j] *= inv;
    for (let j = i + 1; j < t; j++) p[row + j] = 0;
  }
}

/**
 * The heads merged [B*T, d] of causal attention over qkv [B*T, 3d], written into `out`. With `keep`
 * ([B*heads*T*T]), each pair's probabilities P are kept there for the backward pass.
 */
export function attendCausal(
  qkv: Float32Array,
  out: Float32Array,
  b: number,
  t: number,
  heads: number,
  d: number,
  keep?: Float32Array,
): void {
  const dh = d / heads;
  const s = scratchFor(t, dh);
  const k = s.arena.kernels;
  const scale = 1 / Math.sqrt(dh);
  for (let row = 0; row < b; row++) {
    for (let head = 0; head < heads; head++) {
      gather(s, qkv, row, head, d, scale);
      probabilities(s);
      keep?.set(s.p.view, (row * heads + head) * t * t);
      k.mmNN(s.p.offset, t, s.v.offset, dh, t, s.out.offset);
      for (let i = 0; i < t; i++)
        out.set(s.out.view.subarray(i * dh, (i + 1) * dh), (row * t + i) * d + head * dh);
    }
  }
}

/**
 * The gradient [B*T, 3d] with respect to qkv, given dy [B*T, d] of `attendCausal`'s output, into `grad`.
 * `kept`: the probabilities the forward pass kept (else they are recomputed).
 */
export function attendCausalBackward(
  qkv: Float32Array,
  dy: Float32Array,
  grad: Float32Array,
  b: number,
  t: number,
  heads: number,
  d: number,
  kept?: Float32Array,
): void {
  const dh = d / heads;
  const s = scratchFor(t, dh);
  const k = s.arena.kernels;
  const scale = 1 / Math.sqrt(dh);
  const p = s.p.view;
  const dp = s.dp.view;
  for (let row = 0; row < b; row++) {
    for (let head = 0; head < heads; head++) {
      gather(s, qkv, row, head, d, scale);
      const pair = (row * heads + head) * t * t;
      if (kept) p.set(kept.subarray(pair, pair + t * t));
      else probabilities(s);
      for (let i = 0; i < t; i++)
        s.dOut.view.set(
          dy.subarray((row * t + i) * d + head * dh, (row * t + i) * d + (head + 1) * dh),
          i * dh,
        );
      // dV = P^T dO
      k.mmTN(s.p.offset, t, s.dOut.offset, dh, t, s.dv.offset, t);
      // dP = dO V^T, then dS = P . (dP - rowsum(P . dP)) in place of dP.
      k.mm(s.dOut.offset, t, s.v.offset, t, dh, s.dp.offset);
      for (let i = 0; i < t; i++) {
        const r = i * t;
        let dot = 0;
        for (let j = 0; j <= i; j++) dot += p[r + j] * dp[r + j];
        for (let j = 0; j <= i; j++) dp[r + j] = p[r + j] * (dp[r + j] - dot);
        for (let j = i + 1; j < t; j++) dp[r + j] = 0;
      }
      // dQ = dS K / sqrt(dh); dK = dS^T q'
      k.mmNN(s.dp.offset, t, s.k.offset, dh, t, s.dq.offset);
      k.mmTN(s.dp.offset, t, s.q.offset, dh, t, s.dk.offset, t);
      for (let i = 0; i < t; i++) {
        const dst = (row * t + i) * 3 * d + head * dh;
        for (let c = 0; c < dh; c++) {
          grad[dst + c] = s.dq.view[i * dh + c] * scale;
          grad[dst + d + c] = s.dk.view[i * dh + c];
          grad[dst + 2 * d + c] = s.dv.view[i * dh + c];
        }
      }
    }
  }
}
