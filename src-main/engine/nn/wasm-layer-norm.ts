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

/** Rows lnFwd and lnBwdRows take at once: their sums are separate dependency chains, so they overlap. */
const ROWS_AT_ONCE = 2;

/** lnFwd(x, gamma, beta, out, mean, rstd, rows, d); out may be x. */
export function layerNormForwardFn(): Fn {
  const f = new Fn('lnFwd', ['x', 'gamma', 'beta', 'out', 'mean', 'rstd', 'rows', 'd']);
  f.local('r', I32).local('c', I32).local('dd', F64);
  for (let i = 0; i < ROWS_AT_ONCE; i++) {
    f.local(`rowByte${i}`, I32);
    for (const n of ['sum', 'mu', 'sq', 'dev', 'inv']) f.local(`${n}${i}`, F64);
  }
  f.get('d').op(F64_FROM_I32).set('dd');
  /** Rows r..r+n-1, each with exactly the one-row operations, interleaved column by column. */
  const rowsAtOnce = (g: Fn, n: number) => {
    const each = (body: (i: number) => void) => {
      for (let i = 0; i < n; i++) body(i);
    };
    const x = (i: number) => load(g, 'x', (h) => h.get(`rowByte${i}`).get('c').i32(4).mul().add());
    each((i) => g.get('r').i32(i).add().get('d').mul().i32(4).mul().set(`rowByte${i}`));
    each((i) => g.f64(0).set(`sum${i}`));
    columns(g, 'd', () =>
      each((i) => {
        g.get(`sum${i}`);
        x(i).op(F64_ADD).set(`sum${i}`);
      }),
    );
    each((i) => g.get(`sum${i}`).get('dd').op(F64_DIV).set(`mu${i}`));
    each((i) => g.f64(0).set(`sq${i}`));
    columns(g, 'd', () =>
      each((i) => {
        x(i).get(`mu${i}`).op(F64_SUB).set(`dev${i}`);
        g.get(`sq${i}`).get(`dev${i}`).get(`dev${i}`).op(F64_MUL).op(F64_ADD).set(`sq${i}`);
      }),
    );
    each((i) => {
      g.f64(1).get(`sq${i}`).get('dd').op(F64_DIV).f64(LAYER_NORM_EPS).op(F64_ADD);
      g.op(F64_SQRT).op(F64_DIV).set(`inv${i}`);
      const stat = (buffer: string, value: string) =>
        g.get(buffer).get('r').i32(i).add().i32(4).mul().add().get(value).op(DEMOTE).f32Store();
      stat('mean', `mu${i}`);
      stat('rstd', `inv${i}`);
    });
    columns(g, 'd', () =>
      each((i) => {
        g.get('out').get(`rowByte${i}`).add().get('c').i32(4).mul().add();
        x(i).get(`mu${i}`).op(F64_SUB).get(`inv${i}`).op(F64_MUL);
        load(g, 'gamma', (h) => h.get('c').i32(4).mul()).op(F64_MUL);
        load(g, 'beta', (h) => h.get('c').i32(4).mul()).op(F64_ADD);
        g.op(DEMOTE).f32Store();
      }),
    );
  };
  f.blocked('r', 'rows', ROWS_AT_ONCE, 1, (n) => rowsAtOnce(f, n));
  return f;
}

/** lnBwdRows(dy, x, mean, rstd, gamma, g, rows, d): g += LN'(dy) with the forward pass's stats. */
export function layerNormBackwardRowsFn(): Fn {
  const f = new Fn('lnBwdRows', ['dy', 'x', 'mean', 'rstd', 'gamma', 'g', 'rows', 'd']);
  f.local('r', I32).local('c', I32).local('dd', F64);
  for (let i = 0; i < ROWS_AT_ONCE; i++) {
    f.local(`rowByte${i}`, I32);
    for (const n of ['mu', 'inv', 'xhat', 'dxhat', 'm1', 'm2']) f.local(`${n}${i}`, F64);
  }
  f.get('d').op(F64_FROM_I32).set('dd');
  /** Rows r..r+n-1 interleaved column by column, each with exactly the one-row operations. */
  const rowsAtOnce = (g: Fn, n: number) => {
    const each = (body: (i: number) => void) => {
      for (let i = 0; i < n; i++) body(i);
    };
    const element = (i: number) => (h: Fn) => h.get(`rowByte${i}`).get('c').i32(4).mul().add();
    const xhatOf = (i: number) =>
      load(g, 'x', element(i)).get(`mu${i}`).op(F64_SUB).get(`inv${i}`).op(F64_MUL).set(`xhat${i}`);
    const dxhatOf = (i: number) => {
      load(g, 'dy', element(i));
      load(g, 'gamma', (h) => h.get('c').i32(4).mul()).op(F64_MUL);
    };
    each((i) => {
      g.get('r').i32(i).add().get('d').mul().i32(4).mul().set(`rowByte${i}`);
      const row = (h: Fn) => h.get('r').i32(i).add().i32(4).mul();
      load(g, 'mean', row).set(`mu${i}`);
      load(g, 'rstd', row).set(`inv${i}`);
      g.f64(0).set(`m1${i}`);
      g.f64(0).set(`m2${i}`);
    });
    columns(g, 'd', () =>
      each((i) => {
        xhatOf(i);
        dxhatOf(i);
        g.set(`dxhat${i}`);
        g.get(`m1${i}`).get(`dxhat${i}`).op(F64_ADD).set(`m1${i}`);
        g.get(`m2${i}`).get(`dxhat${i}`).get(`xhat${i}`).op(F64_MUL).op(F64_ADD).set(`m2${i}`);
      }),
    );
    each((i) => {
      g.get(`m1${i}`).get('dd').op(F64_DIV).set(`m1${i}`);
      g.get(`m2${i}`).get('dd').op(F64_DIV).set(`m2${i}`);
    });
    columns(g, 'd', () =>
      each((i) => {
        xhatOf(i);
        g.get('g');
        element(i)(g);
        g.add();
        load(g, 'g', element(i)).get(`inv${i}`);
        dxhatOf(i);
        g.get(`m1${i}`).op(F64_SUB).get(`xhat${i}`).get(`m2${i}`).op(F64_MUL).op(F64_SUB);
        g.op(F64_MUL).op(F64_ADD).op(DEMOTE).f32Store();
      }),
    );
  };
  f.blocked('r', 'rows', ROWS_AT_ONCE, 1, (n) => rowsAtOnce(f, n));
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
