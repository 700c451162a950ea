/**
 * Causal multi-head self-attention as WebAssembly kernels over (sequence, head) pairs, forward and
 * backward, for the host trunk (nodes/agent/llm/host-trunk.ts): gathers, the products (calls into the
 * module's mm / mmNN / mmTN), the causal softmax and its gradient, scatters. Whole pairs in one call, so
 * the kernel helper can run half of the pairs on its thread. For pair (b, h), with q' = Q / sqrt(d_h)
 * (Vaswani et al. 2017):
 *   S = q' K^T (keys j <= query i),  P = softmax(S),  O = P V
 *   dV = P^T dO,  dP = dO V^T,  dS = P . (dP - rowsum(P . dP)),  dQ = dS K / sqrt(d_h),  dK = dS^T q'
 * Layouts: qkv [B*T, 3d] (head h's queries at columns h*d_h.., keys at d + h*d_h.., values at 2d + ..),
 * outputs [B*T, d], probabilities [B*heads, T, T] (kept by the forward pass for the backward pass).
 * exp is Cephes' expf (range reduction by ln 2, degree-6 polynomial, within ~2 ulp of float32 exp).
 */
import { F32, F32X4_MUL, F32X4_SPLAT, Fn, I32, I32_LT_S } from './wasm-asm.ts';

/** The module's indices of the products the attention calls. */
export interface ProductIndices {
  mm: number;
  mmNN: number;
  mmTN: number;
}

const [F32_ADD, F32_SUB, F32_MUL, F32_DIV, F32_MAX] = [0x92, 0x93, 0x94, 0x95, 0x97];
const [I32_DIV_U, I32_REM_U, I32_SHL, I32_LE_S] = [0x6e, 0x70, 0x74, 0x4c];

/** Expects x (<= 0 here: scores minus their row maximum) on the stack; leaves exp(x). Locals ex, en. */
function emitExp(f: Fn): void {
  f.f32(-87.33654).op(F32_MAX).set('ex');
  // n = round(x log2 e); x -= n ln 2 (in two parts, exactly representable high part first)
  f.get('ex').f32(Math.LOG2E).op(F32_MUL).op(0x90).set('en'); // f32.nearest
  f.get('ex').get('en').f32(0.693359375).op(F32_MUL).op(F32_SUB);
  f.get('en').f32(-2.1219444e-4).op(F32_MUL).op(F32_SUB).set('ex');
  // p(x) = ((((c5 x + c4) x + c3) x + c2) x + c1) x + c0, then p x^2 + x + 1
  const c = [
    5.0000001201e-1, 1.6666665459e-1, 4.1665795894e-2, 8.3334519073e-3, 1.3981999507e-3, 1.98756915e-4,
  ];
  f.f32(c[5]);
  for (let i = 4; i >= 0; i--) f.get('ex').op(F32_MUL).f32(c[i]).op(F32_ADD);
  f.get('ex').get('ex').op(F32_MUL).op(F32_MUL).get('ex').op(F32_ADD).f32(1).op(F32_ADD);
  // times 2^n, built from the exponent bits
  f.get('en').op(0xa8).i32(127).add().i32(23).op(I32_SHL).op(0xbe).op(F32_MUL);
}

/** Common parameters and locals of both kernels; `pair` loop over [p0, p1) with row, head, pointers. */
function pairs(f: Fn, body: () => void): void {
  for (const n of ['p', 'row', 'head', 'dh', 'd3', 'i', 'j', 'c', 'src', 'dst', 'pp', 'pr', 'vecBytes', 'tt'])
    f.local(n, I32);
  for (const n of ['scale', 'm', 'sum', 'ex', 'en', 'x']) f.local(n, F32);
  f.get('d').get('heads').op(I32_DIV_U).set('dh');
  f.get('d').i32(3).mul().set('d3');
  f.get('dh').i32(4).mul().set('vecBytes');
  f.get('t').get('t').mul().i32(4).mul().set('tt');
  f.f32(1).get('dh').op(0xb2).op(0x91).op(F32_DIV).set('scale'); // 1 / sqrt(f32(dh))
  f.get('p0').set('p');
  f.whileLoop(
    (g) => g.get('p').get('p1').op(I32_LT_S),
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

/** Head h's queries (scaled by 1/sqrt(d_h)), keys and values of sequence `row` into the scratch slots. */
function gatherQkv(f: Fn, q: Push, k: Push, v: Push): void {
  const width = local('d3');
  copyRows(f, 'qkv', width, ZERO, q, true, true);
  copyRows(f, 'qkv', width, local('d'), k, true);
  copyRows(f, 'qkv', width, (g) => g.get('d').i32(2).mul(), v, true);
}

/** Scratch buffer n (each t * d_h floats) of the pair's scratch. */
const slot = (n: number) => (g: Fn) => g.get('scratch').get('t').get('vecBytes').mul().i32(n).mul().add();

/**
 * attnFwd(qkv, out, probs, scratch, p0, p1, t, heads, d): pairs p0..p1-1 (p = b * heads + h). Scratch:
 * 4 t d_h floats (q', K, V, O).
 */
export function attentionForwardFn(products: ProductIndices): Fn {
  const f = new Fn('attnFwd', ['qkv', 'out', 'probs', 'scratch', 'p0', 'p1', 't', 'heads', 'd']);
  const [q, k, v, o] = [slot(0), slot(1), slot(2), slot(3)];
  pairs(f, () => {
    gatherQkv(f, q, k, v);
    // S = q' K^T into the pair's probabilities, then the causal softmax row by row.
    product(f, products.mm, q, T, k, T, DH, local('pp'));
    f.i32(0).set('i');
    f.whileLoop(
      (g) => g.get('i').get('t').op(I32_LT_S),
      (g) => {
        g.get('pp').get('i').get('t').mul().i32(4).mul().add().set('pr');
        g.f32(Number.NEGATIVE_INFINITY).set('m');
        forKeys(g, (h) => h.get('m').get('pr').get('j').i32(4).mul().add().f32Load().op(F32_MAX).set('m'));
        g.f32(0).set('sum');
        forKeys(g, (h) => {
          h.get('pr').get('j').i32(4).mul().add(); // the store's address
          h.get('pr').get('j').i32(4).mul().add().f32Load().get('m').op(F32_SUB);
          emitExp(h);
          h.set('x').get('x').f32Store();
          h.get('sum').get('x').op(F32_ADD).set('sum');
        });
        g.f32(1).get('sum').op(F32_DIV).set('sum');
        forKeys(g, (h) => {
          h.get('pr').get('j').i32(4).mul().add();
          h.get('pr').get('j').i32(4).mul().add().f32Load().get('sum').op(F32_MUL).f32Store();
        });
        zeroAbove(g);
        g.bump('i', 1);
      },
    );
    // O = P V, scattered into the merged heads.
    product(f, products.mmNN, local('pp'), T, v, DH, T, o);
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

/** for (j = 0; j <= i; j++) body (row pointer `pr`). */
function forKeys(f: Fn, body: (g: Fn) => void): void {
  f.i32(0).set('j');
  f.whileLoop(
    (g) => g.get('j').get('i').op(I32_LE_S),
    (g) => {
      body(g);
      g.bump('j', 1);
    },
  );
}

/** Row `pr`'s entries i+1..t-1 (the future keys) set to 0. */
function zeroAbove(f: Fn): void {
  f.get('i').i32(1).add().set('j');
  f.whileLoop(
    (g) => g.get('j').get('t').op(I32_LT_S),
    (g) => {
      g.get('pr').get('j').i32(4).mul().add().f32(0).f32Store();
      g.bump('j', 1);
    },
  );
}

/**
 * attnBwd(qkv, dy, grad, probs, scratch, p0, p1, t, heads, d): the gradient with respect to qkv of pairs
 * p0..p1-1 into grad [B*T, 3d], given dy [B*T, d]. Scratch: 7 t d_h + t^2 floats (q', K, V, dO, dQ, dK,
 * dV, dS).
 */
export function attentionBackwardFn(products: ProductIndices): Fn {
  const f = new Fn('attnBwd', ['qkv', 'dy', 'grad', 'probs', 'scratch', 'p0', 'p1', 't', 'heads', 'd']);
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
    // dV = P^T dO
    product(f, products.mmTN, local('pp'), T, dO, DH, T, dv, T);
    // dP = dO V^T into dS's place, then dS = P . (dP - rowsum(P . dP)) row by row.
    product(f, products.mm, dO, T, v, T, DH, ds);
    f.i32(0).set('i');
    f.whileLoop(
      (g) => g.get('i').get('t').op(I32_LT_S),
      (g) => {
        ds(g);
        g.get('i').get('t').mul().i32(4).mul().add().set('pr');
        g.get('pp').get('i').get('t').mul().i32(4).mul().add().set('src'); // P's row
        g.f32(0).set('sum');
        forKeys(g, (h) => {
          h.get('sum');
          h.get('src').get('j').i32(4).mul().add().f32Load();
          h.get('pr').get('j').i32(4).mul().add().f32Load();
          h.op(F32_MUL, F32_ADD).set('sum');
        });
        forKeys(g, (h) => {
          h.get('pr').get('j').i32(4).mul().add(); // the store's address
          h.get('src').get('j').i32(4).mul().add().f32Load();
          h.get('pr').get('j').i32(4).mul().add().f32Load().get('sum').op(F32_SUB);
          h.op(F32_MUL).f32Store();
        });
        zeroAbove(g);
        g.bump('i', 1);
      },
    );
    // dQ' = dS K (scaled on the way out: dQ = dQ' / sqrt(d_h)); dK = dS^T q'
    product(f, products.mmNN, ds, T, k, DH, T, dq);
    product(f, products.mmTN, ds, T, q, DH, T, dk, T);
    copyRows(f, 'grad', local('d3'), ZERO, dq, false, true);
    copyRows(f, 'grad', local('d3'), local('d'), dk, false);
    copyRows(f, 'grad', local('d3'), (g) => g.get('d').i32(2).mul(), dv, false);
  });
  return f;
}

/** Scratch floats one thread needs for sequences of t tokens and head size dh (a multiple of 4). */
export function attentionScratchFloats(t: number, dh: number): number {
  return Math.ceil((7 * t * dh + t * t) / 4) * 4;
}
