/**
 * Row-wise helpers of the host passes of the transformer (host-trunk.ts, host-decoder.ts): the residual
 * add and layer norm (Ba et al. 2016) over row-major [rows, d] float32, for the decoder's few rows per
 * step. The trunk's batches take the same layer norm as WebAssembly kernels (wasm-layer-norm.ts, with the
 * backward pass), which give the same bits as this function (float32, the kernels' summation order).
 *   LN(x) = (x - mu) rstd gamma + beta,  rstd = 1 / sqrt(var + eps)  (biased variance, eps 1e-5)
 */
import { LAYER_NORM_EPS } from '../../../src-main/engine/nn/wasm-layer-norm.ts';

/** The trunk's kernels (wasm-layer-norm.ts) and these functions use the same epsilon and give the same bits. */
export const LN_EPS = LAYER_NORM_EPS;

/** into += from over the first n floats. */
export function addInto(into: Float32Array, from: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) into[i] += from[i];
}

const f32 = Math.fround;
const EPS32 = f32(LN_EPS);

/** The float32 square of the float32 rounding of v. */
function squared(v: number): number {
  const dev = f32(v);
  return f32(dev * dev);
}

/**
 * Layer norm of each of `rows` rows of width d (a multiple of 4) into `out` (default: in place); with
 * `stats`, each row's mean and rstd are kept for the backward pass. Float32 operations in the kernels'
 * order (wasm-layer-norm.ts): the same bits.
 */
export function layerNormRows(
  x: Float32Array,
  rows: number,
  d: number,
  gamma: Float32Array,
  beta: Float32Array,
  out: Float32Array = x,
  stats?: { mean: Float32Array; rstd: Float32Array },
): void {
  // The lanes written out (d is a multiple of 4): the decoder calls this every step.
  for (let r = 0; r < rows; r++) {
    const o = r * d;
    let [s0, s1, s2, s3] = [0, 0, 0, 0];
    for (let c = o; c < o + d; c += 4) {
      s0 = f32(s0 + x[c]);
      s1 = f32(s1 + x[c + 1]);
      s2 = f32(s2 + x[c + 2]);
      s3 = f32(s3 + x[c + 3]);
    }
    const mu = f32(f32(f32(f32(s0 + s1) + s2) + s3) / d);
    [s0, s1, s2, s3] = [0, 0, 0, 0];
    for (let c = o; c < o + d; c += 4) {
      s0 = f32(s0 + squared(x[c] - mu));
      s1 = f32(s1 + squared(x[c + 1] - mu));
      s2 = f32(s2 + squared(x[c + 2] - mu));
      s3 = f32(s3 + squared(x[c + 3] - mu));
    }
    const variance = f32(f32(f32(f32(s0 + s1) + s2) + s3) / d);
    const inv = f32(1 / f32(Math.sqrt(f32(variance + EPS32))));
    if (stats) {
      stats.mean[r] = mu;
      stats.rstd[r] = inv;
    }
    for (let c = 0; c < d; c++) out[o + c] = f32(f32(f32(x[o + c] - mu) * inv) * gamma[c]) + beta[c];
  }
}
