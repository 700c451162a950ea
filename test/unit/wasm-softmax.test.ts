/**
 * The output head's log-softmax kernels (wasm-softmax.ts) against the same math in float64: log pi, the
 * target's log-probability, the entropy and the gradient, for class counts with and without a tail of
 * fours; the two-thread split gives the one-thread numbers exactly.
 */
import { describe, expect, it } from 'vitest';
import { SimdArena } from '../../src-main/engine/nn/wasm-simd.ts';

/** log pi rows, [log pi(target), H] per row, and dz for dOut, all in float64. */
function reference(z: Float32Array, rows: number, v: number, targets: Int32Array, dOut: Float32Array) {
  const logPi = new Float64Array(rows * v);
  const out = new Float64Array(2 * rows);
  const dz = new Float64Array(rows * v);
  for (let r = 0; r < rows; r++) {
    const row = Array.from(z.subarray(r * v, (r + 1) * v));
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((s, x) => s + Math.exp(x - m), 0));
    let h = 0;
    row.forEach((x, j) => {
      logPi[r * v + j] = x - lse;
      h -= Math.exp(x - lse) * (x - lse);
    });
    out[2 * r] = logPi[r * v + targets[r]];
    out[2 * r + 1] = h;
    row.forEach((_, j) => {
      const l = logPi[r * v + j];
      const pi = Math.exp(l);
      dz[r * v + j] = dOut[2 * r] * ((j === targets[r] ? 1 : 0) - pi) - dOut[2 * r + 1] * pi * (l + h);
    });
  }
  return { logPi, out, dz };
}

describe('log-softmax kernels of the output head', () => {
  it.each([13, 96])('match float64 (%i classes), on one thread or two', async (v) => {
    const rows = 301;
    const arena = new SimdArena(4 * rows * v + 8 * rows + 1024, { helper: true });
    expect(await arena.helperReady()).toBe(true);
    const [z, logPi2, dz, dz2] = [0, 1, 2, 3].map(() => arena.alloc(rows * v));
    const [out, out2, dOut, targets] = [0, 1, 2, 3].map(() => arena.alloc(2 * rows));
    z.view.forEach((_, i, a) => {
      a[i] = 6 * Math.sin(i * 0.37) + (i % 7);
    });
    dOut.view.forEach((_, i, a) => {
      a[i] = Math.cos(i * 1.3);
    });
    const ids = new Int32Array(targets.view.buffer, targets.offset, rows);
    ids.forEach((_, r) => {
      ids[r] = (r * 5) % v;
    });
    const expected = reference(z.view, rows, v, ids, dOut.view);
    logPi2.view.set(z.view);
    arena.kernels.logSoftmaxFwd(z.offset, rows, v, targets.offset, out.offset);
    arena.kernels.logSoftmaxBwd(z.offset, rows, v, targets.offset, out.offset, dOut.offset, dz.offset);
    arena.parallel.logSoftmaxFwd(logPi2.offset, rows, v, targets.offset, out2.offset);
    arena.parallel.logSoftmaxBwd(
      logPi2.offset,
      rows,
      v,
      targets.offset,
      out2.offset,
      dOut.offset,
      dz2.offset,
    );
    const worst = (a: Float32Array, e: Float64Array) =>
      Math.max(...Array.from(a, (x, i) => Math.abs(x - e[i])));
    expect(worst(z.view, expected.logPi)).toBeLessThan(2e-5);
    expect(worst(out.view, expected.out)).toBeLessThan(2e-5);
    expect(worst(dz.view, expected.dz)).toBeLessThan(2e-6);
    // Probabilities sum to 1 and the entropy lies in [0, log V].
    for (let r = 0; r < rows; r++) {
      const sum = Array.from(z.view.subarray(r * v, (r + 1) * v)).reduce((s, l) => s + Math.exp(l), 0);
      expect(sum).toBeCloseTo(1, 5);
      expect(out.view[2 * r + 1]).toBeGreaterThanOrEqual(0);
      expect(out.view[2 * r + 1]).toBeLessThanOrEqual(Math.log(v) + 1e-6);
    }
    expect(Array.from(logPi2.view)).toEqual(Array.from(z.view));
    expect(Array.from(out2.view)).toEqual(Array.from(out.view));
    expect(Array.from(dz2.view)).toEqual(Array.from(dz.view));
    arena.dispose();
  });
});
