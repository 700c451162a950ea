/**
 * The layer norm kernels give the same bits as JavaScript: the forward pass as host-rows.ts does it (the
 * decoder's), the backward pass as written out below; on one thread and split over two.
 */
import { describe, expect, it } from 'vitest';
import { layerNormRows } from '../../nodes/agent/llm/host-rows.ts';
import { SimdArena } from '../../src-main/engine/nn/wasm-simd.ts';

// Above the size the helper takes half of (16k elements), odd rows so the halves differ.
const [rows, d] = [701, 24];

const f32 = Math.fround;

/** sum_c term(c) as the kernels take it: four float32 lanes (lane j: c = j mod 4), then ((l0 + l1) + l2) + l3. */
function laneSum(d: number, term: (c: number) => number): number {
  const lanes = [0, 0, 0, 0];
  for (let c = 0; c < d; c++) lanes[c & 3] = f32(lanes[c & 3] + term(c));
  return f32(f32(f32(lanes[0] + lanes[1]) + lanes[2]) + lanes[3]);
}

/**
 * The backward pass in plain JavaScript, float32 operations in the kernels' order: x^ = (x - mu) rstd,
 * g += rstd ((dy.gamma - mean(dy.gamma)) - x^ mean(dy.gamma . x^)), dgamma = sum_rows dy . x^,
 * dbeta = sum_rows dy.
 */
function layerNormBackward(
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
    const [mu, inv] = [mean[r], rstd[r]];
    const xhat = (c: number) => f32(f32(x[o + c] - mu) * inv);
    const dxhat = (c: number) => f32(dy[o + c] * gamma[c]);
    const m1 = f32(laneSum(d, dxhat) / d);
    const m2 = f32(laneSum(d, (c) => f32(dxhat(c) * xhat(c))) / d);
    for (let c = 0; c < d; c++) {
      g[o + c] = f32(g[o + c] + f32(inv * f32(f32(dxhat(c) - m1) - f32(xhat(c) * m2))));
      dGamma[c] = f32(dGamma[c] + f32(dy[o + c] * xhat(c)));
      dBeta[c] = f32(dBeta[c] + dy[o + c]);
    }
  }
}

function fill(view: Float32Array, phase: number, scale = 1): void {
  for (let i = 0; i < view.length; i++)
    view[i] = scale * Math.sin(i * 0.61 + phase) + 0.3 * Math.cos(i * 0.07);
}

describe('layer norm kernels', () => {
  it.each([
    ['one thread', false],
    ['two threads', true],
  ])('equal the JavaScript rows bit for bit (%s)', async (_name, twoThreads) => {
    const arena = new SimdArena(1 << 16, { helper: twoThreads });
    if (twoThreads) expect(await arena.helperReady()).toBe(true);
    const k = twoThreads ? arena.parallel : arena.kernels;
    const [x, dy, g, out] = [0, 1, 2, 3].map(() => arena.alloc(rows * d));
    const [gamma, beta, dGamma, dBeta] = [0, 1, 2, 3].map(() => arena.alloc(d));
    const [mean, rstd] = [arena.alloc(rows), arena.alloc(rows)];
    fill(x.view, 0.2, 3);
    fill(dy.view, 1.7);
    fill(g.view, 2.9, 0.5);
    fill(gamma.view, 0.4);
    fill(beta.view, 0.8, 0.1);

    const expected = {
      out: new Float32Array(rows * d),
      mean: new Float32Array(rows),
      rstd: new Float32Array(rows),
      g: Float32Array.from(g.view),
      dGamma: new Float32Array(d),
      dBeta: new Float32Array(d),
    };
    layerNormRows(x.view, rows, d, gamma.view, beta.view, expected.out, expected);
    layerNormBackward(
      dy.view,
      x.view,
      expected.mean,
      expected.rstd,
      gamma.view,
      rows,
      d,
      expected.g,
      expected.dGamma,
      expected.dBeta,
    );

    k.lnFwd(x.offset, gamma.offset, beta.offset, out.offset, mean.offset, rstd.offset, rows, d);
    k.lnBwdRows(dy.offset, x.offset, mean.offset, rstd.offset, gamma.offset, g.offset, rows, d);
    arena.kernels.lnBwdCols(
      dy.offset,
      x.offset,
      mean.offset,
      rstd.offset,
      dGamma.offset,
      dBeta.offset,
      rows,
      d,
      d,
    );
    expect(Array.from(out.view)).toEqual(Array.from(expected.out));
    expect(Array.from(mean.view)).toEqual(Array.from(expected.mean));
    expect(Array.from(rstd.view)).toEqual(Array.from(expected.rstd));
    expect(Array.from(g.view)).toEqual(Array.from(expected.g));
    expect(Array.from(dGamma.view)).toEqual(Array.from(expected.dGamma));
    expect(Array.from(dBeta.view)).toEqual(Array.from(expected.dBeta));
    // In place (out = x), as the decoder does it.
    k.lnFwd(x.offset, gamma.offset, beta.offset, x.offset, mean.offset, rstd.offset, rows, d);
    expect(Array.from(x.view)).toEqual(Array.from(expected.out));
    arena.dispose();
  });
});
