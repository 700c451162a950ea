/**
 * Causal multi-head self-attention as WebAssembly kernels over (sequence, head) pairs, forward and
 * backward, for the host trunk (nodes/agent/llm/host-trunk.ts): gathers, the products (calls into the
 * module's mmNN / mmTN, with K and V transposed first so that S and dP are plain products: no lane sums
 * to reduce per entry), the causal softmax and its gradient, scatters. Whole pairs in one call, so the
 * kernel helper can run any of the pairs on its thread. For pair (b, h), with q' = Q / sqrt(d_h)
 * (Vaswani et al. 2017):
 *   S = q' K^T (keys j <= query i),  P = softmax(S),  O = P V
 *   dV = P^T dO,  dP = dO V^T,  dS = P . (dP - rowsum(P . dP)),  dQ = dS K / sqrt(d_h),  dK = dS^T q'
 * Layouts: qkv [B*T, 3d] (head h's queries at columns h*d_h.., keys at d + h*d_h.., values at 2d + ..),
 * outputs [B*T, d], probabilities [B*heads, T, T] (kept by the forward pass for the backward pass).
 * exp is Cephes' expf (range reduction by ln 2, degree-6 polynomial, within ~2 ulp of float32 exp). Row
 * sums (softmax, rowsum(P . dP)) run in four lanes, then the lanes in order, then the last keys.
 */
import { extractLane, F32, F32X4_MUL, F32X4_SPLAT, F32X4_SUB, Fn, I32, I32_LT_S, V128 } from './wasm-asm.ts';

/** The module's indices of the functions the attention calls (wasm-simd.ts: mmNNStrided, mmTNStrided, transposeInto). */
export interface ProductIndices {
  mmNN: number;
  mmTN: number;
  transposeInto: number;
}

const [F32_ADD, F32_SUB, F32_MUL, F32_DIV, F32_MAX] = [0x92, 0x93, 0x94, 0x95, 0x97];
const [I32_SUB, I32_DIV_U, I32_REM_U, I32_SHL, I32_LE_S] = [0x6b, 0x6e, 0x70, 0x74, 0x4c];

/** The float ops of one lane shape: scalar f32, or four f32 lanes (the same IEEE operations lane by lane). */
export interface Lanes {
  constant: (f: Fn, v: number) => void;
  load: (f: Fn) => void;
  store: (f: Fn) => void;
  add: number[];
  sub: number[];
  mul: number[];
  /** max(a, b) for numbers (not NaN): f32x4.pmax (one instruction; f32x4.max's NaN and -0 rules take ~8). */
  max: number[];
  nearest: number[];
  /** The float's bits as an integer (f32 -> i32; four lanes need no reinterpret), and int << i32. */
  bits: number[];
  shl: number[];
  /** Pushes the f32 local `name` (splat to four lanes). */
  local: (f: Fn, name: string) => void;
  /** Locals for x and n. */
  x: string;
  n: string;
  width: number;
}

export const SCALAR: Lanes = {
  constant: (f, v) => f.f32(v),
  load: (f) => f.f32Load(),
  store: (f) => f.f32Store(),
  add: [F32_ADD],
  sub: [F32_SUB],
  mul: [F32_MUL],
  max: [F32_MAX],
  nearest: [0x90],
  bits: [0xbc], // i32.reinterpret_f32
  shl: [I32_SHL],
  local: (f, name) => f.get(name),
  x: 'ex',
  n: 'en',
  width: 1,
};

export const VECTOR: Lanes = {
  constant: (f, v) => f.f32(v).op(...F32X4_SPLAT),
  load: (f) => f.v128Load(),
  store: (f) => f.v128Store(),
  add: [0xfd, 0xe4, 0x01],
  sub: F32X4_SUB,
  mul: F32X4_MUL,
  max: [0xfd, 0xeb, 0x01], // f32x4.pmax
  nearest: [0xfd, 0x6a],
  bits: [],
  shl: [0xfd, 0xab, 0x01], // i32x4.shl
  local: (f, name) => f.get(name).op(...F32X4_SPLAT),
  x: 'vex',
  n: 'ven',
  width: 4,
};

/**
 * Expects x (<= 0 here: scores minus their row maximum) on the stack; leaves exp(x). Scalar or four lanes
 * at a time with the same operations in the same order, so both give the same bits.
 */
export function emitExp(f: Fn, l: Lanes): void {
  const { x, n } = l;
  l.constant(f, -87.33654);
  f.op(...l.max).set(x);
  // n = round(x log2 e); x -= n ln 2 (in two parts, exactly representable high part first)
  f.get(x);
  l.constant(f, Math.LOG2E);
  f.op(...l.mul, ...l.nearest).set(n);
  f.get(x).get(n);
  l.constant(f, 0.693359375);
  f.op(...l.mul, ...l.sub);
  f.get(n);
  l.constant(f, -2.1219444e-4);
  f.op(...l.mul, ...l.sub).set(x);
  // p(x) = ((((c5 x + c4) x + c3) x + c2) x + c1) x + c0, then p x^2 + x + 1
  const c = [
    5.0000001201e-1, 1.6666665459e-1, 4.1665795894e-2, 8.3334519073e-3, 1.3981999507e-3, 1.98756915e-4,
  ];
  l.constant(f, c[5]);
  for (let i = 4; i >= 0; i--) {
    f.get(x).op(...l.mul);
    l.constant(f, c[i]);
    f.op(...l.add);
  }
  f.get(x)
    .get(x)
    .op(...l.mul, ...l.mul)
    .get(x)
    .op(...l.add);
  l.constant(f, 1);
  f.op(...l.add);
  // times 2^n, built from the exponent bits: n + 1.5 2^23 + 127 is an exact integer whose float bits
  // end in n + 127 (the higher bits all shift out), so bits << 23 is the float 2^n.
  f.get(n);
  l.constant(f, 12582912 + 127);
  f.op(...l.add, ...l.bits)
    .i32(23)
    .op(...l.shl);
  if (l.width === 1) f.op(0xbe); // f32.reinterpret_i32 (a v128 needs none)
  f.op(...l.mul);
}

/** Common parameters and locals of both kernels; `pair` loop over p0 .. p0 + pairs - 1 with row, head, pointers. */
function pairs(f: Fn, body: () => void): void {
  for (const n of [
    'p',
    'row',
    'head',
    'dh',
    'd3',
    'i',
    'j',
    'c',
    'src',
    'dst',
    'pp',
    'pr',
    'vecBytes',
    'tt',
    'i0',
    'i1',
    'tp',
    'sr',
  ])
    f.local(n, I32);
  for (const n of ['scale', 'm', 'sum', 'ex', 'en', 'x']) f.local(n, F32);
  for (const n of ['vex', 'ven', 'vm', 'vsum', 've']) f.local(n, V128);
  f.get('d').get('heads').op(I32_DIV_U).set('dh');
  f.get('d').i32(3).mul().set('d3');
  f.get('dh').i32(4).mul().set('vecBytes');
  f.get('t').get('t').mul().i32(4).mul().set('tt');
  f.get('t').i32(3).add().i32(-4).op(0x71).set('tp'); // t rounded up to a multiple of 4
  f.f32(1).get('dh').op(0xb2).op(0x91).op(F32_DIV).set('scale'); // 1 / sqrt(f32(dh))
  f.get('p0').set('p');
  f.whileLoop(
    (g) => g.get('p').get('p0').get('pairs').add().op(I32_LT_S),
    (g) => {
      g.get('p').get('heads').op(I32_DIV_U).set('row');
      g.get('p').get('heads').op(I32_REM_U).set('head');
      g.get('probs').get('p').get('tt').mul().add().set('pp');
      body();
      g.bump('p', 1);
    },
  );
}

/**
 * For i < t: copies d_h floats between the row-major [t, d_h] scratch `local` at `scratch` and the row
 * (row * t + i) of a [B*T, width] matrix at `matrix`, columns from `column` (+ head * d_h), multiplied by
 * `scale` when given; `toScratch` picks the direction.
 */
function copyRows(
  f: Fn,
  matrix: string,
  width: (g: Fn) => void,
  column: (g: Fn) => void,
  scratch: (g: Fn) => void,
  toScratch: boolean,
  scaled = false,
): void {
  f.i32(0).set('i');
  f.whileLoop(
    (g) => g.get('i').get('t').op(I32_LT_S),
    (g) => {
      // src = matrix + ((row t + i) width + column + head d_h) 4;  dst = scratch + i d_h 4
      g.get(matrix).get('row').get('t').mul().get('i').add();
      width(g);
      g.mul();
      column(g);
      g.add().get('head').get('dh').mul().add().i32(4).mul().add().set('src');
      scratch(g);
      g.get('i').get('vecBytes').mul().add().set('dst');
      g.i32(0).set('c');
      g.whileLoop(
        (h) => h.get('c').get('vecBytes').op(I32_LT_S),
        (h) => {
          const [from, to] = toScratch ? ['src', 'dst'] : ['dst', 'src'];
          h.get(to).get('c').add();
          h.get(from).get('c').add().v128Load();
          if (scaled)
            h.get('scale')
              .op(...F32X4_SPLAT)
              .op(...F32X4_MUL);
          h.v128Store();
          h.bump('c', 16);
        },
      );
      g.bump('i', 1);
    },
  );
}

type Push = (g: Fn) => void;
const local =
  (name: string): Push =>
  (g) =>
    g.get(name);
const [T, DH] = [local('t'), local('dh')];
const ZERO: Push = (g) => g.i32(0);

/** Calls product `index` with the arguments the emitters push, in order. */
function product(f: Fn, index: number, ...args: Push[]): void {
  for (const push of args) push(f);
  f.call(index);
}

/** base + row * stride floats (byte address). */
const at =
  (base: Push, row: Push, stride: Push): Push =>
  (g) => {
    base(g);
    row(g);
    stride(g);
    g.mul().i32(4).mul().add();
  };
const [I0, I1] = [local('i0'), local('i1')];
const ONE: Push = (g) => g.i32(1);
/** Rows in the block (i1 - i0), and rows from the block's first to the last of the sequence (t - i0). */
const BLOCK_ROWS: Push = (g) => g.get('i1').get('i0').op(I32_SUB);
const ROWS_FROM_BLOCK: Push = (g) => g.get('t').get('i0').op(I32_SUB);

/** Rows per causal block: each block's products stop at its last row's keys (about half of t^2 work). */
const CAUSAL_BLOCK = 16;

/**
 * for (i0 = 0; i0 < t; i0 += CAUSAL_BLOCK) body with i1 = min(i0 + CAUSAL_BLOCK, t). Query row i only sees
 * keys j <= i, so the products of a block of rows need keys up to i1 only, and the gradients of keys from
 * i0 only: the entries they skip are zeros (or masked), and leaving exact zeros out of a sum changes no
 * bit, so blocked and whole products give the same numbers.
 */
function causalBlocks(f: Fn, body: () => void): void {
  f.i32(0).set('i0');
  f.whileLoop(
    (g) => g.get('i0').get('t').op(I32_LT_S),
    (g) => {
      g.get('i0').i32(CAUSAL_BLOCK).add().get('t');
      g.get('i0').i32(CAUSAL_BLOCK).add().get('t').op(I32_LT_S);
      g.op(0x1b).set('i1'); // select: min(i0 + block, t)
      body();
      g.get('i1').set('i0');
    },
  );
}

/** for (i = i0; i < i1; i++) body, with sr = the block buffer's row i - i0 (row stride tp). */
function rowsOfBlock(f: Fn, body: (g: Fn) => void): void {
  f.get('i0').set('i');
  f.whileLoop(
    (g) => g.get('i').get('i1').op(I32_LT_S),
    (g) => {
      BLOCK(g);
      g.get('i').get('i0').op(I32_SUB).get('tp').mul().i32(4).mul().add().set('sr');
      body(g);
      g.bump('i', 1);
    },
  );
}

/** sum = (((vsum_0 + vsum_1) + vsum_2) + vsum_3) + sum. */
function reduceSum(f: Fn): void {
  f.get('vsum').op(...extractLane(0));
  for (let lane = 1; lane < 4; lane++) f.get('vsum').op(...extractLane(lane), F32_ADD);
  f.get('sum').op(F32_ADD).set('sum');
}

/**
 * out[i0..i1] = m[i0.., i0..i1]^T x[i0..] with `mmTN` (m [t, t] row stride t; x, out [t, d_h]): the keys of
 * rows i0..i1 take the queries from i0 on, the earlier ones being zeros of the causal m.
 */
function keysFromBlock(f: Fn, mmTN: number, m: Push, x: Push, out: Push): void {
  product(
    f,
    mmTN,
    at(at(m, I0, T), I0, ONE),
    BLOCK_ROWS,
    at(x, I0, DH),
    DH,
    ROWS_FROM_BLOCK,
    at(out, I0, DH),
    T,
    DH,
    DH,
  );
}

/** Head h's queries (scaled by 1/sqrt(d_h)), keys and values of sequence `row` into the scratch slots. */
function gatherQkv(f: Fn, q: Push, k: Push, v: Push): void {
  const width = local('d3');
  copyRows(f, 'qkv', width, ZERO, q, true, true);
  copyRows(f, 'qkv', width, local('d'), k, true);
  copyRows(f, 'qkv', width, (g) => g.get('d').i32(2).mul(), v, true);
}

/** Scratch buffer n (each t * d_h floats) of the pair's scratch. */
const slot = (n: number) => (g: Fn) => g.get('scratch').get('t').get('vecBytes').mul().i32(n).mul().add();
/** After the 7 slots and dS [t, t]: a transposed [d_h, tp] K or V, then the block buffer [CAUSAL_BLOCK, tp]. */
const TRANSPOSED: Push = (g) => {
  slot(7)(g);
  g.get('tt').add();
};
const BLOCK: Push = (g) => {
  TRANSPOSED(g);
  g.get('dh').get('tp').mul().i32(4).mul().add();
};
const TP = local('tp');
/** i1 rounded up to a multiple of 4 (the NN product's columns come in fours). */
const I1_IN_FOURS: Push = (g) => g.get('i1').i32(3).add().i32(-4).op(0x71);

/**
 * The [t, d_h] keys (or values) at `src` transposed into [d_h, tp] at TRANSPOSED (transposeInto, module
 * function `index`), the columns t..tp-1 zeros: for the products that take K^T (V^T).
 */
function transposeKeys(f: Fn, index: number, src: Push): void {
  product(f, index, src, T, DH, TRANSPOSED, TP);
  f.i32(0).set('c');
  f.whileLoop(
    (g) => g.get('c').get('dh').op(I32_LT_S),
    (g) => {
      g.get('t').set('i');
      g.whileLoop(
        (h) => h.get('i').get('tp').op(I32_LT_S),
        (h) => {
          TRANSPOSED(h);
          h.get('c').get('tp').mul().get('i').add().i32(4).mul().add().f32(0).f32Store();
          h.bump('i', 1);
        },
      );
      g.bump('c', 1);
    },
  );
}

/**
 * attnFwd(qkv, out, probs, scratch, p0, pairs, t, heads, d): pairs p0..p0+pairs-1 (p = b * heads + h). Scratch:
 * `attentionScratchFloats` (q', K, V, O, then K^T and the block buffer after the backward's slots).
 */
export function attentionForwardFn(products: ProductIndices): Fn {
  const f = new Fn('attnFwd', ['qkv', 'out', 'probs', 'scratch', 'p0', 'pairs', 't', 'heads', 'd']);
  const [q, k, v, o] = [slot(0), slot(1), slot(2), slot(3)];
  pairs(f, () => {
    gatherQkv(f, q, k, v);
    transposeKeys(f, products.transposeInto, k);
    // Per block of rows: S = q' K^T with keys up to its last row (rounded up to four: K^T's padding
    // columns are zeros) into the block buffer, then the causal softmax of each row into P.
    causalBlocks(f, () => {
      product(f, products.mmNN, at(q, I0, DH), BLOCK_ROWS, TRANSPOSED, I1_IN_FOURS, DH, BLOCK, DH, TP, TP);
      rowsOfBlock(f, (g) => {
        g.get('pp').get('i').get('t').mul().i32(4).mul().add().set('pr');
        // m = max of the row's scores (in fours into vm, then its lanes: max is exact in any order)
        g.f32(Number.NEGATIVE_INFINITY).set('m');
        g.f32(Number.NEGATIVE_INFINITY)
          .op(...F32X4_SPLAT)
          .set('vm');
        forKeysInFours(g, (h, l) => {
          const acc = l.width === 1 ? 'm' : 'vm';
          h.get(acc).get('sr').get('j').i32(4).mul().add();
          l.load(h);
          h.op(...l.max).set(acc);
        });
        for (let lane = 0; lane < 4; lane++)
          g.get('m')
            .get('vm')
            .op(...extractLane(lane), F32_MAX)
            .set('m');
        // P = exp(S - m) in fours, summed while stored: four lanes, then the lanes in order, plus the
        // last few keys one at a time; then scaled by 1 / sum in fours.
        g.f32(0)
          .op(...F32X4_SPLAT)
          .set('vsum');
        g.f32(0).set('sum');
        forKeysInFours(g, (h, l) => {
          const [e, acc] = l.width === 1 ? ['x', 'sum'] : ['ve', 'vsum'];
          h.get('pr').get('j').i32(4).mul().add(); // the store's address
          h.get('sr').get('j').i32(4).mul().add();
          l.load(h);
          l.local(h, 'm');
          h.op(...l.sub);
          emitExp(h, l);
          h.set(e).get(e);
          l.store(h);
          h.get(acc)
            .get(e)
            .op(...l.add)
            .set(acc);
        });
        reduceSum(g);
        g.f32(1).get('sum').op(F32_DIV).set('sum');
        forKeysInFours(g, (h, l) => {
          h.get('pr').get('j').i32(4).mul().add();
          h.get('pr').get('j').i32(4).mul().add();
          l.load(h);
          l.local(h, 'sum');
          h.op(...l.mul);
          l.store(h);
        });
        zeroAbove(g);
      });
    });
    // O = P V, scattered into the merged heads.
    const pp = local('pp');
    causalBlocks(f, () =>
      product(f, products.mmNN, at(pp, I0, T), BLOCK_ROWS, v, DH, I1, at(o, I0, DH), T, DH, DH),
    );
    copyRows(
      f,
      'out',
      (g) => g.get('d'),
      (g) => g.i32(0),
      o,
      false,
    );
  });
  return f;
}

/** for (j = 0; j <= i; ) body: four keys at a time (vector lanes) while four remain, then one at a time. */
function forKeysInFours(f: Fn, body: (g: Fn, l: Lanes) => void): void {
  f.i32(0).set('j');
  f.whileLoop(
    (g) => g.get('j').i32(3).add().get('i').op(I32_LE_S),
    (g) => {
      body(g, VECTOR);
      g.bump('j', 4);
    },
  );
  f.whileLoop(
    (g) => g.get('j').get('i').op(I32_LE_S),
    (g) => {
      body(g, SCALAR);
      g.bump('j', 1);
    },
  );
}

/** Row `pr`'s entries i+1..t-1 (the future keys) set to 0. */
function zeroAbove(f: Fn): void {
  f.get('i').i32(1).add().set('j');
  const zeros = (g: Fn, l: Lanes, more: (h: Fn) => void) =>
    g.whileLoop(more, (h) => {
      h.get('pr').get('j').i32(4).mul().add();
      l.constant(h, 0);
      l.store(h);
      h.bump('j', l.width);
    });
  // One at a time up to a multiple of four, then fours, then the rest.
  zeros(f, SCALAR, (g) => g.get('j').i32(3).op(0x71).i32(0).op(0x47).get('j').get('t').op(I32_LT_S).op(0x71));
  zeros(f, VECTOR, (g) => g.get('j').i32(3).add().get('t').op(I32_LT_S));
  zeros(f, SCALAR, (g) => g.get('j').get('t').op(I32_LT_S));
}

/**
 * attnBwd(qkv, dy, grad, probs, scratch, p0, pairs, t, heads, d): the gradient with respect to qkv of pairs
 * p0..p0+pairs-1 into grad [B*T, 3d], given dy [B*T, d]. Scratch: `attentionScratchFloats` (q', K, V, dO, dQ,
 * dK, dV, dS [t, t], V^T [d_h, tp], the block buffer [CAUSAL_BLOCK, tp]; tp = t rounded up to four).
 */
export function attentionBackwardFn(products: ProductIndices): Fn {
  const f = new Fn('attnBwd', ['qkv', 'dy', 'grad', 'probs', 'scratch', 'p0', 'pairs', 't', 'heads', 'd']);
  const [q, k, v, dO, dq, dk, dv, ds] = [
    slot(0),
    slot(1),
    slot(2),
    slot(3),
    slot(4),
    slot(5),
    slot(6),
    slot(7),
  ];
  pairs(f, () => {
    gatherQkv(f, q, k, v);
    copyRows(f, 'dy', local('d'), ZERO, dO, true);
    const pp = local('pp');
    // dV = P^T dO: key rows i0..i1 take queries from i0 on.
    causalBlocks(f, () => keysFromBlock(f, products.mmTN, pp, dO, dv));
    // Per block of rows: dP = dO V^T (keys up to its last row, in fours) into the block buffer, then
    // dS = P . (dP - rowsum(P . dP)) row by row into dS's place.
    transposeKeys(f, products.transposeInto, v);
    causalBlocks(f, () => {
      product(f, products.mmNN, at(dO, I0, DH), BLOCK_ROWS, TRANSPOSED, I1_IN_FOURS, DH, BLOCK, DH, TP, TP);
      rowsOfBlock(f, (g) => {
        ds(g);
        g.get('i').get('t').mul().i32(4).mul().add().set('pr');
        g.get('pp').get('i').get('t').mul().i32(4).mul().add().set('src'); // P's row
        // rowsum(P . dP): four lanes, then the lanes in order, plus the last few keys one at a time.
        g.f32(0)
          .op(...F32X4_SPLAT)
          .set('vsum');
        g.f32(0).set('sum');
        forKeysInFours(g, (h, l) => {
          const acc = l.width === 1 ? 'sum' : 'vsum';
          h.get(acc);
          h.get('src').get('j').i32(4).mul().add();
          l.load(h);
          h.get('sr').get('j').i32(4).mul().add();
          l.load(h);
          h.op(...l.mul, ...l.add).set(acc);
        });
        reduceSum(g);
        forKeysInFours(g, (h, l) => {
          h.get('pr').get('j').i32(4).mul().add(); // the store's address
          h.get('src').get('j').i32(4).mul().add();
          l.load(h);
          h.get('sr').get('j').i32(4).mul().add();
          l.load(h);
          l.local(h, 'sum');
          h.op(...l.sub, ...l.mul);
          l.store(h);
        });
        zeroAbove(g);
      });
    });
    // dQ' = dS K (scaled on the way out: dQ = dQ' / sqrt(d_h)); dK = dS^T q'
    causalBlocks(f, () =>
      product(f, products.mmNN, at(ds, I0, T), BLOCK_ROWS, k, DH, I1, at(dq, I0, DH), T, DH, DH),
    );
    causalBlocks(f, () => keysFromBlock(f, products.mmTN, ds, q, dk));
    copyRows(f, 'grad', local('d3'), ZERO, dq, false, true);
    copyRows(f, 'grad', local('d3'), local('d'), dk, false);
    copyRows(f, 'grad', local('d3'), (g) => g.get('d').i32(2).mul(), dv, false);
  });
  return f;
}

/** Scratch floats one thread needs for sequences of t tokens and head size dh (a multiple of 4). */
export function attentionScratchFloats(t: number, dh: number): number {
  const tp = Math.ceil(t / 4) * 4;
  return Math.ceil((7 * t * dh + t * t + dh * tp + CAUSAL_BLOCK * tp) / 4) * 4;
}
