import type { Rng } from '../rng.ts';

/**
 * Orthogonal initialisation (Saxe et al. 2014), as torch.nn.init.orthogonal_: a random Gaussian matrix,
 * made orthogonal by QR with the signs of R's diagonal folded in, scaled by `gain`. Returns the matrix in
 * the [inputs, outputs] layout used by `x @ W`.
 */
export function orthogonal(inputs: number, outputs: number, gain: number, rng: Rng): Float32Array {
  // torch draws the [outputs, inputs] matrix; QR runs on the taller orientation.
  const rows = outputs;
  const cols = inputs;
  const tall = rows >= cols;
  const m = tall ? rows : cols;
  const n = tall ? cols : rows;
  const a: number[][] = Array.from({ length: m }, () => new Array<number>(n).fill(0));
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const v = rng.normal();
      if (tall) a[r][c] = v;
      else a[c][r] = v;
    }
  }
  const q = gramSchmidtQ(a, m, n);
  const out = new Float32Array(inputs * outputs);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const v = tall ? q[r][c] : q[c][r];
      out[c * outputs + r] = gain * v; // W[in=c][out=r]
    }
  }
  return out;
}

/** Thin Q (m x n, m >= n) of A = QR by modified Gram-Schmidt, with sign(diag R) folded in (R_ii > 0). */
function gramSchmidtQ(a: number[][], m: number, n: number): number[][] {
  const q: number[][] = Array.from({ length: m }, () => new Array<number>(n).fill(0));
  for (let j = 0; j < n; j++) {
    const v = new Array<number>(m);
    for (let i = 0; i < m; i++) v[i] = a[i][j];
    for (let k = 0; k < j; k++) {
      let dot = 0;
      for (let i = 0; i < m; i++) dot += q[i][k] * v[i];
      for (let i = 0; i < m; i++) v[i] -= dot * q[i][k];
    }
    let norm = 0;
    for (let i = 0; i < m; i++) norm += v[i] * v[i];
    norm = Math.sqrt(norm) || 1;
    for (let i = 0; i < m; i++) q[i][j] = v[i] / norm;
  }
  return q;
}
