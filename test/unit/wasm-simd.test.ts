import { describe, expect, it } from 'vitest';
import { relaxedSimdAvailable } from '../../src-main/engine/nn/wasm-asm.ts';
import {
  ACT_GELU,
  ACT_IDENTITY,
  ACT_RELU,
  ACT_TANH,
  enableFusedMultiplyAdd,
  SimdArena,
} from '../../src-main/engine/nn/wasm-simd.ts';

/** Deterministic test values in [-1, 1]. */
function fill(view: Float32Array, phase: number): void {
  for (let i = 0; i < view.length; i++) view[i] = Math.sin(i * 0.37 + phase);
}

/** Largest |sum_k a(r, k) b(k, c) (in float64) - out[r, c]| over a rows x cols product. */
function worstProductError(
  rows: number,
  cols: number,
  inner: number,
  a: (r: number, k: number) => number,
  b: (k: number, c: number) => number,
  out: Float32Array,
): number {
  let worst = 0;
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) {
      let s = 0;
      for (let k = 0; k < inner; k++) s += a(r, k) * b(k, c);
      worst = Math.max(worst, Math.abs(s - out[r * cols + c]));
    }
  return worst;
}

describe('WebAssembly SIMD kernels of the host MLP passes', () => {
  const arena = new SimdArena(1 << 18);

  it('matMulTransposed equals a float64 triple loop for block-aligned and odd shapes', () => {
    // Odd rows/cols exercise the single-row/column tails; inner % 4 != 0 the scalar k tail.
    for (const [rows, cols, inner] of [
      [128, 64, 64],
      [128, 2, 64],
      [4, 64, 128],
      [7, 5, 9],
      [1, 1, 1],
      [3, 1, 6],
    ]) {
      const a = arena.alloc(rows * inner);
      const b = arena.alloc(cols * inner);
      const out = arena.alloc(rows * cols);
      fill(a.view, 0.1);
      fill(b.view, 0.7);
      arena.matMulTransposed(a, rows, b, cols, inner, out);
      const worst = worstProductError(
        rows,
        cols,
        inner,
        (r, k) => a.view[r * inner + k],
        (k, c) => b.view[c * inner + k],
        out.view,
      );
      // float32 accumulation of up to 128 products of size <= 1: a few 1e-6 at most.
      expect(worst, `${rows}x${cols}x${inner}`).toBeLessThan(2e-5);
    }
  });

  it('matMulTransposed on a hand-computed case', () => {
    const a = arena.alloc(4);
    const b = arena.alloc(6);
    const out = arena.alloc(6);
    a.view.set([1, 2, 3, 4]); // [[1, 2], [3, 4]]
    b.view.set([1, 0, 0, 1, 1, 1]); // rows (1, 0), (0, 1), (1, 1)
    arena.matMulTransposed(a, 2, b, 3, 2, out);
    expect([...out.view]).toEqual([1, 2, 3, 3, 4, 7]);
  });

  it('bias + tanh is within 1e-6 of Math.tanh over [-10, 10]; relu and identity are exact', () => {
    const n = 2001;
    const z = arena.alloc(n * 2);
    const bias = arena.alloc(2);
    bias.view.set([0.5, -0.25]);
    for (let i = 0; i < n * 2; i++) z.view[i] = (Math.floor(i / 2) - 1000) / 100;
    const before = Float32Array.from(z.view);
    arena.biasActivation(z, n, 2, bias, ACT_TANH);
    let worst = 0;
    for (let i = 0; i < n * 2; i++)
      worst = Math.max(worst, Math.abs(z.view[i] - Math.tanh(before[i] + bias.view[i % 2])));
    expect(worst).toBeLessThan(1e-6);
    expect(z.view[2 * 2000]).toBeCloseTo(1, 6);

    const y = arena.alloc(4);
    y.view.set([-1, 2, -3, 4]);
    arena.biasActivation(y, 2, 2, bias, ACT_RELU);
    expect([...y.view]).toEqual([0, 1.75, 0, 3.75]);
    y.view.set([-1, 2, -3, 4]);
    arena.biasActivation(y, 2, 2, bias, ACT_IDENTITY);
    expect([...y.view]).toEqual([-0.5, 1.75, -2.5, 3.75]);
  });

  it("the four-lane bias + activation gives exactly the scalar loop's numbers", () => {
    for (const act of [ACT_TANH, ACT_RELU, ACT_IDENTITY]) {
      const rows = 50;
      const wide = arena.alloc(rows * 8); // cols 8: four lanes at a time
      const bias = arena.alloc(8);
      fill(wide.view, 0.3);
      for (let i = 0; i < wide.view.length; i++) wide.view[i] *= 6;
      fill(bias.view, 1.1);
      const narrow = arena.alloc(rows * 8);
      const oneBias = arena.alloc(1);
      // The same values one column at a time (cols 1: the scalar loop).
      const columns = Array.from({ length: 8 }, (_, c) => {
        const col = arena.alloc(rows);
        for (let r = 0; r < rows; r++) col.view[r] = wide.view[r * 8 + c];
        oneBias.view[0] = bias.view[c];
        arena.biasActivation(col, rows, 1, oneBias, act);
        return col;
      });
      arena.biasActivation(wide, rows, 8, bias, act);
      for (let r = 0; r < rows; r++) for (let c = 0; c < 8; c++) narrow.view[r * 8 + c] = columns[c].view[r];
      expect([...wide.view]).toEqual([...narrow.view]);
    }
  });

  it('matMul (plain layout) equals a float64 triple loop; hand-computed case; refuses cols not in fours', () => {
    const a = arena.alloc(6);
    const b = arena.alloc(24);
    const out = arena.alloc(16);
    a.view.set([1, 2, 3, 4, 5, 6]); // [[1, 2, 3], [4, 5, 6]]
    for (let i = 0; i < 24; i++) b.view[i] = i; // b[k, c] = 8k + c
    arena.matMul(a, 2, b, 8, 3, out);
    // row 0: sum_k a[0,k] (8k + c) = 6c + 64; row 1: 15c + 136.
    expect([...out.view]).toEqual([
      ...Array.from({ length: 8 }, (_, c) => 6 * c + 64),
      ...Array.from({ length: 8 }, (_, c) => 15 * c + 136),
    ]);
    // 20 columns: one block of 16 and a single-vector tail; 5 rows, 33 inner.
    for (const [rows, cols, inner] of [
      [5, 20, 33],
      [1, 4, 1],
      [3, 32, 128],
      [3, 20, 300], // k in three chunks, the last one short
    ]) {
      const x = arena.alloc(rows * inner);
      const y = arena.alloc(inner * cols);
      const z = arena.alloc(rows * cols);
      fill(x.view, 0.2);
      fill(y.view, 0.9);
      arena.matMul(x, rows, y, cols, inner, z);
      const worst = worstProductError(
        rows,
        cols,
        inner,
        (r, k) => x.view[r * inner + k],
        (k, c) => y.view[k * cols + c],
        z.view,
      );
      expect(worst, `${rows}x${cols}x${inner}`).toBeLessThan(2e-5);
    }
    expect(() => arena.matMul(a, 2, b, 6, 3, out)).toThrow(/multiple of 4/);
  });

  it('matMulTransposedA (a stored [inner, rows]) equals a float64 triple loop, odd rows and tails', () => {
    for (const [rows, cols, inner] of [
      [5, 20, 33],
      [2, 4, 1],
      [128, 32, 64],
      [7, 12, 300], // k in three chunks, the last one short
    ]) {
      const x = arena.alloc(inner * rows);
      const y = arena.alloc(inner * cols);
      const z = arena.alloc(rows * cols);
      fill(x.view, 0.4);
      fill(y.view, 1.3);
      arena.matMulTransposedA(x, rows, y, cols, inner, z);
      const worst = worstProductError(
        rows,
        cols,
        inner,
        (r, k) => x.view[k * rows + r],
        (k, c) => y.view[k * cols + c],
        z.view,
      );
      expect(worst, `${rows}x${cols}x${inner}`).toBeLessThan(2e-5);
    }
  });

  it('products with and without fused multiply-adds both match float64; they differ only by rounding', () => {
    // Node 20 keeps relaxed SIMD behind a V8 flag that relaxedSimdAvailable sets; newer engines ship it.
    expect(relaxedSimdAvailable()).toBe(true);
    expect(arena.fused).toBe(true);
    enableFusedMultiplyAdd(false);
    const unfused = new SimdArena(1 << 16);
    enableFusedMultiplyAdd(true);
    expect(unfused.fused).toBe(false);
    const [rows, cols, inner] = [9, 24, 130];
    const results = [arena, unfused].map((m) => {
      const a = m.alloc(rows * inner);
      const b = m.alloc(inner * cols);
      fill(a.view, 0.3);
      fill(b.view, 1.1);
      const products = [m.alloc(rows * cols), m.alloc(rows * cols), m.alloc(rows * cols)];
      m.matMulTransposed(a, rows, b, cols, inner, products[0]); // b read as [cols, inner]
      m.matMul(a, rows, b, cols, inner, products[1]); // b read as [inner, cols]
      m.matMulTransposedA(a, rows, b, cols, inner, products[2]); // a read as [inner, rows]
      const layouts: [(r: number, k: number) => number, (k: number, c: number) => number][] = [
        [(r, k) => a.view[r * inner + k], (k, c) => b.view[c * inner + k]],
        [(r, k) => a.view[r * inner + k], (k, c) => b.view[k * cols + c]],
        [(r, k) => a.view[k * rows + r], (k, c) => b.view[k * cols + c]],
      ];
      for (const [i, [x, y]] of layouts.entries()) {
        const worst = worstProductError(rows, cols, inner, x, y, products[i].view);
        expect(worst, `product ${i}`).toBeLessThan(2e-5);
      }
      return products.map((p) => Array.from(p.view));
    });
    // One rounding per multiply-add instead of two: some sums come out different in the last bits.
    for (let i = 0; i < 3; i++) expect(results[0][i], `product ${i}`).not.toEqual(results[1][i]);
  });

  it('bias + GELU (tanh form) matches the formula in float64, in both lane widths', () => {
    const gelu = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
    for (const cols of [4, 3]) {
      const rows = 200;
      const z = arena.alloc(rows * cols);
      const bias = arena.alloc(cols);
      for (let i = 0; i < rows * cols; i++) z.view[i] = (i - (rows * cols) / 2) / 25;
      const before = Float32Array.from(z.view);
      arena.biasActivation(z, rows, cols, bias, ACT_GELU);
      let worst = 0;
      for (let i = 0; i < rows * cols; i++) worst = Math.max(worst, Math.abs(z.view[i] - gelu(before[i])));
      expect(worst, `cols ${cols}`).toBeLessThan(2e-6);
    }
  });

  it("GELU's gradient matches a central difference of the formula in float64", () => {
    const n = 64;
    const x = arena.alloc(n);
    const d = arena.alloc(n);
    for (let i = 0; i < n; i++) x.view[i] = -6 + (12 * i) / (n - 1);
    for (let i = 0; i < n; i++) d.view[i] = 1 + i / n; // an upstream gradient, multiplied in
    const gelu = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
    arena.geluGradient(d, x, n);
    const h = 1e-5;
    for (let i = 0; i < n; i++) {
      const v = x.view[i];
      const expected = ((gelu(v + h) - gelu(v - h)) / (2 * h)) * (1 + i / n);
      // float32: 1 - th^2 cancels for |x| > 4, times a factor ~10 there.
      expect(Math.abs(d.view[i] - expected), `x = ${v}`).toBeLessThan(1e-5);
    }
    expect(() => arena.geluGradient(d, x, 6)).toThrow(/multiple of 4/);
  });

  it('the two-thread products and element-wise kernels give the one-thread numbers exactly (rows split unevenly, mmTN with lda)', async () => {
    const shared = new SimdArena(2_000_000, { helper: true });
    expect(await shared.helperReady()).toBe(true);
    const [rows, cols, inner] = [203, 64, 130]; // over the split threshold; rows not a multiple of 8
    const a = shared.alloc(rows * inner);
    const b = shared.alloc(cols * inner);
    const bt = shared.alloc(inner * cols);
    const one = shared.alloc(rows * cols);
    const two = shared.alloc(rows * cols);
    fill(a.view, 0.2);
    fill(b.view, 0.9);
    fill(bt.view, 1.7);
    const same = (run: (k: typeof shared.parallel, out: number) => void) => {
      run(shared.kernels, one.offset);
      run(shared.parallel, two.offset);
      expect(Array.from(two.view)).toEqual(Array.from(one.view));
    };
    same((k, out) => k.mm(a.offset, rows, b.offset, cols, inner, out));
    same((k, out) => k.mmNN(a.offset, rows, bt.offset, cols, inner, out));
    // a read as [inner, rows] with lda = rows; the product of its first `rows - 3` columns only.
    same((k, out) => k.mmTN(a.offset, rows - 3, bt.offset, cols, inner, out, rows));
    // This thread's part traps (its output pointer is out of bounds; the helper's is not): the call
    // throws after the helper is done, and the next product is right.
    expect(() => shared.parallel.mm(a.offset, rows, b.offset, cols, inner, -16)).toThrow();
    same((k, out) => k.mm(a.offset, rows, b.offset, cols, inner, out));
    // Element-wise kernels, in place on copies of one input: [203, 100] is over their split threshold.
    const wide = 100;
    const size = rows * wide;
    const [x, y, ew1, ew2] = [0, 1, 2, 3].map(() => shared.alloc(size));
    const bias = shared.alloc(wide);
    fill(x.view, 0.6);
    fill(y.view, 1.4);
    fill(bias.view, 2.3);
    const elementwise = (run: (k: typeof shared.parallel, out: number) => void) => {
      for (const [k, out] of [
        [shared.kernels, ew1],
        [shared.parallel, ew2],
      ] as const) {
        out.view.set(x.view);
        run(k, out.offset);
      }
      expect(Array.from(ew2.view)).toEqual(Array.from(ew1.view));
      expect(Array.from(ew2.view)).not.toEqual(Array.from(x.view));
    };
    for (const act of [ACT_IDENTITY, ACT_TANH, ACT_RELU, ACT_GELU])
      elementwise((k, out) => k.biasAct(out, rows, wide, bias.offset, act));
    const n = size - 4; // a multiple of 4, not of 8
    elementwise((k, out) => k.scaleBy(out, y.offset, n));
    elementwise((k, out) => k.actGrad(out, y.offset, n, ACT_TANH));
    shared.dispose();
  });

  it('a split job the helper has not started (asleep) is taken back and run here: the same numbers', async () => {
    const shared = new SimdArena(1_000_000, { helper: true });
    expect(await shared.helperReady()).toBe(true);
    const [rows, cols, inner] = [203, 64, 130];
    const [a, b, one, two] = [rows * inner, cols * inner, rows * cols, rows * cols].map((n) =>
      shared.alloc(n),
    );
    fill(a.view, 0.4);
    fill(b.view, 1.1);
    shared.kernels.mm(a.offset, rows, b.offset, cols, inner, one.offset);
    const bias = shared.alloc(cols);
    fill(bias.view, 0.3);
    shared.kernels.biasAct(one.offset, rows, cols, bias.offset, ACT_GELU);
    let takenBack = 0;
    for (let i = 0; i < 20 && takenBack === 0; i++) {
      // Long enough for the helper to stop polling and sleep: waking it takes longer than a small job.
      await new Promise((resolve) => setTimeout(resolve, 20));
      shared.parallel.mm(a.offset, rows, b.offset, cols, inner, two.offset);
      shared.parallel.biasAct(two.offset, rows, cols, bias.offset, ACT_GELU);
      expect(Array.from(two.view)).toEqual(Array.from(one.view));
      takenBack = shared.helperJobsTakenBack();
    }
    expect(takenBack).toBeGreaterThan(0);
    shared.dispose();
  });

  it('the strided products work on blocks of wider matrices: the dense numbers, nothing outside written', () => {
    const k = arena.kernels;
    const [rows, cols, inner] = [6, 8, 5];
    const [lda, ldb, ldc] = [11, 13, 10];
    // a [rows, inner] (or [inner, rows] for TN) inside a [.., lda]; b likewise inside [.., ldb].
    const wideA = arena.alloc(16 * lda);
    const wideB = arena.alloc(16 * ldb);
    const wideOut = arena.alloc(rows * ldc);
    fill(wideA.view, 0.3);
    fill(wideB.view, 1.1);
    const dense = (wide: Float32Array, ld: number, r: number, c: number) => {
      const m = arena.alloc(r * c);
      for (let i = 0; i < r; i++) m.view.set(wide.subarray(i * ld, i * ld + c), i * c);
      return m;
    };
    const cases = [
      ['mm', [rows, inner], [cols, inner]],
      ['mmNN', [rows, inner], [inner, cols]],
      ['mmTN', [inner, rows], [inner, cols]],
    ] as const;
    for (const [name, [ar, ac], [br, bc]] of cases) {
      const [a, b, out] = [
        dense(wideA.view, lda, ar, ac),
        dense(wideB.view, ldb, br, bc),
        arena.alloc(rows * cols),
      ];
      if (name === 'mmTN') k.mmTN(a.offset, rows, b.offset, cols, inner, out.offset, rows);
      else k[name](a.offset, rows, b.offset, cols, inner, out.offset);
      wideOut.view.fill(7);
      const strided = k[`${name}Strided`];
      strided(wideA.offset, rows, wideB.offset, cols, inner, wideOut.offset, lda, ldb, ldc);
      for (let r = 0; r < rows; r++) {
        expect(Array.from(wideOut.view.subarray(r * ldc, r * ldc + cols))).toEqual(
          Array.from(out.view.subarray(r * cols, (r + 1) * cols)),
        );
        expect(Array.from(wideOut.view.subarray(r * ldc + cols, (r + 1) * ldc))).toEqual([7, 7]);
      }
    }
  });

  it('products of packed panels give the plain products’ numbers exactly, on one thread or two', async () => {
    const shared = new SimdArena(2_000_000, { helper: true });
    expect(await shared.helperReady()).toBe(true);
    // cols = 4 full panels and a narrower one; inner * cols over the packing's split threshold.
    const [rows, cols, inner] = [203, 68, 300];
    const [a, at, b, plain, packedOut] = [
      rows * inner,
      inner * rows,
      inner * cols,
      rows * cols,
      rows * cols,
    ].map((n) => shared.alloc(n));
    const [panels, panels2] = [shared.alloc(inner * cols), shared.alloc(inner * cols)];
    fill(a.view, 0.4);
    fill(at.view, 1.3);
    fill(b.view, 2.1);
    // Column sums while packing (a bias gradient 1^T b): the 1-row product's numbers, on either thread.
    const [ones, product, sums, sums2] = [inner, cols, cols, cols].map((n) => shared.alloc(n));
    ones.view.fill(1);
    shared.kernels.mmNN(ones.offset, 1, b.offset, cols, inner, product.offset);
    shared.kernels.packPanels(b.offset, cols, inner, cols, panels.offset, sums.offset);
    shared.parallel.packPanels(b.offset, cols, inner, cols, panels2.offset, sums2.offset);
    expect(Array.from(panels2.view)).toEqual(Array.from(panels.view));
    expect(Array.from(sums.view)).toEqual(Array.from(product.view));
    expect(Array.from(sums2.view)).toEqual(Array.from(product.view));
    // Without sums (-1): the same panels.
    panels2.view.fill(0);
    shared.parallel.packPanels(b.offset, cols, inner, cols, panels2.offset, -1);
    expect(Array.from(panels2.view)).toEqual(Array.from(panels.view));
    // Panel 1 holds columns 16..31, row k at 16 k; the last panel (columns 64..67) rows of 4.
    expect(panels.view[inner * 16 + 16 * 5 + 3]).toBe(b.view[5 * cols + 16 + 3]);
    expect(panels.view[inner * 64 + 4 * 7 + 2]).toBe(b.view[7 * cols + 64 + 2]);
    shared.kernels.mmNN(a.offset, rows, b.offset, cols, inner, plain.offset);
    // inner > rows: the two threads take panels; with a shorter sum (inner < rows) they take rows.
    const short = 100;
    const [shortPanels, shortPlain] = [shared.alloc(short * cols), shared.alloc(rows * cols)];
    shared.kernels.packPanels(b.offset, cols, short, cols, shortPanels.offset, -1);
    shared.kernels.mmNNStrided(a.offset, rows, b.offset, cols, short, shortPlain.offset, inner, cols, cols);
    for (const [bp, sum, expected] of [
      [panels, inner, plain],
      [shortPanels, short, shortPlain],
    ] as const)
      for (const k of [shared.kernels, shared.parallel]) {
        packedOut.view.fill(0);
        k.mmNNPacked(a.offset, rows, bp.offset, cols, sum, packedOut.offset, inner, cols, -1, -1, -1, 0, -1);
        expect(Array.from(packedOut.view)).toEqual(Array.from(expected.view));
      }
    // The epilogue: out = (x W + bias) + residual, act(out) alongside and, for GELU, GELU'(out) (geluGrad
    // of ones) in a third buffer, as the separate kernels give.
    const [bias, residual, act, actOut, slope, slopeOut] = [
      cols,
      rows * cols,
      rows * cols,
      rows * cols,
      rows * cols,
      rows * cols,
    ].map((n) => shared.alloc(n));
    fill(bias.view, 0.5);
    fill(residual.view, 2.9);
    for (const activation of [ACT_GELU, ACT_RELU, ACT_TANH]) {
      shared.kernels.biasAct(plain.offset, rows, cols, bias.offset, ACT_IDENTITY);
      const expectedOut = plain.view.map((v, i) => v + residual.view[i]);
      act.view.set(expectedOut);
      shared.kernels.biasAct(act.offset, rows, cols, shared.alloc(cols).offset, activation);
      const sloped = shared.alloc(rows * cols);
      sloped.view.set(expectedOut);
      slope.view.fill(1);
      shared.kernels.geluGrad(slope.offset, sloped.offset, rows * cols);
      for (const k of [shared.kernels, shared.parallel]) {
        slopeOut.view.fill(-7);
        k.mmNNPacked(
          a.offset,
          rows,
          panels.offset,
          cols,
          inner,
          packedOut.offset,
          inner,
          cols,
          bias.offset,
          residual.offset,
          activation,
          actOut.offset,
          activation === ACT_GELU ? slopeOut.offset : -1,
        );
        expect(Array.from(packedOut.view)).toEqual(Array.from(expectedOut));
        expect(Array.from(actOut.view)).toEqual(Array.from(act.view));
        if (activation === ACT_GELU) expect(Array.from(slopeOut.view)).toEqual(Array.from(slope.view));
        else expect(slopeOut.view.every((v) => v === -7)).toBe(true);
      }
      shared.kernels.mmNN(a.offset, rows, b.offset, cols, inner, plain.offset);
    }
    // a read as [inner, rows] (lda = rows), the product of its first rows - 3 columns.
    plain.view.fill(0);
    shared.kernels.mmTN(at.offset, rows - 3, b.offset, cols, inner, plain.offset, rows);
    for (const k of [shared.kernels, shared.parallel]) {
      packedOut.view.fill(0);
      k.mmTNPacked(at.offset, rows - 3, panels.offset, cols, inner, packedOut.offset, rows);
      expect(Array.from(packedOut.view)).toEqual(Array.from(plain.view));
    }
    shared.dispose();
  });

  it('transposeInto: 4 x 4 register blocks and the edges, into a wider output, on one thread or two', async () => {
    const shared = new SimdArena(1_000_000, { helper: true });
    expect(await shared.helperReady()).toBe(true);
    // rows and cols leave tails of 3 and 2; [203, 130] is over the split threshold; ldo > rows.
    const [rows, cols, ldo] = [203, 130, 210];
    const m = shared.alloc(rows * cols);
    fill(m.view, 0.8);
    const expected = new Float32Array(cols * ldo).fill(-9);
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < cols; c++) expected[c * ldo + r] = m.view[r * cols + c];
    for (const k of [shared.kernels, shared.parallel]) {
      const out = shared.alloc(cols * ldo);
      out.view.fill(-9);
      k.transposeInto(m.offset, rows, cols, out.offset, ldo);
      expect(Array.from(out.view)).toEqual(Array.from(expected));
    }
    shared.dispose();
  });

  it('transpose', () => {
    const m = arena.alloc(6);
    const out = arena.alloc(6);
    m.view.set([1, 2, 3, 4, 5, 6]); // [[1, 2, 3], [4, 5, 6]]
    arena.transpose(m, 2, 3, out);
    expect([...out.view]).toEqual([1, 4, 2, 5, 3, 6]);
  });

  it('activation gradients: tanh through its output, relu as a mask', () => {
    const d = arena.alloc(3);
    const h = arena.alloc(3);
    h.view.set([0.5, 0, -0.5]);
    d.view.set([2, 2, 2]);
    arena.activationGradient(d, h, 3, ACT_TANH);
    expect([...d.view]).toEqual([1.5, 2, 1.5]);
    d.view.set([2, 2, 2]);
    arena.activationGradient(d, h, 3, ACT_RELU);
    expect([...d.view]).toEqual([2, 0, 0]);
  });

  it('refuses to hand out more than it reserved', () => {
    const small = new SimdArena(8);
    small.alloc(8);
    expect(() => small.alloc(1 << 16)).toThrow(/out of reserved memory/);
  });
});
