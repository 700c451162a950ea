/**
 * The log-softmax of the LLM's tied output head as WebAssembly kernels (host-trunk.ts computes the logits
 * z = h E^T with the products), row by row over [rows, V] float32, four classes at a time:
 *   logSoftmaxFwd(z, rows, v, targets, out): z <- log pi = z - m - log(sum_v exp(z_v - m)) (m = max_v z_v)
 *     in place; out[2r] = log pi(target_r), out[2r + 1] = H_r = -sum_v pi_v log pi_v
 *   logSoftmaxBwd(logPi, rows, v, targets, out, dOut, dz): from dL/d log pi(target) = dOut[2r] and
 *     dL/dH = dOut[2r + 1]: dz_v = dOut[2r] (1[v = target] - pi_v) - dOut[2r + 1] pi_v (log pi_v + H_r)
 * exp is the attention's (Cephes' expf), log Cephes' logf; sums run over fixed lanes, then the lanes in
 * order, then the tail: deterministic. targets: int32 [rows].
 */

import { F32, F32X4_SPLAT, Fn, I32, I32_LT_S, V128 } from './wasm-asm.ts';
import { emitExp, type Lanes, SCALAR, VECTOR } from './wasm-attention.ts';

const [F32_ADD, F32_SUB, F32_MUL, F32_MAX, F32_LT, F32_CONVERT_I32] = [0x92, 0x93, 0x94, 0x97, 0x5d, 0xb2];
const [I32_AND, I32_OR, I32_SHR_U, I32_SUB] = [0x71, 0x72, 0x76, 0x6b];
const extract = (lane: number) => [0xfd, 0x1f, lane];

/** Expects x > 0 (a normal float) on the stack; leaves log(x) (Cephes' logf). Locals lx, le, lz, lb. */
function emitLog(f: Fn): void {
  // x = m 2^e with m in [0.5, 1): the exponent and mantissa bits.
  f.op(0xbc).set('lb'); // i32.reinterpret_f32
  f.get('lb').i32(23).op(I32_SHR_U).i32(0xff).op(I32_AND).i32(126).op(I32_SUB).op(F32_CONVERT_I32).set('le');
  f.get('lb')
    .i32(0x807fffff | 0)
    .op(I32_AND)
    .i32(0x3f000000)
    .op(I32_OR)
    .op(0xbe)
    .set('lx');
  // m < sqrt(1/2): e -= 1, x = 2m - 1; else x = m - 1
  f.get('lx').f32(Math.SQRT1_2).op(F32_LT);
  f.op(0x04, F32); // if, with an f32 result
  f.get('le').f32(1).op(F32_SUB).set('le');
  f.get('lx').get('lx').op(F32_ADD).f32(1).op(F32_SUB);
  f.op(0x05);
  f.get('lx').f32(1).op(F32_SUB);
  f.op(0x0b).set('lx');
  f.get('lx').get('lx').op(F32_MUL).set('lz');
  const c = [
    7.0376836292e-2, -1.151461031e-1, 1.167699874e-1, -1.2420140846e-1, 1.4249322787e-1, -1.6668057665e-1,
    2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1,
  ];
  f.f32(c[0]);
  for (let i = 1; i < c.length; i++) f.get('lx').op(F32_MUL).f32(c[i]).op(F32_ADD);
  f.get('lx').op(F32_MUL).get('lz').op(F32_MUL); // y
  f.get('le').f32(-2.1219444e-4).op(F32_MUL).op(F32_ADD);
  f.get('lz').f32(-0.5).op(F32_MUL).op(F32_ADD);
  f.get('lx').op(F32_ADD); // x + y
  f.get('le').f32(0.693359375).op(F32_MUL).op(F32_ADD);
}

/** for (j = 0; j < v; ) body: four classes at a time while four remain, then one at a time (pointer p). */
function classes(f: Fn, body: (l: Lanes) => void): void {
  f.i32(0).set('j');
  for (const l of [VECTOR, SCALAR]) {
    f.whileLoop(
      (g) =>
        g
          .get('j')
          .i32(l.width - 1)
          .add()
          .get('v')
          .op(I32_LT_S),
      (g) => {
        g.get('row').get('j').i32(4).mul().add().set('p');
        body(l);
        g.bump('j', l.width);
      },
    );
  }
}

/** Pushes the sum of a vector accumulator's lanes, in order, plus the scalar tail's sum. */
function reduce(f: Fn, lanes: string, tail: string): void {
  f.get(lanes).op(...extract(0));
  for (let i = 1; i < 4; i++) f.get(lanes).op(...extract(i), F32_ADD);
  f.get(tail).op(F32_ADD);
}

function locals(f: Fn): void {
  for (const n of ['r', 'j', 'row', 'p', 'lb']) f.local(n, I32);
  for (const n of ['m', 's', 'lse', 'h', 'ex', 'en', 'lx', 'le', 'lz', 'dl', 'dh']) f.local(n, F32);
  for (const n of ['vm', 'vs', 'vex', 'ven', 'vl']) f.local(n, V128);
}

/** for r < rows with row = z + r v 4: body. */
function rows(f: Fn, z: string, body: () => void): void {
  f.i32(0).set('r');
  f.whileLoop(
    (g) => g.get('r').get('rows').op(I32_LT_S),
    (g) => {
      g.get(z).get('r').get('v').mul().i32(4).mul().add().set('row');
      body();
      g.bump('r', 1);
    },
  );
}

/** Pushes out + r 8 + 4 k (the row's k-th output float). */
const outAt = (f: Fn, k: number) =>
  f
    .get('out')
    .get('r')
    .i32(8)
    .mul()
    .add()
    .i32(4 * k)
    .add();
/** Pushes the address of the row's target class. */
const targetAt = (f: Fn) =>
  f.get('row').get('targets').get('r').i32(4).mul().add().op(0x28, 2, 0).i32(4).mul().add(); // i32.load

export function logSoftmaxForwardFn(): Fn {
  const f = new Fn('logSoftmaxFwd', ['z', 'rows', 'v', 'targets', 'out']);
  locals(f);
  rows(f, 'z', () => {
    // m: the row's maximum (exact in any order)
    f.f32(Number.NEGATIVE_INFINITY).set('m');
    f.get('m')
      .op(...F32X4_SPLAT)
      .set('vm');
    classes(f, (l) => {
      const acc = l.width === 1 ? 'm' : 'vm';
      f.get(acc).get('p');
      l.load(f);
      f.op(...l.max).set(acc);
    });
    for (let i = 0; i < 4; i++)
      f.get('m')
        .get('vm')
        .op(...extract(i), F32_MAX)
        .set('m');
    // lse = m + log(sum exp(z - m))
    f.f32(0).set('s');
    f.f32(0)
      .op(...F32X4_SPLAT)
      .set('vs');
    classes(f, (l) => {
      const acc = l.width === 1 ? 's' : 'vs';
      f.get(acc).get('p');
      l.load(f);
      l.local(f, 'm');
      f.op(...l.sub);
      emitExp(f, l);
      f.op(...l.add).set(acc);
    });
    reduce(f, 'vs', 's');
    emitLog(f);
    f.get('m').op(F32_ADD).set('lse');
    // log pi = z - lse in place; H = -sum pi log pi
    f.f32(0).set('h');
    f.f32(0)
      .op(...F32X4_SPLAT)
      .set('vs');
    classes(f, (l) => {
      const [acc, value] = l.width === 1 ? ['h', 'lx'] : ['vs', 'vl'];
      f.get('p').get('p');
      l.load(f);
      l.local(f, 'lse');
      f.op(...l.sub).set(value);
      f.get(value);
      l.store(f);
      f.get(acc).get(value);
      emitExp(f, l);
      f.get(value)
        .op(...l.mul, ...l.add)
        .set(acc);
    });
    outAt(f, 0);
    targetAt(f).f32Load().f32Store();
    outAt(f, 1).f32(0);
    reduce(f, 'vs', 'h');
    f.op(F32_SUB).f32Store();
  });
  return f;
}

export function logSoftmaxBackwardFn(): Fn {
  const f = new Fn('logSoftmaxBwd', ['logPi', 'rows', 'v', 'targets', 'out', 'dOut', 'dz']);
  locals(f);
  f.local('drow', I32);
  rows(f, 'logPi', () => {
    f.get('dOut').get('r').i32(8).mul().add().f32Load().set('dl');
    f.get('dOut').get('r').i32(8).mul().add().i32(4).add().f32Load().set('dh');
    outAt(f, 1).f32Load().set('h');
    f.get('dz').get('r').get('v').mul().i32(4).mul().add().set('drow');
    // dz = -dl pi - dh pi (log pi + H), then + dl at the target
    classes(f, (l) => {
      const value = l.width === 1 ? 'lx' : 'vl';
      f.get('drow').get('j').i32(4).mul().add(); // the store's address
      f.get('p');
      l.load(f);
      f.set(value).get(value);
      emitExp(f, l); // pi
      f.set(l.width === 1 ? 'le' : 'vm');
      const pi = l.width === 1 ? 'le' : 'vm';
      l.constant(f, 0);
      l.local(f, 'dl');
      f.get(pi).op(...l.mul, ...l.sub); // -dl pi
      l.local(f, 'dh');
      f.get(pi).op(...l.mul);
      f.get(value);
      l.local(f, 'h');
      f.op(...l.add, ...l.mul, ...l.sub);
      l.store(f);
    });
    // dz[target] += dl
    f.get('drow').get('targets').get('r').i32(4).mul().add().op(0x28, 2, 0).i32(4).mul().add().set('p');
    f.get('p').get('p').f32Load().get('dl').op(F32_ADD).f32Store();
  });
  return f;
}
