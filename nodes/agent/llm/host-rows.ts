/**
 * Row-wise helpers shared by the host passes of the transformer (host-trunk.ts, host-decoder.ts): the
 * residual add and layer norm (Ba et al. 2016) forward and backward, over row-major [rows, d] float32.
 *   LN(x) = (x - mu) rstd gamma + beta,  rstd = 1 / sqrt(var + eps)  (biased variance, eps 1e-5)
 *   backward: x^ = (x - mu) rstd,  dx = rstd (dy.gamma - mean(dy.gamma) - x^ mean(dy.gamma . x^)),
 *             dgamma = sum_rows dy . x^,  dbeta = sum_rows dy
 */
export const LN_EPS = 1e-5;

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

/** Adds LN'(dy) to g (the residual gradient) and writes dgamma, dbeta (see the header), from the forward pass's input x and its stats. */
export function layerNormBackward(
  dy: Float32Array,
  x: Float32Array,
  mean: Float32Array,
  rstd: Float32Array,
  gamma: Float32Array,
  rows: number,
  d: number,
  g: Float32Array,
  dGamma: Float32Array,
  dBeta: Float32Array,
): void {
  dGamma.fill(0);
  dBeta.fill(0);
  for (let r = 0; r < rows; r++) {
    const o = r * d;
    const mu = mean[r];
    const inv = rstd[r];
    let meanDxhat = 0;
    let meanDxhatXhat = 0;
    for (let c = 0; c < d; c++) {
      const xhat = (x[o + c] - mu) * inv;
      const dxhat = dy[o + c] * gamma[c];
      meanDxhat += dxhat;
      meanDxhatXhat += dxhat * xhat;
      dGamma[c] += dy[o + c] * xhat;
      dBeta[c] += dy[o + c];
    }
    meanDxhat /= d;
    meanDxhatXhat /= d;
    for (let c = 0; c < d; c++) {
      const xhat = (x[o + c] - mu) * inv;
      g[o + c] += inv * (dy[o + c] * gamma[c] - meanDxhat - xhat * meanDxhatXhat);
    }
  }
}
