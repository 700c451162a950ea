/**
 * Layer norm (Ba et al. 2016) forward and backward as WebAssembly kernels for the host trunk, over
 * row-major [rows, d] float32 (see nodes/agent/llm/host-rows.ts for the math):
 *   lnFwd:     out = (x - mu) rstd gamma + beta per row, keeping mu and rstd (float32) per row
 *   lnBwdRows: g += rstd (dy.gamma - mean(dy.gamma) - x^ mean(dy.gamma . x^)) per row
 *   lnBwdCols: dgamma = sum_rows dy . x^, dbeta = sum_rows dy over `cols` columns (row stride d)
 * Each does in float64 exactly what host-rows.ts's JavaScript does (same operations in the same order,
 * float32 loads and stores at the same places), so the two give the same bits. Rows are independent and
 * so are columns, so the kernel helper can take half of the rows (or columns) without changing a number.
 */
import { F64, Fn, I32, I32_LT_S } from './wasm-asm.ts';

/** Layer norm's epsilon: rstd = 1 / sqrt(biased variance + eps). */
export const LAYER_NORM_EPS = 1e-5;

const [F64_ADD, F64_SUB, F64_MUL, F64_DIV, F64_SQRT] = [0xa0, 0xa1, 0xa2, 0xa3, 0x9f];
const [PROMOTE, DEMOTE, F64_FROM_I32] = [0xbb, 0xb6, 0xb7];

/** Pushes float64(buffer[index]) of a float32 buffer; `index` pushes the element's byte offset. */
function load(f: Fn, buffer: string, index: (f: Fn) => void): Fn {
  f.get(buffer);
  index(f);
  return f.add().f32Load().op(PROMOTE);
}

/** The byte offset of element (r, c) of a [rows, d] matrix: (r d + c) 4, from locals rowByte and c. */
const at = (f: Fn) => f.get('rowByte').get('c').i32(4).mul().add();
const atRow = (f: Fn) => f.get('r').i32(4).mul();

/** for (c = 0; c < limit; c++) body. */
function columns(f: Fn, limit: string, body: () => void): void {
  f.i32(0).set('c');
  f.whileLoop(
    (g) => g.get('c').get(limit).op(I32_LT_S),
    (g) => {
      body();
      g.bump('c', 1);
    },
  );
}

/** for (r = 0; r < rows; r++) { rowByte = r d 4; body } */
function rowLoop(f: Fn, body: () => void): void {
  f.i32(0).set('r');
  f.whileLoop(
    (g) => g.get('r').get('rows').op(I32_LT_S),
    (g) => {
      g.get('r').get('d').mul().i32(4).mul().set('rowByte');
      body();
      g.bump('r', 1);
    },
  );
}

/** xhat = (x[r, c] - mu) inv, float64. */
function xhat(f: Fn): void {
  load(f, 'x', at).get('mu').op(F64_SUB).get('inv').op(F64_MUL).set('xhat');
}

/** lnFwd(x, gamma, beta, out, mean, rstd, rows, d); out may be x. */
export function layerNormForwardFn(): Fn {
  const f = new Fn('lnFwd', ['x', 'gamma', 'beta', 'out', 'mean', 'rstd', 'rows', 'd']);
  for (const n of ['r', 'c', 'rowByte']) f.local(n, I32);
  for (const n of ['sum', 'mu', 'sq', 'dev', 'inv', 'dd']) f.local(n, F64);
  f.get('d').op(F64_FROM_I32).set('dd');
  rowLoop(f, () => {
    f.f64(0).set('sum');
    columns(f, 'd', () => {
      f.get('sum');
      load(f, 'x', at).op(F64_ADD).set('sum');
    });
    f.get('sum').get('dd').op(F64_DIV).set('mu');
    f.f64(0).set('sq');
    columns(f, 'd', () => {
      load(f, 'x', at).get('mu').op(F64_SUB).set('dev');
      f.get('sq').get('dev').get('dev').op(F64_MUL).op(F64_ADD).set('sq');
    });
    f.f64(1).get('sq').get('dd').op(F64_DIV).f64(LAYER_NORM_EPS).op(F64_ADD);
    f.op(F64_SQRT).op(F64_DIV).set('inv');
    f.get('mean').get('r').i32(4).mul().add().get('mu').op(DEMOTE).f32Store();
    f.get('rstd').get('r').i32(4).mul().add().get('inv').op(DEMOTE).f32Store();
    columns(f, 'd', () => {
      f.get('out');
      at(f).add();
      load(f, 'x', at).get('mu').op(F64_SUB).get('inv').op(F64_MUL);
      load(f, 'gamma', (g) => g.get('c').i32(4).mul()).op(F64_MUL);
      load(f, 'beta', (g) => g.get('c').i32(4).mul()).op(F64_ADD);
      f.op(DEMOTE).f32Store();
    });
  });
  return f;
}

/** lnBwdRows(dy, x, mean, rstd, gamma, g, rows, d): g += LN'(dy) with the forward pass's stats. */
export function layerNormBackwardRowsFn(): Fn {
  const f = new Fn('lnBwdRows', ['dy', 'x', 'mean', 'rstd', 'gamma', 'g', 'rows', 'd']);
  for (const n of ['r', 'c', 'rowByte']) f.local(n, I32);
  for (const n of ['mu', 'inv', 'xhat', 'dxhat', 'm1', 'm2', 'dd']) f.local(n, F64);
  f.get('d').op(F64_FROM_I32).set('dd');
  const dxhat = () => {
    load(f, 'dy', at);
    load(f, 'gamma', (g) => g.get('c').i32(4).mul()).op(F64_MUL);
  };
  rowLoop(f, () => {
    load(f, 'mean', atRow).set('mu');
    load(f, 'rstd', atRow).set('inv');
    f.f64(0).set('m1');
    f.f64(0).set('m2');
    columns(f, 'd', () => {
      xhat(f);
      dxhat();
      f.set('dxhat');
      f.get('m1').get('dxhat').op(F64_ADD).set('m1');
      f.get('m2').get('dxhat').get('xhat').op(F64_MUL).op(F64_ADD).set('m2');
    });
    f.get('m1').get('dd').op(F64_DIV).set('m1');
    f.get('m2').get('dd').op(F64_DIV).set('m2');
    columns(f, 'd', () => {
      xhat(f);
      f.get('g');
      at(f).add();
      load(f, 'g', at).get('inv');
      dxhat();
      f.get('m1').op(F64_SUB).get('xhat').get('m2').op(F64_MUL).op(F64_SUB);
      f.op(F64_MUL).op(F64_ADD).op(DEMOTE).f32Store();
    });
  });
  return f;
}

/**
 * lnBwdCols(dy, x, mean, rstd, dGamma, dBeta, rows, d, cols): dGamma and dBeta of the first `cols`
 * columns (offset the pointers for a later range), each summed over the rows in order in float32.
 */
export function layerNormBackwardColumnsFn(): Fn {
  const f = new Fn('lnBwdCols', ['dy', 'x', 'mean', 'rstd', 'dGamma', 'dBeta', 'rows', 'd', 'cols']);
  for (const n of ['r', 'c', 'rowByte', 'pg', 'pb']) f.local(n, I32);
  for (const n of ['mu', 'inv', 'xhat']) f.local(n, F64);
  columns(f, 'cols', () => {
    f.get('dGamma').get('c').i32(4).mul().add().f32(0).f32Store();
    f.get('dBeta').get('c').i32(4).mul().add().f32(0).f32Store();
  });
  rowLoop(f, () => {
    load(f, 'mean', atRow).set('mu');
    load(f, 'rstd', atRow).set('inv');
    columns(f, 'cols', () => {
      xhat(f);
      f.get('dGamma').get('c').i32(4).mul().add().set('pg');
      f.get('dBeta').get('c').i32(4).mul().add().set('pb');
      f.get('pg').get('pg').f32Load().op(PROMOTE);
      load(f, 'dy', at).get('xhat').op(F64_MUL).op(F64_ADD).op(DEMOTE).f32Store();
      f.get('pb').get('pb').f32Load().op(PROMOTE);
      load(f, 'dy', at).op(F64_ADD).op(DEMOTE).f32Store();
    });
  });
  return f;
}
