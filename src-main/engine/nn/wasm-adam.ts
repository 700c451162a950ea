/**
 * Adam's update and the gradient's squared norm as WebAssembly kernels (adam.ts), in float64 like the
 * JavaScript they replace, with float32 loads and stores at the same places, so they give the same bits.
 * Two elements at a time in f64x2 lanes (the same IEEE operations lane by lane), the rest one at a time.
 *
 * adam(p, g, m, v, n, constants): for k < n, with the float64 constants [scale, beta1, 1 - beta1, beta2,
 * 1 - beta2, stepSize, correction2, epsilon] at `constants`:
 *   gk = g[k] scale;  m[k] = beta1 m[k] + (1 - beta1) gk;  v[k] = beta2 v[k] + (1 - beta2) gk gk
 *   p[k] -= stepSize m[k] / (sqrt(v[k]) / correction2 + epsilon)
 * sumSquares(g, n, acc): the float64 at acc += the sum of g[k]^2 for k < n, taken in four chains (k mod
 * 4: a running sum in order is one add's latency per element, ~1 ms per million) added as
 * ((s0 + s1) + s2) + s3, then the last n mod 4 in order.
 */
import { F64, Fn, I32, I32_LT_S, V128 } from './wasm-asm.ts';

/** The float64 constants' order at `constants`. */
export const ADAM_CONSTANTS = [
  'scale',
  'beta1',
  'oneMinusBeta1',
  'beta2',
  'oneMinusBeta2',
  'stepSize',
  'correction2',
  'epsilon',
] as const;

interface Lanes {
  /** Loads `width` float32s at the address on the stack, as float64s. */
  load: (f: Fn) => void;
  /** Stores the float64s on the stack as float32s (address below them). */
  store: (f: Fn) => void;
  add: number[];
  sub: number[];
  mul: number[];
  div: number[];
  sqrt: number[];
  /** The local holding constant `name` in this lane shape. */
  constant: (name: string) => string;
  /** Locals: gk, m, v. */
  temp: (name: string) => string;
  width: number;
}

const SCALAR: Lanes = {
  load: (f) => f.f32Load().op(0xbb), // f64.promote_f32
  store: (f) => f.op(0xb6).f32Store(), // f32.demote_f64
  add: [0xa0],
  sub: [0xa1],
  mul: [0xa2],
  div: [0xa3],
  sqrt: [0x9f],
  constant: (name) => name,
  temp: (name) => name,
  width: 1,
};

const PAIRS: Lanes = {
  load: (f) => f.op(0xfd, 0x5d, 3, 0, 0xfd, 0x5f), // v128.load64_zero; f64x2.promote_low_f32x4
  store: (f) => f.op(0xfd, 0x5e, 0xfd, 0x5b, 3, 0, 0), // f32x4.demote_f64x2_zero; v128.store64_lane 0
  add: [0xfd, 0xf0, 0x01],
  sub: [0xfd, 0xf1, 0x01],
  mul: [0xfd, 0xf2, 0x01],
  div: [0xfd, 0xf3, 0x01],
  sqrt: [0xfd, 0xef, 0x01],
  constant: (name) => `${name}2`,
  temp: (name) => `${name}2`,
  width: 2,
};

export function adamFn(): Fn {
  const f = new Fn('adam', ['p', 'g', 'm', 'v', 'n', 'constants']);
  f.local('k', I32).local('end', I32).local('pairsEnd', I32);
  for (const name of [...ADAM_CONSTANTS, 'gk', 'mk', 'vk']) f.local(name, F64).local(`${name}2`, V128);
  ADAM_CONSTANTS.forEach((name, i) => {
    f.get('constants')
      .op(0x2b, 3, ...[8 * i])
      .set(name); // f64.load offset 8 i
    f.get(name).op(0xfd, 0x14).set(`${name}2`); // f64x2.splat
  });
  f.get('n').i32(4).mul().set('end');
  f.get('n').i32(-2).op(0x71).i32(4).mul().set('pairsEnd'); // (n & ~1) * 4
  const at = (g: Fn, array: string) => g.get(array).get('k').add();
  const body = (g: Fn, l: Lanes) => {
    const [c, t] = [l.constant, l.temp];
    // gk = g scale
    at(g, 'g');
    l.load(g);
    g.get(c('scale'))
      .op(...l.mul)
      .set(t('gk'));
    // m = beta1 m + (1 - beta1) gk, stored as float32 and read back as the JavaScript does
    at(g, 'm');
    g.get(c('beta1'));
    at(g, 'm');
    l.load(g);
    g.op(...l.mul)
      .get(c('oneMinusBeta1'))
      .get(t('gk'))
      .op(...l.mul, ...l.add);
    l.store(g);
    at(g, 'm');
    l.load(g);
    g.set(t('mk'));
    // v = beta2 v + ((1 - beta2) gk) gk
    at(g, 'v');
    g.get(c('beta2'));
    at(g, 'v');
    l.load(g);
    g.op(...l.mul)
      .get(c('oneMinusBeta2'))
      .get(t('gk'))
      .op(...l.mul)
      .get(t('gk'))
      .op(...l.mul, ...l.add);
    l.store(g);
    at(g, 'v');
    l.load(g);
    g.set(t('vk'));
    // p -= (stepSize m) / (sqrt(v) / correction2 + epsilon)
    at(g, 'p');
    at(g, 'p');
    l.load(g);
    g.get(c('stepSize'))
      .get(t('mk'))
      .op(...l.mul);
    g.get(t('vk'))
      .op(...l.sqrt)
      .get(c('correction2'))
      .op(...l.div)
      .get(c('epsilon'))
      .op(...l.add, ...l.div, ...l.sub);
    l.store(g);
    g.bump('k', 4 * l.width);
  };
  f.i32(0).set('k');
  f.whileLoop(
    (g) => g.get('k').get('pairsEnd').op(I32_LT_S),
    (g) => body(g, PAIRS),
  );
  f.whileLoop(
    (g) => g.get('k').get('end').op(I32_LT_S),
    (g) => body(g, SCALAR),
  );
  return f;
}

export function sumSquaresFn(): Fn {
  const f = new Fn('sumSquares', ['g', 'n', 'acc']);
  f.local('k', I32).local('end', I32).local('quadsEnd', I32).local('s', F64).local('x', F64);
  f.local('low', V128).local('high', V128).local('x2', V128);
  f.get('n').i32(4).mul().set('end');
  f.get('n').i32(-4).op(0x71).i32(4).mul().set('quadsEnd'); // (n & ~3) * 4
  f.f64(0).op(0xfd, 0x14).set('low'); // f64x2.splat
  f.f64(0).op(0xfd, 0x14).set('high');
  // Four at a time: lanes of `low` take k = 0, 1 mod 4, those of `high` k = 2, 3 mod 4 (four chains).
  f.i32(0).set('k');
  f.whileLoop(
    (g) => g.get('k').get('quadsEnd').op(I32_LT_S),
    (g) => {
      for (const [sum, offset] of [
        ['low', 0],
        ['high', 8],
      ] as const) {
        g.get('g').get('k').add().i32(offset).add();
        PAIRS.load(g);
        g.set('x2').get(sum).get('x2').get('x2');
        g.op(...PAIRS.mul, ...PAIRS.add).set(sum);
      }
      g.bump('k', 16);
    },
  );
  // s = ((low0 + low1) + high0) + high1, then the rest in order.
  f.get('low').op(0xfd, 0x21, 0).get('low').op(0xfd, 0x21, 1).op(0xa0); // f64x2.extract_lane
  f.get('high').op(0xfd, 0x21, 0).op(0xa0).get('high').op(0xfd, 0x21, 1).op(0xa0).set('s');
  f.whileLoop(
    (g) => g.get('k').get('end').op(I32_LT_S),
    (g) => {
      g.get('g').get('k').add().f32Load().op(0xbb).set('x');
      g.get('s').get('x').get('x').op(0xa2, 0xa0).set('s');
      g.bump('k', 4);
    },
  );
  f.get('acc').get('acc').op(0x2b, 3, 0).get('s').op(0xa0).op(0x39, 3, 0); // acc += s (f64)
  return f;
}
