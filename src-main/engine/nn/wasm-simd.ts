/**
 * Float32 kernels for the host-side MLP passes, as a WebAssembly module with 128-bit SIMD, assembled here
 * from a readable instruction list (no build step, no binary in the repository). V8's scalar JS reaches
 * ~1 GFLOP/s on these loops; f32x4 lanes, register blocks and (where the engine has relaxed SIMD) fused
 * multiply-adds do 20x that, and the tanh below is a rational polynomial instead of Math.tanh's ~30 ns call.
 *
 * All kernels work on byte offsets into one memory owned by a `SimdArena`; `SimdArena.alloc` hands out
 * Float32Array views of it. The memory never grows after the arena is built, so the views stay valid.
 */

import { HelperKernel, KernelHelper, kernelHelperAvailable } from './kernel-helper.ts';
import { adamFn, sumSquaresFn } from './wasm-adam.ts';
import {
  assemble,
  extractLane,
  F32,
  F32_ADD,
  F32_MUL,
  F32X4_ADD,
  F32X4_MUL,
  F32X4_RELAXED_MADD,
  F32X4_SPLAT,
  F32X4_SUB,
  Fn,
  I32,
  I32_LT_S,
  relaxedSimdAvailable,
  uleb,
  V128,
} from './wasm-asm.ts';
import { attentionBackwardFn, attentionForwardFn, attentionScratchFloats } from './wasm-attention.ts';
import { embedRowsFn, scatterRowsFn } from './wasm-embedding.ts';
import {
  layerNormBackwardColumnsFn,
  layerNormBackwardRowsFn,
  layerNormForwardFn,
} from './wasm-layer-norm.ts';
import { PANEL, packedProductFn, packPanelsFn } from './wasm-packed.ts';
import { logSoftmaxBackwardFn, logSoftmaxForwardFn } from './wasm-softmax.ts';

export const ACT_IDENTITY = 0;
export const ACT_TANH = 1;
export const ACT_RELU = 2;
/** GELU, tanh form: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
export const ACT_GELU = 3;

/**
 * acc += x * y on four lanes: with `fused`, one relaxed-SIMD multiply-add (a single FMA instruction
 * on CPUs that have it: ~1.3x faster products here, and one rounding instead of two), else a
 * multiply and an add. A given engine and CPU always take the same choice, so runs stay deterministic.
 */
function multiplyAccumulate(g: Fn, fused: boolean, acc: string, x: string, y: string): void {
  if (fused)
    g.get(x)
      .get(y)
      .get(acc)
      .op(...F32X4_RELAXED_MADD)
      .set(acc);
  else
    g.get(acc)
      .get(x)
      .get(y)
      .op(...F32X4_MUL, ...F32X4_ADD)
      .set(acc);
}

/** The products' leading parameters; the strided forms add lda, ldb, ldc (row strides in floats). */
const PRODUCT_PARAMS = ['a', 'rows', 'b', 'cols', 'inner', 'out'];

/** Register block of the multiply: rows x columns of the output per inner loop. */
const ROW_BLOCK = 4;
const COL_BLOCK = 2;

/**
 * mmStrided(a, rows, b, cols, inner, out, lda, ldb, ldc): out[r, c] = sum_k a[r, k] b[c, k] (float32, byte
 * offsets; lda, ldb, ldc the row strides in floats). Rows and columns in ROW_BLOCK x COL_BLOCK blocks (tails
 * one at a time), k in f32x4 lanes with a scalar tail; each lane sum is reduced in a fixed order, so results
 * are deterministic.
 */
function matMulTransposedFn(fused: boolean): Fn {
  const f = new Fn('mmStrided', [...PRODUCT_PARAMS, 'lda', 'ldb', 'ldc']);
  for (const n of ['r', 'c', 'kb', 'innerBytes', 'vecBytes', 'aRow', 'bRow']) f.local(n, I32);
  for (let i = 0; i < ROW_BLOCK; i++) f.local(`pa${i}`, I32).local(`x${i}`, V128);
  for (let j = 0; j < COL_BLOCK; j++) f.local(`pb${j}`, I32).local(`y${j}`, V128);
  for (let i = 0; i < ROW_BLOCK; i++)
    for (let j = 0; j < COL_BLOCK; j++) f.local(`s${i}${j}`, F32).local(`acc${i}${j}`, V128);
  f.get('inner').i32(4).mul().set('innerBytes');
  f.get('inner').i32(-4).op(0x71).i32(4).mul().set('vecBytes'); // (inner & ~3) * 4
  f.get('lda').i32(4).mul().set('aRow');
  f.get('ldb').i32(4).mul().set('bRow');

  /** s_ij = ((lane0 + lane1) + lane2) + lane3 of acc_ij. */
  const reduceLanes = (i: number, j: number) => {
    f.get(`acc${i}${j}`).op(...extractLane(0));
    for (let lane = 1; lane < 4; lane++) f.get(`acc${i}${j}`).op(...extractLane(lane), ...F32_ADD);
    f.set(`s${i}${j}`);
  };
  /** Computes the rb x cb block at (r, c) with row pointers pa*, column pointers pb*. */
  const block = (rb: number, cb: number) => {
    const pairs: [number, number][] = [];
    for (let i = 0; i < rb; i++) for (let j = 0; j < cb; j++) pairs.push([i, j]);
    for (const [i, j] of pairs)
      f.f32(0)
        .op(...F32X4_SPLAT)
        .set(`acc${i}${j}`);
    f.i32(0).set('kb');
    f.whileLoop(
      (g) => g.get('kb').get('vecBytes').op(I32_LT_S),
      (g) => {
        // Each row and column vector loaded once per step, then every product of the block.
        for (let i = 0; i < rb; i++) g.get(`pa${i}`).get('kb').add().v128Load().set(`x${i}`);
        for (let j = 0; j < cb; j++) g.get(`pb${j}`).get('kb').add().v128Load().set(`y${j}`);
        for (const [i, j] of pairs) {
          multiplyAccumulate(g, fused, `acc${i}${j}`, `x${i}`, `y${j}`);
        }
        g.bump('kb', 16);
      },
    );
    for (const [i, j] of pairs) reduceLanes(i, j);
    f.whileLoop(
      (g) => g.get('kb').get('innerBytes').op(I32_LT_S),
      (g) => {
        for (const [i, j] of pairs) {
          g.get(`s${i}${j}`);
          g.get(`pa${i}`).get('kb').add().f32Load();
          g.get(`pb${j}`).get('kb').add().f32Load();
          g.op(...F32_MUL, ...F32_ADD).set(`s${i}${j}`);
        }
        g.bump('kb', 4);
      },
    );
    for (const [i, j] of pairs) {
      // out + ((r + i) * cols + c + j) * 4
      f.get('out').get('r').i32(i).add().get('ldc').mul().get('c').add().i32(j).add().i32(4).mul().add();
      f.get(`s${i}${j}`).f32Store();
    }
  };
  const rowPointers = (rb: number) => {
    f.get('a').get('r').get('aRow').mul().add().set('pa0');
    for (let i = 1; i < rb; i++)
      f.get(`pa${i - 1}`)
        .get('aRow')
        .add()
        .set(`pa${i}`);
  };
  const colPointers = (cb: number) => {
    f.get('b').get('c').get('bRow').mul().add().set('pb0');
    for (let j = 1; j < cb; j++)
      f.get(`pb${j - 1}`)
        .get('bRow')
        .add()
        .set(`pb${j}`);
  };
  /** All columns of the current row block: COL_BLOCK at a time, then single tail columns. */
  const columns = (rb: number) =>
    f.blocked('c', 'cols', COL_BLOCK, 1, (cb) => {
      colPointers(cb);
      block(rb, cb);
    });
  // Rows ROW_BLOCK at a time, then single tail rows.
  f.blocked('r', 'rows', ROW_BLOCK, 1, (rb) => {
    rowPointers(rb);
    columns(rb);
  });
  return f;
}

/** Register block of `mmNN`: rows x vectors (4 columns each) of the output per inner loop. */
const NN_ROWS = 2;
const NN_VECTORS = 4;
/** k runs in chunks of this many, all output blocks per chunk, so a chunk of b stays in cache. */
const NN_K_CHUNK = 128;

/**
 * mmNNStrided(a, rows, b, cols, inner, out, lda, ldb, ldc): out[r, c] = sum_k a[r, k] b[k, c] (float32, byte
 * offsets; lda, ldb, ldc the row strides in floats; cols a multiple of 4). mmTNStrided(same parameters)
 * reads a stored [inner, lda] (lda >= rows: the output rows may be a block of a wider product):
 * out[r, c] = sum_k a[k, r] b[k, c].
 * NN_ROWS x NN_VECTORS blocks of the output (tails one row / one vector at a time): each step of k loads
 * the block's b vectors once, splats each row's a[r, k], and multiplies every pair. k runs in chunks of
 * NN_K_CHUNK over every block (a weight gradient sums over thousands of rows: unchunked, each output block
 * would stream all of b from memory); a block's partial sums go to `out` and come back for the next chunk,
 * so every sum still runs over k in order, the same numbers as one pass (deterministic).
 */
function matMulFn(transposeA: boolean, fused: boolean): Fn {
  const f = new Fn(transposeA ? 'mmTNStrided' : 'mmNNStrided', [...PRODUCT_PARAMS, 'lda', 'ldb', 'ldc']);
  for (const n of ['r', 'c', 'k', 'k0', 'kEnd', 'pb', 'po', 'colBytes', 'aStep', 'aRow']) f.local(n, I32);
  for (let i = 0; i < NN_ROWS; i++) f.local(`pa${i}`, I32).local(`s${i}`, V128);
  for (let j = 0; j < NN_VECTORS; j++) f.local(`y${j}`, V128);
  for (let i = 0; i < NN_ROWS; i++) for (let j = 0; j < NN_VECTORS; j++) f.local(`acc${i}${j}`, V128);
  f.get('ldb').i32(4).mul().set('colBytes');
  // Walking a along k: the next element of a row, or (transposed) the next row; a's rows r, r+1 apart by aRow.
  if (transposeA) {
    f.get('lda').i32(4).mul().set('aStep');
    f.i32(4).set('aRow');
  } else {
    f.i32(4).set('aStep');
    f.get('lda').i32(4).mul().set('aRow');
  }
  const outRow = (i: number) =>
    f.get('out').get('r').i32(i).add().get('ldc').mul().get('c').add().i32(4).mul().add().set('po');
  const block = (rb: number, vectors: number) => {
    // The partial sums of the earlier chunks, or zeros in the first (typed select on k0 != 0).
    for (let i = 0; i < rb; i++) {
      outRow(i);
      for (let j = 0; j < vectors; j++) {
        f.get('po').op(0xfd, 0x00, 4, ...uleb(16 * j));
        f.f32(0).op(...F32X4_SPLAT);
        f.get('k0').op(0x1c, 0x01, V128).set(`acc${i}${j}`);
      }
    }
    // pa_i: a[r + i, k0]; pb: b[k0, c].
    f.get('a').get('r').get('aRow').mul().add().get('k0').get('aStep').mul().add().set('pa0');
    for (let i = 1; i < rb; i++)
      f.get(`pa${i - 1}`)
        .get('aRow')
        .add()
        .set(`pa${i}`);
    f.get('b').get('c').i32(4).mul().add().get('k0').get('colBytes').mul().add().set('pb');
    f.get('k0').set('k');
    f.whileLoop(
      (g) => g.get('k').get('kEnd').op(I32_LT_S),
      (g) => {
        for (let j = 0; j < vectors; j++)
          g.get('pb')
            .op(0xfd, 0x00, 4, ...uleb(16 * j))
            .set(`y${j}`); // v128.load at offset 16 j
        for (let i = 0; i < rb; i++) {
          g.get(`pa${i}`).op(0xfd, 0x09, 2, 0).set(`s${i}`); // v128.load32_splat
          for (let j = 0; j < vectors; j++) {
            multiplyAccumulate(g, fused, `acc${i}${j}`, `s${i}`, `y${j}`);
          }
          g.get(`pa${i}`).get('aStep').add().set(`pa${i}`);
        }
        g.get('pb').get('colBytes').add().set('pb');
        g.bump('k', 1);
      },
    );
    for (let i = 0; i < rb; i++) {
      outRow(i);
      for (let j = 0; j < vectors; j++)
        f.get('po')
          .get(`acc${i}${j}`)
          .op(0xfd, 0x0b, 4, ...uleb(16 * j));
    }
  };
  // Per chunk of k: NN_ROWS rows at a time (then single rows); per row block, NN_VECTORS vectors at a
  // time (then single).
  f.i32(0).set('k0');
  f.whileLoop(
    (g) => g.get('k0').get('inner').op(I32_LT_S),
    (g) => {
      // kEnd = min(k0 + chunk, inner)
      g.get('k0').i32(NN_K_CHUNK).add().get('inner');
      g.get('k0').i32(NN_K_CHUNK).add().get('inner').op(I32_LT_S);
      g.op(0x1b).set('kEnd');
      g.blocked('r', 'rows', NN_ROWS, 1, (rb) =>
        g.blocked('c', 'cols', 4 * NN_VECTORS, 4, (cols) => block(rb, cols / 4)),
      );
      g.bump('k0', NN_K_CHUNK);
    },
  );
  return f;
}

/**
 * The dense products, calling their strided forms (module function `index`): mm(a, rows, b, cols, inner,
 * out) with lda = ldb = inner, ldc = cols; mmNN(same) with lda = inner, ldb = ldc = cols; mmTN(same, lda)
 * with ldb = ldc = cols.
 */
function denseProductFn(name: 'mm' | 'mmNN' | 'mmTN', index: number): Fn {
  const f = new Fn(name, name === 'mmTN' ? [...PRODUCT_PARAMS, 'lda'] : PRODUCT_PARAMS);
  for (const p of PRODUCT_PARAMS) f.get(p);
  f.get(name === 'mmTN' ? 'lda' : 'inner');
  f.get(name === 'mm' ? 'inner' : 'cols');
  f.get('cols');
  return f.call(index);
}

/**
 * tanh(x) as Eigen's float rational approximation (numerator odd degree 13, denominator even degree 6,
 * input clamped to +-7.9053111; within a few float32 ulps of the true tanh, the form TensorFlow's CPU
 * kernels use). Expects x on the stack; leaves tanh(x).
 */
const TANH_CLAMP = 7.905311107635498;
const TANH_ALPHA = [
  4.89352455891786e-3, 6.37261928875436e-4, 1.48572235717979e-5, 5.12229709037114e-8, -8.60467152213735e-11,
  2.00018790482477e-13, -2.76076847742355e-16,
];
const TANH_BETA = [4.89352518554385e-3, 2.268434632439e-3, 1.18534705686654e-4, 1.19825839466702e-6];

/** The float ops of one lane shape: scalar f32 or four f32 lanes (the same IEEE operations either way). */
interface Lanes {
  type: number;
  load: (f: Fn) => void;
  store: (f: Fn) => void;
  constant: (f: Fn, v: number) => void;
  add: number[];
  mul: number[];
  div: number[];
  min: number[];
  max: number[];
  /**
   * min / max against a constant (a clamp): f32x4.pmin / pmax, one instruction each where f32x4.min / max
   * take ~8 (NaN and -0 rules); the same result for any x, NaN included, when x is the first operand.
   */
  clampMin: number[];
  clampMax: number[];
  width: number;
}

const SCALAR: Lanes = {
  type: F32,
  load: (f) => f.f32Load(),
  store: (f) => f.f32Store(),
  constant: (f, v) => f.f32(v),
  add: [0x92],
  mul: [0x94],
  div: [0x95],
  min: [0x96],
  max: [0x97],
  clampMin: [0x96],
  clampMax: [0x97],
  width: 1,
};

const VECTOR: Lanes = {
  type: V128,
  load: (f) => f.v128Load(),
  store: (f) => f.v128Store(),
  constant: (f, v) => f.f32(v).op(...F32X4_SPLAT),
  add: F32X4_ADD,
  mul: F32X4_MUL,
  div: [0xfd, 0xe7, 0x01],
  min: [0xfd, 0xe8, 0x01],
  max: [0xfd, 0xe9, 0x01],
  clampMin: [0xfd, 0xea, 0x01],
  clampMax: [0xfd, 0xeb, 0x01],
  width: 4,
};

/** Expects x on the stack (in locals named x/x2 of the lane type); leaves tanh(x). */
function emitTanh(f: Fn, l: Lanes, x: string, x2: string): void {
  l.constant(f, TANH_CLAMP);
  f.op(...l.clampMin);
  l.constant(f, -TANH_CLAMP);
  f.op(...l.clampMax).set(x);
  f.get(x)
    .get(x)
    .op(...l.mul)
    .set(x2);
  // Horner in x2 over the coefficients, highest degree first.
  const horner = (coefficients: number[]) => {
    l.constant(f, coefficients[coefficients.length - 1]);
    for (let i = coefficients.length - 2; i >= 0; i--) {
      f.get(x2).op(...l.mul);
      l.constant(f, coefficients[i]);
      f.op(...l.add);
    }
  };
  horner(TANH_ALPHA);
  f.get(x).op(...l.mul);
  horner(TANH_BETA);
  f.op(...l.div);
}

const GELU_A = 0.044715;
const GELU_C = Math.sqrt(2 / Math.PI);

/** Expects x on the stack; leaves 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (locals g, x, x2). */
function emitGelu(f: Fn, l: Lanes, g: string, x: string, x2: string): void {
  emitGeluTanh(f, l, g, x, x2);
  emitGeluFromTanh(f, l, g);
}

/** Expects x on the stack; sets local g = x; leaves th = tanh(sqrt(2/pi) (x + 0.044715 x^3)). */
function emitGeluTanh(f: Fn, l: Lanes, g: string, x: string, x2: string): void {
  f.set(g);
  f.get(g)
    .get(g)
    .op(...l.mul)
    .get(g)
    .op(...l.mul);
  l.constant(f, GELU_A);
  f.op(...l.mul)
    .get(g)
    .op(...l.add);
  l.constant(f, GELU_C);
  f.op(...l.mul);
  emitTanh(f, l, x, x2);
}

/** Expects th on the stack, x in local g; leaves 0.5 x (1 + th). */
function emitGeluFromTanh(f: Fn, l: Lanes, g: string): void {
  l.constant(f, 1);
  f.op(...l.add)
    .get(g)
    .op(...l.mul);
  l.constant(f, 0.5);
  f.op(...l.mul);
}

/**
 * Leaves GELU'(x) = 0.5 (1 + th) + 0.5 x (1 - th^2) c (1 + 3 a x^2) in four lanes, from x in local g and
 * th in local t: geluGrad's slope and the forward epilogue's (the same operations, the same bits).
 */
function emitGeluSlope(f: Fn, g: string, t: string): void {
  const c = (v: number) => VECTOR.constant(f, v);
  // 0.5 (1 + th)
  f.get(t);
  c(1);
  f.op(...F32X4_ADD);
  c(0.5);
  f.op(...F32X4_MUL);
  // + 0.5 x (1 - th^2) c (1 + 3 a x^2)
  c(1);
  f.get(t)
    .get(t)
    .op(...F32X4_MUL, ...F32X4_SUB);
  f.get(g).op(...F32X4_MUL);
  c(0.5);
  f.op(...F32X4_MUL);
  f.get(g)
    .get(g)
    .op(...F32X4_MUL);
  c(3 * GELU_A);
  f.op(...F32X4_MUL);
  c(1);
  f.op(...F32X4_ADD);
  c(GELU_C);
  f.op(...F32X4_MUL, ...F32X4_MUL, ...F32X4_ADD);
}

/**
 * biasAct(z, rows, cols, bias, act): z[r, c] = act(z[r, c] + bias[c]) with act 0 = identity, 1 = tanh,
 * 2 = relu, 3 = gelu. Four columns at a time when cols is a multiple of 4 (same results as the scalar loop).
 */
function biasActFn(): Fn {
  const f = new Fn('biasAct', ['z', 'rows', 'cols', 'bias', 'act']);
  f.local('p', I32).local('end', I32).local('c', I32);
  f.local('x', F32).local('x2', F32).local('vx', V128).local('vx2', V128);
  f.local('g', F32).local('vg', V128);
  f.get('z').get('rows').get('cols').mul().i32(4).mul().add().set('end');
  const loops = (l: Lanes, act: number) => {
    const [x, x2, g0] = l.width === 1 ? ['x', 'x2', 'g'] : ['vx', 'vx2', 'vg'];
    f.get('z').set('p');
    f.whileLoop(
      (g) => g.get('p').get('end').op(I32_LT_S),
      (g) => {
        g.i32(0).set('c');
        g.whileLoop(
          (h) => h.get('c').get('cols').op(I32_LT_S),
          (h) => {
            h.get('p'); // the store's address
            h.get('p');
            l.load(h);
            h.get('bias').get('c').i32(4).mul().add();
            l.load(h);
            h.op(...l.add);
            if (act === ACT_TANH) emitTanh(h, l, x, x2);
            if (act === ACT_GELU) emitGelu(h, l, g0, x, x2);
            if (act === ACT_RELU) {
              l.constant(h, 0);
              h.op(...l.max);
            }
            l.store(h);
            h.bump('p', 4 * l.width).bump('c', l.width);
          },
        );
      },
    );
  };
  for (const act of [ACT_IDENTITY, ACT_TANH, ACT_RELU, ACT_GELU]) {
    f.ifThen(
      (g) => g.get('act').i32(act).op(0x46),
      (g) => {
        // cols % 4 == 0: vector loop; else scalar.
        g.get('cols').i32(3).op(0x71).op(0x45);
        g.op(0x04, 0x40);
        loops(VECTOR, act);
        g.op(0x05);
        loops(SCALAR, act);
        g.op(0x0b);
      },
    );
  }
  return f;
}

/** Byte lanes of i8x16.shuffle picking the i32 lanes `lanes` (0-3 of the first vector, 4-7 of the second). */
const shuffleLanes = (lanes: number[]) => [
  0xfd,
  0x0d,
  ...lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]),
];

/**
 * transposeInto(m, rows, cols, out, ldo): out[c, r] = m[r, c] for the row-major [rows, cols] m, out's rows
 * ldo floats apart (ldo >= rows: this may be a block of a wider transpose). 4 x 4 blocks through
 * registers (four loads, eight shuffles, four stores), the edges one element at a time.
 */
function transposeIntoFn(): Fn {
  const f = new Fn('transposeInto', ['m', 'rows', 'cols', 'out', 'ldo']);
  for (const n of ['r', 'c', 'i', 'src', 'dst', 'rowBytes', 'outBytes']) f.local(n, I32);
  for (const n of ['v0', 'v1', 'v2', 'v3', 't0', 't1', 't2', 't3']) f.local(n, V128);
  f.get('cols').i32(4).mul().set('rowBytes');
  f.get('ldo').i32(4).mul().set('outBytes');
  /** One element: out[c, r + i] = m[r + i, c]. */
  const element = (g: Fn, i: number | 'i') => {
    const row = (h: Fn) => (i === 'i' ? h.get('r').get('i').add() : h.get('r').i32(i).add());
    g.get('out').get('c').get('outBytes').mul().add();
    row(g);
    g.i32(4).mul().add();
    g.get('m');
    row(g);
    g.get('rowBytes').mul().add().get('c').i32(4).mul().add().f32Load().f32Store();
  };
  f.i32(0).set('r');
  f.whileLoop(
    (g) => g.get('r').i32(3).add().get('rows').op(I32_LT_S),
    (g) => {
      g.i32(0).set('c');
      g.whileLoop(
        (h) => h.get('c').i32(3).add().get('cols').op(I32_LT_S),
        (h) => {
          h.get('m').get('r').get('rowBytes').mul().add().get('c').i32(4).mul().add().set('src');
          for (let i = 0; i < 4; i++) h.get('src').get('rowBytes').i32(i).mul().add().v128Load().set(`v${i}`);
          // Interleave rows 0/1 and 2/3, then pair the halves: column j of the block in t_j order.
          const interleave: [string, string, number[], string][] = [
            ['v0', 'v1', [0, 4, 1, 5], 't0'],
            ['v0', 'v1', [2, 6, 3, 7], 't1'],
            ['v2', 'v3', [0, 4, 1, 5], 't2'],
            ['v2', 'v3', [2, 6, 3, 7], 't3'],
          ];
          for (const [x, y, lanes, t] of interleave)
            h.get(x)
              .get(y)
              .op(...shuffleLanes(lanes))
              .set(t);
          h.get('out').get('c').get('outBytes').mul().add().get('r').i32(4).mul().add().set('dst');
          const columns: [string, string, number[]][] = [
            ['t0', 't2', [0, 1, 4, 5]],
            ['t0', 't2', [2, 3, 6, 7]],
            ['t1', 't3', [0, 1, 4, 5]],
            ['t1', 't3', [2, 3, 6, 7]],
          ];
          columns.forEach(([x, y, lanes], j) => {
            h.get('dst').get('outBytes').i32(j).mul().add();
            h.get(x)
              .get(y)
              .op(...shuffleLanes(lanes))
              .v128Store();
          });
          h.bump('c', 4);
        },
      );
      // The last cols % 4 columns of these four rows.
      g.whileLoop(
        (h) => h.get('c').get('cols').op(I32_LT_S),
        (h) => {
          for (let i = 0; i < 4; i++) element(h, i);
          h.bump('c', 1);
        },
      );
      g.bump('r', 4);
    },
  );
  // The last rows % 4 rows.
  f.whileLoop(
    (g) => g.get('r').get('rows').op(I32_LT_S),
    (g) => {
      g.i32(0).set('c');
      g.whileLoop(
        (h) => h.get('c').get('cols').op(I32_LT_S),
        (h) => {
          h.i32(0).set('i');
          element(h, 'i');
          h.bump('c', 1);
        },
      );
      g.bump('r', 1);
    },
  );
  return f;
}

/**
 * biasResidualAct(out, rows, cols, ldc, bias, residual, act, actOut, slope): the epilogue of a product
 * y = x W (mmNNPacked runs it on each panel of the output while it is in cache). For the [rows, cols]
 * block at out (row stride ldc, cols in fours): out = out + bias[c], plus residual (the same layout) when
 * residual >= 0; then, when act >= 0, actOut (the same layout) = act(out), and for GELU with slope >= 0
 * slope (the same layout; may be out itself) = GELU'(out), what the backward pass multiplies by. The same
 * operations in the same order as biasAct, an add of the residual and geluGrad: the same numbers.
 */
function biasResidualActFn(): Fn {
  const f = new Fn('biasResidualAct', [
    'out',
    'rows',
    'cols',
    'ldc',
    'bias',
    'residual',
    'act',
    'actOut',
    'slope',
  ]);
  for (const n of ['r', 'c', 'at']) f.local(n, I32);
  for (const n of ['v', 'vx', 'vx2', 'vg', 'vt']) f.local(n, V128);
  const loops = (act: number, withResidual: boolean) => {
    f.i32(0).set('r');
    f.whileLoop(
      (g) => g.get('r').get('rows').op(I32_LT_S),
      (g) => {
        g.i32(0).set('c');
        g.whileLoop(
          (h) => h.get('c').get('cols').op(I32_LT_S),
          (h) => {
            h.get('r').get('ldc').mul().get('c').add().i32(4).mul().set('at');
            h.get('out').get('at').add().v128Load();
            h.get('bias').get('c').i32(4).mul().add().v128Load();
            h.op(...F32X4_ADD);
            if (withResidual)
              h.get('residual')
                .get('at')
                .add()
                .v128Load()
                .op(...F32X4_ADD);
            h.set('v');
            h.get('out').get('at').add().get('v').v128Store();
            if (act >= 0) {
              h.get('actOut').get('at').add().get('v');
              if (act === ACT_TANH) emitTanh(h, VECTOR, 'vx', 'vx2');
              if (act === ACT_GELU) {
                emitGeluTanh(h, VECTOR, 'vg', 'vx', 'vx2');
                h.set('vt').get('vt');
                emitGeluFromTanh(h, VECTOR, 'vg');
              }
              if (act === ACT_RELU) {
                VECTOR.constant(h, 0);
                h.op(...VECTOR.max);
              }
              h.v128Store();
              // GELU's slope for the backward pass, when asked for.
              if (act === ACT_GELU)
                h.ifThen(
                  (z) => z.get('slope').i32(0).op(0x4e), // slope >= 0
                  (z) => {
                    z.get('slope').get('at').add();
                    emitGeluSlope(z, 'vg', 'vt');
                    z.v128Store();
                  },
                );
            }
            h.bump('c', 4);
          },
        );
        g.bump('r', 1);
      },
    );
  };
  for (const act of [-1, ACT_IDENTITY, ACT_TANH, ACT_RELU, ACT_GELU])
    for (const withResidual of [false, true])
      f.ifThen(
        (g) =>
          g
            .get('act')
            .i32(act)
            .op(0x46)
            .get('residual')
            .i32(0)
            .op(withResidual ? 0x4e : 0x48) // i32.ge_s / i32.lt_s
            .op(0x71),
        () => loops(act, withResidual),
      );
  return f;
}

/** transpose(m, rows, cols, out): out[c, r] = m[r, c]. */
function transposeFn(): Fn {
  const f = new Fn('transpose', ['m', 'rows', 'cols', 'out']);
  f.local('r', I32).local('c', I32).local('src', I32).local('dst', I32).local('stride', I32);
  f.get('rows').i32(4).mul().set('stride');
  f.get('m').set('src');
  f.i32(0).set('r');
  f.whileLoop(
    (g) => g.get('r').get('rows').op(I32_LT_S),
    (g) => {
      g.get('out').get('r').i32(4).mul().add().set('dst');
      g.i32(0).set('c');
      g.whileLoop(
        (h) => h.get('c').get('cols').op(I32_LT_S),
        (h) => {
          h.get('dst').get('src').f32Load().f32Store();
          h.bump('src', 4);
          h.get('dst').get('stride').add().set('dst');
          h.bump('c', 1);
        },
      );
      g.bump('r', 1);
    },
  );
  return f;
}

/** actGrad(d, h, n, act): d[k] *= (1 - h[k]^2) for tanh (act 1), d[k] = h[k] > 0 ? d[k] : 0 for relu. */
function actGradFn(): Fn {
  const f = new Fn('actGrad', ['d', 'h', 'n', 'act']);
  f.local('k', I32).local('end', I32).local('a', F32);
  f.i32(0).set('k');
  f.get('n').i32(4).mul().set('end');
  f.whileLoop(
    (g) => g.get('k').get('end').op(I32_LT_S),
    (g) => {
      g.get('h').get('k').add().f32Load().set('a');
      g.get('d').get('k').add(); // the store's address
      g.get('d').get('k').add().f32Load();
      g.get('act').i32(1).op(0x46); // i32.eq
      g.op(0x04, F32); // if, with an f32 result
      g.f32(1)
        .get('a')
        .get('a')
        .op(...F32_MUL)
        .op(0x93); // 1 - a * a
      g.op(0x05); // else
      g.f32(1).f32(0).get('a').f32(0).op(0x5e, 0x1b); // select(1, 0, a > 0)
      g.op(0x0b);
      g.op(...F32_MUL).f32Store();
      g.bump('k', 4);
    },
  );
  return f;
}

/**
 * geluGrad(d, x, n): d[k] *= GELU'(x[k]) for n a multiple of 4, with th = tanh(c (x + a x^3)):
 *   GELU'(x) = 0.5 (1 + th) + 0.5 x (1 - th^2) c (1 + 3 a x^2)     (c = sqrt(2/pi), a = 0.044715)
 * the derivative of `emitGelu`'s tanh form, through the same tanh.
 */
function geluGradFn(): Fn {
  const f = new Fn('geluGrad', ['d', 'x', 'n']);
  f.local('k', I32).local('end', I32);
  for (const v of ['vx', 'vx2', 'vg', 'vt']) f.local(v, V128);
  f.get('n').i32(4).mul().set('end');
  f.i32(0).set('k');
  f.whileLoop(
    (g) => g.get('k').get('end').op(I32_LT_S),
    (g) => {
      g.get('d').get('k').add(); // the store's address
      g.get('d').get('k').add().v128Load();
      g.get('x').get('k').add().v128Load();
      emitGeluTanh(g, VECTOR, 'vg', 'vx', 'vx2');
      g.set('vt');
      emitGeluSlope(g, 'vg', 'vt');
      g.op(...F32X4_MUL).v128Store();
      g.bump('k', 16);
    },
  );
  return f;
}

/** scaleBy(d, h, n): d[k] *= h[k], n a multiple of 4 (a slope the forward pass stored, e.g. GELU's). */
function scaleByFn(): Fn {
  const f = new Fn('scaleBy', ['d', 'h', 'n']);
  f.local('k', I32).local('end', I32);
  f.get('n').i32(4).mul().set('end');
  f.i32(0).set('k');
  f.whileLoop(
    (g) => g.get('k').get('end').op(I32_LT_S),
    (g) => {
      g.get('d').get('k').add();
      g.get('d').get('k').add().v128Load();
      g.get('h').get('k').add().v128Load();
      g.op(...F32X4_MUL).v128Store();
      g.bump('k', 16);
    },
  );
  return f;
}

/** a, rows, b, cols, inner, out, lda, ldb, ldc. */
type StridedProductArgs = [number, number, number, number, number, number, number, number, number];

/** The kernels' raw entry points: every pointer a byte offset into the arena's memory. */
export interface Kernels {
  mm(a: number, rows: number, b: number, cols: number, inner: number, out: number): void;
  mmNN(a: number, rows: number, b: number, cols: number, inner: number, out: number): void;
  mmTN(a: number, rows: number, b: number, cols: number, inner: number, out: number, lda: number): void;
  /**
   * b [inner, cols] (row stride ldb) into column panels at dst (wasm-packed.ts); cols in fours. With
   * sums >= 0, also sums[c] = sum over k of b[k, c], in order.
   */
  packPanels(b: number, ldb: number, inner: number, cols: number, dst: number, sums: number): void;
  /**
   * mmNN (with lda) of a and the panels `packPanels` made of b: the same numbers. With bias >= 0, each
   * panel of the output then takes biasResidualAct(bias, residual, act, actOut, slope) (bias < 0: none).
   */
  mmNNPacked(
    a: number,
    rows: number,
    bp: number,
    cols: number,
    inner: number,
    out: number,
    lda: number,
    ldc: number,
    bias: number,
    residual: number,
    act: number,
    actOut: number,
    slope: number,
  ): void;
  /** mmTN (a stored [inner, lda]) of a and the panels `packPanels` made of b: the same numbers. */
  mmTNPacked(
    a: number,
    rows: number,
    bp: number,
    cols: number,
    inner: number,
    out: number,
    lda: number,
  ): void;
  /** The product epilogue on a block (row stride ldc): out += bias (+ residual); actOut = act(out). */
  biasResidualAct(
    out: number,
    rows: number,
    cols: number,
    ldc: number,
    bias: number,
    residual: number,
    act: number,
    actOut: number,
    slope: number,
  ): void;
  /** Rows of logits [rows, v] -> log pi in place; out [rows, 2] = [log pi(target), entropy] (wasm-softmax.ts). */
  logSoftmaxFwd(z: number, rows: number, v: number, targets: number, out: number): void;
  /** dz [rows, v] from log pi, the forward's out and dOut [rows, 2] (dL/d log pi(target), dL/d entropy). */
  logSoftmaxBwd(
    logPi: number,
    rows: number,
    v: number,
    targets: number,
    out: number,
    dOut: number,
    dz: number,
  ): void;
  /** d[k] *= h[k] for n (a multiple of 4) floats. */
  scaleBy(d: number, h: number, n: number): void;
  /** out[c, r] = m[r, c], out's row stride ldo floats (4 x 4 blocks in registers). */
  transposeInto(m: number, rows: number, cols: number, out: number, ldo: number): void;
  /** out[r] = tok[tokens[r]] + pos[r mod t] (int32 tokens; rows of d floats, d in fours). */
  embedRows(tokens: number, tok: number, pos: number, out: number, rows: number, t: number, d: number): void;
  /** dTok[tokens[r]] += g[r], dPos[r mod t] += g[r], rows in order. */
  scatterRows(
    tokens: number,
    g: number,
    dTok: number,
    dPos: number,
    rows: number,
    t: number,
    d: number,
  ): void;
  /** Adam's update of n parameters in place (wasm-adam.ts), float64 constants at `constants`. */
  adam(p: number, g: number, m: number, v: number, n: number, constants: number): void;
  /** The float64 at acc += sum of g[k]^2, in order. */
  sumSquares(g: number, n: number, acc: number): void;
  /** The products on blocks of wider matrices: lda, ldb, ldc are the row strides in floats. */
  mmStrided(...args: StridedProductArgs): void;
  mmNNStrided(...args: StridedProductArgs): void;
  mmTNStrided(...args: StridedProductArgs): void;
  biasAct(z: number, rows: number, cols: number, bias: number, act: number): void;
  actGrad(d: number, h: number, n: number, act: number): void;
  transpose(m: number, rows: number, cols: number, out: number): void;
  geluGrad(d: number, x: number, n: number): void;
  /** Causal attention of pairs p0..p0+pairs-1 (wasm-attention.ts); scratch: `attentionScratchFloats` floats. */
  attnFwd(
    qkv: number,
    out: number,
    probs: number,
    scratch: number,
    p0: number,
    pairs: number,
    t: number,
    heads: number,
    d: number,
  ): void;
  attnBwd(
    qkv: number,
    dy: number,
    grad: number,
    probs: number,
    scratch: number,
    p0: number,
    pairs: number,
    t: number,
    heads: number,
    d: number,
  ): void;
  /** Layer norm of rows [rows, d] (wasm-layer-norm.ts), keeping each row's mean and rstd; out may be x. */
  lnFwd(
    x: number,
    gamma: number,
    beta: number,
    out: number,
    mean: number,
    rstd: number,
    rows: number,
    d: number,
  ): void;
  /** g += LN'(dy), row by row, from the forward pass's input x and stats. */
  lnBwdRows(
    dy: number,
    x: number,
    mean: number,
    rstd: number,
    gamma: number,
    g: number,
    rows: number,
    d: number,
  ): void;
  /** dGamma, dBeta of the first `cols` columns (row stride d), summed over the rows in order. */
  lnBwdCols(
    dy: number,
    x: number,
    mean: number,
    rstd: number,
    dGamma: number,
    dBeta: number,
    rows: number,
    d: number,
    cols: number,
  ): void;
}

const compiled = new Map<string, WebAssembly.Module>();
const PRODUCTS = { mm: 0, mmNN: 1, mmTN: 2, transposeInto: 3 };

let fusedWanted = true;

/**
 * Products with fused multiply-adds (where the engine has relaxed SIMD) or without, for arenas made from
 * now on: the bench and the tests compare both.
 */
export function enableFusedMultiplyAdd(on: boolean): void {
  fusedWanted = on;
}

/** Whether an arena made now multiplies with fused multiply-adds. */
export function fusedMultiplyAdd(): boolean {
  return fusedWanted && relaxedSimdAvailable();
}

/**
 * The compiled module for a private or a shared memory, with or without fused multiply-adds, built
 * once per process (a few kB; synchronous compile is fine at this size).
 */
function simdModule(shared: boolean, fused: boolean): WebAssembly.Module {
  const key = `${shared} ${fused}`;
  let module = compiled.get(key);
  if (module) return module;
  // The strided products and transposeInto at these indices (PRODUCTS): the attention kernels and the
  // dense forms call them.
  const fns = [matMulTransposedFn(fused), matMulFn(false, fused), matMulFn(true, fused), transposeIntoFn()];
  fns.push(
    denseProductFn('mm', PRODUCTS.mm),
    denseProductFn('mmNN', PRODUCTS.mmNN),
    denseProductFn('mmTN', PRODUCTS.mmTN),
    biasActFn(),
    actGradFn(),
    transposeFn(),
    geluGradFn(),
    attentionForwardFn(PRODUCTS),
    attentionBackwardFn(PRODUCTS),
    layerNormForwardFn(),
    layerNormBackwardRowsFn(),
    layerNormBackwardColumnsFn(),
    adamFn(),
    sumSquaresFn(),
    embedRowsFn(),
    scatterRowsFn(),
    scaleByFn(),
    logSoftmaxForwardFn(),
    logSoftmaxBackwardFn(),
  );
  // mmNNPacked calls the epilogue by its index.
  const epilogue = fns.push(biasResidualActFn()) - 1;
  fns.push(
    packPanelsFn(),
    packedProductFn('mmNNPacked', PRODUCTS.mmNN, epilogue),
    packedProductFn('mmTNPacked', PRODUCTS.mmTN),
  );
  module = new WebAssembly.Module(assemble(fns, shared));
  compiled.set(key, module);
  return module;
}

/** A float32 view into an arena's memory with its byte offset, for passing to the kernels. */
export interface SimdBuffer {
  view: Float32Array;
  offset: number;
}

const helperOwners = new FinalizationRegistry<KernelHelper>((helper) => helper.stop());

/**
 * One fixed-size memory and the kernels bound to it. Allocate every buffer up front with `alloc`.
 * With `{ helper: true }` (where worker threads exist) the memory is shared with a second thread and
 * `parallel` splits large products, attention, layer norms and element-wise kernels across both
 * (kernel-helper.ts); the numbers are the same as `kernels` gives, element for element.
 */
export class SimdArena {
  private readonly memory: WebAssembly.Memory;
  /** Raw entry points, for callers that address inside buffers (`buffer.offset + 4 * index`). */
  readonly kernels: Kernels;
  /** The matrix products on two threads when the arena has a helper, else `kernels`. */
  readonly parallel: ParallelKernels;
  /** Whether the products use fused multiply-adds (fixed per arena: see `enableFusedMultiplyAdd`). */
  readonly fused = fusedMultiplyAdd();
  private readonly helper?: KernelHelper;
  private used = 0;

  constructor(
    readonly capacityFloats: number,
    options: { helper?: boolean } = {},
  ) {
    const pages = Math.max(1, Math.ceil((capacityFloats * 4 + 64) / 65536));
    const shared = options.helper === true && kernelHelperAvailable();
    this.memory = new WebAssembly.Memory(
      shared ? { initial: pages, maximum: pages, shared: true } : { initial: pages },
    );
    const module = simdModule(shared, this.fused);
    const instance = new WebAssembly.Instance(module, { env: { memory: this.memory } });
    this.kernels = instance.exports as unknown as Kernels;
    this.helper = shared
      ? new KernelHelper(
          module,
          this.memory,
          instance.exports as unknown as Record<string, (...args: number[]) => void>,
        )
      : undefined;
    // An arena dropped without `dispose` still stops its thread once collected.
    if (this.helper) helperOwners.register(this, this.helper);
    this.parallel = this.helper ? splitKernels(this.kernels, this.helper) : this.kernels;
  }

  /** Resolves once the helper thread serves `parallel` (at once without a helper): for tests. */
  async helperReady(): Promise<boolean> {
    if (!this.helper) return false;
    // The worker is unref'd: keep this process alive while waiting for it.
    const keepAlive = setInterval(() => {}, 1000);
    try {
      return await this.helper.ready;
    } finally {
      clearInterval(keepAlive);
    }
  }

  /** How many split jobs this thread took back from the helper because it had not started them (tests). */
  helperJobsTakenBack(): number {
    return this.helper?.takenBack ?? 0;
  }

  /** Stops the helper thread; the arena's single-thread kernels stay usable. */
  dispose(): void {
    this.helper?.stop();
  }

  /** Hand the whole memory out again (earlier buffers' contents become scratch). */
  reset(): void {
    this.used = 0;
  }

  alloc(floats: number): SimdBuffer {
    // 16-byte aligned, so f32x4 loads of row starts with a multiple-of-4 width are aligned.
    const offset = this.used;
    this.used += Math.ceil(floats / 4) * 16;
    if (this.used > this.memory.buffer.byteLength) throw new Error('SimdArena: out of reserved memory');
    return { view: new Float32Array(this.memory.buffer, offset, floats), offset };
  }

  /** out[r, c] = sum_k a[r, k] b[c, k]. */
  matMulTransposed(
    a: SimdBuffer,
    rows: number,
    b: SimdBuffer,
    cols: number,
    inner: number,
    out: SimdBuffer,
  ): void {
    this.kernels.mm(a.offset, rows, b.offset, cols, inner, out.offset);
  }

  /** out[r, c] = sum_k a[r, k] b[k, c]; cols must be a multiple of 4. */
  matMul(a: SimdBuffer, rows: number, b: SimdBuffer, cols: number, inner: number, out: SimdBuffer): void {
    if (cols % 4 !== 0) throw new Error(`SimdArena.matMul: cols ${cols} is not a multiple of 4`);
    this.kernels.mmNN(a.offset, rows, b.offset, cols, inner, out.offset);
  }

  /** out[r, c] = sum_k a[k, r] b[k, c] (a stored [inner, rows]); cols must be a multiple of 4. */
  matMulTransposedA(
    a: SimdBuffer,
    rows: number,
    b: SimdBuffer,
    cols: number,
    inner: number,
    out: SimdBuffer,
  ): void {
    if (cols % 4 !== 0) throw new Error(`SimdArena.matMulTransposedA: cols ${cols} is not a multiple of 4`);
    this.kernels.mmTN(a.offset, rows, b.offset, cols, inner, out.offset, rows);
  }

  /** z = act(z + bias) row-wise, over the first rows x cols of z. */
  biasActivation(z: SimdBuffer, rows: number, cols: number, bias: SimdBuffer, act: number): void {
    this.kernels.biasAct(z.offset, rows, cols, bias.offset, act);
  }

  /** out = m^T for the row-major [rows, cols] m. */
  transpose(m: SimdBuffer, rows: number, cols: number, out: SimdBuffer): void {
    this.kernels.transpose(m.offset, rows, cols, out.offset);
  }

  /** d *= GELU'(x) (tanh form), elementwise over n floats, n a multiple of 4. */
  geluGradient(d: SimdBuffer, x: SimdBuffer, n: number): void {
    if (n % 4 !== 0) throw new Error(`SimdArena.geluGradient: n ${n} is not a multiple of 4`);
    this.kernels.geluGrad(d.offset, x.offset, n);
  }

  /** d *= act'(.) expressed through the activation's output h. */
  activationGradient(d: SimdBuffer, h: SimdBuffer, n: number, act: number): void {
    this.kernels.actGrad(d.offset, h.offset, n, act);
  }
}

/**
 * The kernels `SimdArena.parallel` splits across two threads. attnFwd / attnBwd take scratch for both
 * threads: 2 * attentionScratchFloats(t, d / heads) floats (the helper uses the second half).
 */
export type ParallelKernels = Pick<
  Kernels,
  | 'mm'
  | 'mmNN'
  | 'mmTN'
  | 'packPanels'
  | 'mmNNPacked'
  | 'mmTNPacked'
  | 'transposeInto'
  | 'attnFwd'
  | 'attnBwd'
  | 'lnFwd'
  | 'lnBwdRows'
  | 'biasAct'
  | 'actGrad'
  | 'scaleBy'
  | 'logSoftmaxFwd'
  | 'logSoftmaxBwd'
>;

/**
 * The smallest chunk of a split kernel, as a fraction of its rows (pairs, elements): both threads claim
 * chunks until none is left, a quarter of what remains each time (KernelHelper.runChunked), so when one
 * is slowed down (the other's memory traffic, the OS) the other takes more, and the last chunks, the most
 * one thread can wait for, are 1/GRANULES of the job.
 */
const GRANULES = 64;
/** Products below this many multiply-adds stay on one thread: waking the helper costs ~tens of µs. */
const SPLIT_MIN = 1 << 20;
/** Layer norms and element-wise kernels below this many elements stay on one thread (the same reason). */
const SPLIT_MIN_ELEMENTS = 1 << 14;

/**
 * The kernels split between this thread and the helper: the products, layer norms, transposes and
 * log-softmax by rows, packing by panels, attention by (sequence, head) pairs, scaleBy by elements, all in
 * chunks both threads claim as they go; biasAct and actGrad in halves. Each output element is computed by
 * the same instructions either way, so the numbers do not depend on the split.
 */
function splitKernels(k: Kernels, helper: KernelHelper): ParallelKernels {
  // Attention: the (sequence, head) pairs (p0 and their count after the buffers and the scratch) in
  // chunks, the worker with the second half of the scratch.
  const pairChunks = (
    kernel: HelperKernel.attnFwd | HelperKernel.attnBwd,
    buffers: number[],
    scratch: number,
    p0: number,
    pairs: number,
    t: number,
    heads: number,
    d: number,
  ) => {
    const run = (kernel === HelperKernel.attnFwd ? k.attnFwd : k.attnBwd) as (...args: number[]) => void;
    const args = [...buffers, scratch, p0, pairs, t, heads, d];
    if (pairs < 2 || !helper.serving()) return run(...args);
    const strides = args.map((_, i) => (i === buffers.length + 1 ? 1 : 0)); // p0 moves by one per pair
    const granule = Math.max(1, Math.ceil(pairs / GRANULES));
    const bytes = attentionScratchFloats(t, d / heads) * 4;
    helper.runChunked(kernel, run, args, strides, buffers.length + 2, pairs, granule, {
      arg: buffers.length,
      bytes,
    });
  };
  const big = (rows: number, cols: number, inner: number) => rows >= 8 && rows * cols * inner >= SPLIT_MIN;
  /**
   * `kernel` over its rows (argument `countArg`, default 1) in chunks of whole granules of rows/`granules`
   * (a multiple of 4), which both threads claim as they go (KernelHelper.runChunked): `strides` are the
   * bytes one row adds to each argument.
   */
  const rowChunks = (
    kernel: HelperKernel,
    local: (...args: number[]) => void,
    args: number[],
    strides: number[],
    rows: number,
    granules = GRANULES,
    countArg = 1,
  ) =>
    helper.runChunked(
      kernel,
      local,
      args,
      strides,
      countArg,
      rows,
      Math.max(4, Math.ceil(rows / granules / 4) * 4),
    );
  /** Whether a kernel over `parts` rows (or columns) and `elements` values stays on this thread. */
  const alone = (parts: number, elements: number) =>
    parts < 2 || elements < SPLIT_MIN_ELEMENTS || !helper.serving();
  return {
    mm(a, rows, b, cols, inner, out) {
      if (!big(rows, cols, inner) || !helper.serving()) return k.mm(a, rows, b, cols, inner, out);
      rowChunks(
        HelperKernel.mm,
        k.mm,
        [a, rows, b, cols, inner, out],
        [inner * 4, 0, 0, 0, 0, cols * 4],
        rows,
      );
    },
    mmNN(a, rows, b, cols, inner, out) {
      if (!big(rows, cols, inner) || !helper.serving()) return k.mmNN(a, rows, b, cols, inner, out);
      rowChunks(
        HelperKernel.mmNN,
        k.mmNN,
        [a, rows, b, cols, inner, out],
        [inner * 4, 0, 0, 0, 0, cols * 4],
        rows,
      );
    },
    mmTN(a, rows, b, cols, inner, out, lda) {
      if (!big(rows, cols, inner) || !helper.serving()) return k.mmTN(a, rows, b, cols, inner, out, lda);
      // Each chunk reads all of b: fewer, larger chunks.
      rowChunks(
        HelperKernel.mmTN,
        k.mmTN,
        [a, rows, b, cols, inner, out, lda],
        [4, 0, 0, 0, 0, cols * 4],
        rows,
        4,
      );
    },
    attnFwd(qkv, out, probs, scratch, p0, pairs, t, heads, d) {
      pairChunks(HelperKernel.attnFwd, [qkv, out, probs], scratch, p0, pairs, t, heads, d);
    },
    attnBwd(qkv, dy, grad, probs, scratch, p0, pairs, t, heads, d) {
      pairChunks(HelperKernel.attnBwd, [qkv, dy, grad, probs], scratch, p0, pairs, t, heads, d);
    },
    // Element-wise: each thread takes half of the rows (or of the elements, in fours).
    biasAct(z, rows, cols, bias, act) {
      if (alone(rows, rows * cols)) return k.biasAct(z, rows, cols, bias, act);
      const h = rows >> 1;
      helper.run(HelperKernel.biasAct, [z + h * cols * 4, rows - h, cols, bias, act], () =>
        k.biasAct(z, h, cols, bias, act),
      );
    },
    actGrad(d, h, n, act) {
      if (alone(n, n)) return k.actGrad(d, h, n, act);
      const m = (n >> 3) << 2;
      helper.run(HelperKernel.actGrad, [d + m * 4, h + m * 4, n - m, act], () => k.actGrad(d, h, m, act));
    },
    logSoftmaxFwd(z, rows, v, targets, out) {
      if (alone(rows, rows * v)) return k.logSoftmaxFwd(z, rows, v, targets, out);
      rowChunks(
        HelperKernel.logSoftmaxFwd,
        k.logSoftmaxFwd,
        [z, rows, v, targets, out],
        [v * 4, 0, 0, 4, 8],
        rows,
      );
    },
    logSoftmaxBwd(logPi, rows, v, targets, out, dOut, dz) {
      if (alone(rows, rows * v)) return k.logSoftmaxBwd(logPi, rows, v, targets, out, dOut, dz);
      const args = [logPi, rows, v, targets, out, dOut, dz];
      rowChunks(HelperKernel.logSoftmaxBwd, k.logSoftmaxBwd, args, [v * 4, 0, 0, 4, 8, 8, v * 4], rows);
    },
    scaleBy(d, h, n) {
      if (alone(n, n)) return k.scaleBy(d, h, n);
      rowChunks(HelperKernel.scaleBy, k.scaleBy, [d, h, n], [4, 4, 0], n, GRANULES, 2);
    },
    // Layer norm: rows are independent. (dgamma, dbeta stay on one thread: split by columns, both threads
    // read every row's cache lines, and it measured slower than one.)
    lnFwd(x, gamma, beta, out, mean, rstd, rows, d) {
      if (alone(rows, rows * d)) return k.lnFwd(x, gamma, beta, out, mean, rstd, rows, d);
      const row = d * 4;
      const args = [x, gamma, beta, out, mean, rstd, rows, d];
      rowChunks(HelperKernel.lnFwd, k.lnFwd, args, [row, 0, 0, row, 4, 4], rows, GRANULES, 6);
    },
    lnBwdRows(dy, x, mean, rstd, gamma, g, rows, d) {
      if (alone(rows, rows * d)) return k.lnBwdRows(dy, x, mean, rstd, gamma, g, rows, d);
      const row = d * 4;
      const args = [dy, x, mean, rstd, gamma, g, rows, d];
      rowChunks(HelperKernel.lnBwdRows, k.lnBwdRows, args, [row, row, 4, 4, 0, row], rows, GRANULES, 6);
    },
    // Packing: each thread packs half of the panels (whole panels: they start every PANEL columns).
    packPanels(b, ldb, inner, cols, dst, sums) {
      if (alone(Math.floor(cols / PANEL), inner * cols)) return k.packPanels(b, ldb, inner, cols, dst, sums);
      // Whole panels per chunk (they start every PANEL columns): one column moves b by a float, dst by
      // `inner` floats, the sums by a float.
      const args = [b, ldb, inner, cols, dst, sums];
      const strides = [4, 0, 0, 0, inner * 4, sums < 0 ? 0 : 4];
      helper.runChunked(HelperKernel.packPanels, k.packPanels, args, strides, 3, cols, PANEL);
    },
    mmNNPacked(a, rows, bp, cols, inner, out, lda, ldc, bias, residual, act, actOut, slope) {
      if (!big(rows, cols, inner) || !helper.serving())
        return k.mmNNPacked(a, rows, bp, cols, inner, out, lda, ldc, bias, residual, act, actOut, slope);
      const args = [a, rows, bp, cols, inner, out, lda, ldc, bias, residual, act, actOut, slope];
      if (inner > rows) {
        // A weight gradient (few rows, a long sum): by whole panels, so that each thread streams its own
        // panels of b once (by rows, every chunk would stream all of b, megabytes, again).
        const optional = (p: number) => (p < 0 ? 0 : 4);
        const strides = [
          0,
          0,
          inner * 4,
          0,
          0,
          4,
          0,
          0,
          optional(bias),
          optional(residual),
          0,
          4,
          optional(slope),
        ];
        return helper.runChunked(HelperKernel.mmNNPacked, k.mmNNPacked, args, strides, 3, cols, PANEL);
      }
      const row = ldc * 4; // what a row adds to out, residual and slope (when given) and actOut
      rowChunks(
        HelperKernel.mmNNPacked,
        k.mmNNPacked,
        args,
        [lda * 4, 0, 0, 0, 0, row, 0, 0, 0, residual < 0 ? 0 : row, 0, row, slope < 0 ? 0 : row],
        rows,
      );
    },
    transposeInto(m, rows, cols, out, ldo) {
      if (alone(rows, rows * cols)) return k.transposeInto(m, rows, cols, out, ldo);
      rowChunks(
        HelperKernel.transposeInto,
        k.transposeInto,
        [m, rows, cols, out, ldo],
        [cols * 4, 0, 0, 4],
        rows,
      );
    },
    mmTNPacked(a, rows, bp, cols, inner, out, lda) {
      if (!big(rows, cols, inner) || !helper.serving())
        return k.mmTNPacked(a, rows, bp, cols, inner, out, lda);
      const args = [a, rows, bp, cols, inner, out, lda];
      rowChunks(HelperKernel.mmTNPacked, k.mmTNPacked, args, [4, 0, 0, 0, 0, cols * 4], rows, 4);
    },
  };
}

let scratch: SimdArena | undefined;

/**
 * The process-wide scratch arena, emptied, with room for `floats` floats (replaced by a bigger one when
 * needed): for ops that hold buffers for the length of one call only.
 */
export function scratchArena(floats: number): SimdArena {
  if (!scratch || scratch.capacityFloats < floats) scratch = new SimdArena(Math.max(floats, 1 << 16));
  scratch.reset();
  return scratch;
}

/** Bytes needed for `floats` floats allocated as separate buffers (16-byte rounding included). */
export function arenaFloats(sizes: number[]): number {
  return sizes.reduce((sum, n) => sum + Math.ceil(n / 4) * 4, 0);
}
