/**
 * Row-wise helpers of the host passes of the transformer (host-trunk.ts, host-decoder.ts): the residual
 * add and layer norm (Ba et al. 2016) over row-major [rows, d] float32, for the decoder's few rows per
 * step. The trunk's batches take the same layer norm as WebAssembly kernels (wasm-layer-norm.ts, with the
 * backward pass), which give the same bits as this function.
 *   LN(x) = (x - mu) rstd gamma + beta,  rstd = 1 / sqrt(var + eps)  (biased variance, eps 1e-5)
 */
import { LAYER_NORM_EPS } from '../../../src-main/engine/nn/wasm-layer-norm.ts';

/** The trunk's kernels (wasm-layer-norm.ts) and these functions use the same epsilon and give the same bits. */
export const LN_EPS = LAYER_NORM_EPS;

/** into += from over the first n floats. */
export function addInto(into: Float32Array, from: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) into[i] += from[i];
}

/**
 * Layer norm of each of `rows` rows of width d into `out` (default: in place); with `stats`, each row's
 * mean and rstd are kept for the backward pass.
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
  for (let r = 0; r < rows; r++) {
    const o = r * d;
    let sum = 0;
    for (let c = 0; c < d; c++) sum += x[o + c];
    const mu = sum / d;
    let sq = 0;
    for (let c = 0; c < d; c++) {
      const dev = x[o + c] - mu;
      sq += dev * dev;
    }
    const inv = 1 / Math.sqrt(sq / d + LN_EPS);
    if (stats) {
      stats.mean[r] = mu;
      stats.rstd[r] = inv;
    }
    for (let c = 0; c < d; c++) out[o + c] = (x[o + c] - mu) * inv * gamma[c] + beta[c];
  }
}
