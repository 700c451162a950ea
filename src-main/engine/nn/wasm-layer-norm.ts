/**
 * Layer norm (Ba et al. 2016) forward and backward as WebAssembly kernels for the host trunk, over
 * row-major [rows, d] float32, d a multiple of 4 (see nodes/agent/llm/host-rows.ts for the math):
 *   lnFwd:     out = (x - mu) rstd gamma + beta per row, keeping mu and rstd per row
 *   lnBwdRows: g += rstd (dy.gamma - mean(dy.gamma) - x^ mean(dy.gamma . x^)) per row
 *   lnBwdCols: dgamma = sum_rows dy . x^, dbeta = sum_rows dy over `cols` columns (row stride d)
 * Float32 in f32x4 lanes, as PyTorch's CPU kernels do it: a row's sums run in four lanes (lane j takes the
 * columns c = j mod 4, in order), then ((l0 + l1) + l2) + l3; every other operation is element-wise, a
 * multiply and an add apart (no fused multiply-add, so every engine gives the same bits). host-rows.ts's
 * `layerNormRows` does the same operations in JavaScript. Rows are independent and so are columns, so the
 * kernel helper can take any of the rows without changing a number.
 */
import {
  extractLane,
  F32,
  F32X4_ADD,
  F32X4_MUL,
  F32X4_SPLAT,
  F32X4_SUB,
  Fn,
  I32,
  I32_LT_S,
  V128,
} from './wasm-asm.ts';

/** Layer norm's epsilon: rstd = 1 / sqrt(biased variance + eps). */
export const LAYER_NORM_EPS = 1e-5;

const [F32_ADD, F32_DIV, F32_SQRT, F32_FROM_I32] = [0x92, 0x95, 0x91, 0xb2];

/**
 * Rows lnFwd takes at once: their sums are separate dependency chains, so they overlap (~1.5x). lnBwdRows
 * keeps more vectors per row and runs fastest one row at a time (measured).
 */
const FORWARD_ROWS_AT_ONCE = 4;

/**
 * for (cb = 0; cb < limit; cb += 16) body: a row's columns four at a time (byte offset cb), up to local
 * `limit` (bytes: dBytes, the whole row).
 */
function vectors(f: Fn, body: () => void, limit = 'dBytes'): void {
  f.i32(0).set('cb');
  f.whileLoop(
    (g) => g.get('cb').get(limit).op(I32_LT_S),
    (g) => {
      body();
      g.bump('cb', 16);
    },
  );
}

/** Pushes the four floats at buffer + (row byte offset) + cb. */
function loadRow(f: Fn, buffer: string, rowByte: string): Fn {
  return f.get(buffer).get(rowByte).add().get('cb').add().v128Load();
}

/** Pushes the four floats of a per-column vector (gamma, beta) at cb. */
function loadCols(f: Fn, buffer: string): Fn {
  return f.get(buffer).get('cb').add().v128Load();
}

/** Replaces the f32x4 on the stack with ((l0 + l1) + l2) + l3 (local `lanes` as scratch). */
function reduceLanes(f: Fn): Fn {
  f.set('lanes')
    .get('lanes')
    .op(...extractLane(0));
  for (let lane = 1; lane < 4; lane++)
    f.get('lanes')
      .op(...extractLane(lane))
      .op(F32_ADD);
  return f;
}

/** The locals every kernel here uses, and dBytes = d 4, dd = float32(d). */
function prologue(f: Fn): void {
  f.local('r', I32).local('cb', I32).local('dBytes', I32).local('dd', F32).local('lanes', V128);
  f.get('d').i32(4).mul().set('dBytes');
  f.get('d').op(F32_FROM_I32).set('dd');
}

/** body on rows r..r+n-1 (each() steps over them), `atOnce` at a time, then one at a time. */
function rowBlocks(f: Fn, atOnce: number, body: (each: (step: (i: number) => void) => void) => void): void {
  f.blocked('r', 'rows', atOnce, 1, (n) =>
    body((step) => {
      for (let i = 0; i < n; i++) step(i);
    }),
  );
}

/** Sets local name = splat(float32 at buffer[r + i]) (a row's mean or rstd). */
function rowStat(f: Fn, buffer: string, i: number, name: string): void {
  f.get(buffer)
    .get('r')
    .i32(i)
    .add()
    .i32(4)
    .mul()
    .add()
    .f32Load()
    .op(...F32X4_SPLAT)
    .set(name);
}

/** lnFwd(x, gamma, beta, out, mean, rstd, rows, d); out may be x. */
export function layerNormForwardFn(): Fn {
  const f = new Fn('lnFwd', ['x', 'gamma', 'beta', 'out', 'mean', 'rstd', 'rows', 'd']);
  prologue(f);
  f.local('dev', V128);
  for (let i = 0; i < FORWARD_ROWS_AT_ONCE; i++)
    f.local(`rowByte${i}`, I32).local(`acc${i}`, V128).local(`mu${i}`, V128).local(`inv${i}`, V128);
  rowBlocks(f, FORWARD_ROWS_AT_ONCE, (each) => {
    const x = (i: number) => loadRow(f, 'x', `rowByte${i}`);
    each((i) => f.get('r').i32(i).add().get('dBytes').mul().set(`rowByte${i}`));
    // mu = (lane sums of x) / d
    each((i) =>
      f
        .f32(0)
        .op(...F32X4_SPLAT)
        .set(`acc${i}`),
    );
    vectors(f, () =>
      each((i) =>
        x(i)
          .get(`acc${i}`)
          .op(...F32X4_ADD)
          .set(`acc${i}`),
      ),
    );
    each((i) => {
      f.get('mean').get('r').i32(i).add().i32(4).mul().add();
      reduceLanes(f.get(`acc${i}`))
        .get('dd')
        .op(F32_DIV)
        .f32Store();
      rowStat(f, 'mean', i, `mu${i}`);
    });
    // rstd = 1 / sqrt((lane sums of (x - mu)^2) / d + eps)
    each((i) =>
      f
        .f32(0)
        .op(...F32X4_SPLAT)
        .set(`acc${i}`),
    );
    vectors(f, () =>
      each((i) => {
        x(i)
          .get(`mu${i}`)
          .op(...F32X4_SUB)
          .set('dev');
        f.get('dev')
          .get('dev')
          .op(...F32X4_MUL)
          .get(`acc${i}`)
          .op(...F32X4_ADD)
          .set(`acc${i}`);
      }),
    );
    each((i) => {
      f.get('rstd').get('r').i32(i).add().i32(4).mul().add().f32(1);
      reduceLanes(f.get(`acc${i}`))
        .get('dd')
        .op(F32_DIV)
        .f32(LAYER_NORM_EPS)
        .op(F32_ADD)
        .op(F32_SQRT);
      f.op(F32_DIV).f32Store();
      rowStat(f, 'rstd', i, `inv${i}`);
    });
    // out = ((x - mu) rstd) gamma + beta
    vectors(f, () =>
      each((i) => {
        f.get('out').get(`rowByte${i}`).add().get('cb').add();
        x(i)
          .get(`mu${i}`)
          .op(...F32X4_SUB)
          .get(`inv${i}`)
          .op(...F32X4_MUL);
        loadCols(f, 'gamma').op(...F32X4_MUL);
        loadCols(f, 'beta')
          .op(...F32X4_ADD)
          .v128Store();
      }),
    );
  });
  return f;
}

/** Sets locals xhat = (x - mu) rstd and dxhat = dy gamma of row i's four columns at cb. */
function xhatDxhat(f: Fn, i: number): void {
  loadRow(f, 'x', `rowByte${i}`)
    .get(`mu${i}`)
    .op(...F32X4_SUB)
    .get(`inv${i}`)
    .op(...F32X4_MUL)
    .set('xhat');
  loadRow(f, 'dy', `rowByte${i}`);
  loadCols(f, 'gamma')
    .op(...F32X4_MUL)
    .set('dxhat');
}

/** lnBwdRows(dy, x, mean, rstd, gamma, g, rows, d): g += LN'(dy) with the forward pass's stats. */
export function layerNormBackwardRowsFn(): Fn {
  const f = new Fn('lnBwdRows', ['dy', 'x', 'mean', 'rstd', 'gamma', 'g', 'rows', 'd']);
  prologue(f);
  f.local('xhat', V128).local('dxhat', V128);
  f.local('rowByte0', I32);
  for (const n of ['mu', 'inv', 'm1', 'm2']) f.local(`${n}0`, V128);
  rowBlocks(f, 1, (each) => {
    each((i) => {
      f.get('r').i32(i).add().get('dBytes').mul().set(`rowByte${i}`);
      rowStat(f, 'mean', i, `mu${i}`);
      rowStat(f, 'rstd', i, `inv${i}`);
      f.f32(0)
        .op(...F32X4_SPLAT)
        .set(`m1${i}`);
      f.f32(0)
        .op(...F32X4_SPLAT)
        .set(`m2${i}`);
    });
    // m1 = mean(dxhat), m2 = mean(dxhat xhat), each from its lane sums
    vectors(f, () =>
      each((i) => {
        xhatDxhat(f, i);
        f.get(`m1${i}`)
          .get('dxhat')
          .op(...F32X4_ADD)
          .set(`m1${i}`);
        f.get(`m2${i}`)
          .get('dxhat')
          .get('xhat')
          .op(...F32X4_MUL)
          .op(...F32X4_ADD)
          .set(`m2${i}`);
      }),
    );
    each((i) => {
      for (const m of ['m1', 'm2'])
        reduceLanes(f.get(`${m}${i}`))
          .get('dd')
          .op(F32_DIV)
          .op(...F32X4_SPLAT)
          .set(`${m}${i}`);
    });
    // g += rstd ((dxhat - m1) - xhat m2)
    vectors(f, () =>
      each((i) => {
        xhatDxhat(f, i);
        f.get('g').get(`rowByte${i}`).add().get('cb').add();
        loadRow(f, 'g', `rowByte${i}`).get(`inv${i}`);
        f.get('dxhat')
          .get(`m1${i}`)
          .op(...F32X4_SUB)
          .get('xhat')
          .get(`m2${i}`)
          .op(...F32X4_MUL)
          .op(...F32X4_SUB);
        f.op(...F32X4_MUL)
          .op(...F32X4_ADD)
          .v128Store();
      }),
    );
  });
  return f;
}

/**
 * lnBwdCols(dy, x, mean, rstd, dGamma, dBeta, rows, d, cols): dGamma and dBeta of the first `cols`
 * columns (a multiple of 4; offset the pointers for a later range), each summed over the rows in order.
 */
export function layerNormBackwardColumnsFn(): Fn {
  const f = new Fn('lnBwdCols', ['dy', 'x', 'mean', 'rstd', 'dGamma', 'dBeta', 'rows', 'd', 'cols']);
  prologue(f);
  f.local('colBytes', I32).local('rowByte0', I32).local('mu0', V128).local('inv0', V128);
  f.local('xhat', V128).local('dyv', V128);
  f.get('cols').i32(4).mul().set('colBytes');
  const zero = (buffer: string) =>
    f
      .get(buffer)
      .get('cb')
      .add()
      .f32(0)
      .op(...F32X4_SPLAT)
      .v128Store();
  const eachColumn = (body: () => void) => vectors(f, body, 'colBytes');
  eachColumn(() => {
    zero('dGamma');
    zero('dBeta');
  });
  f.i32(0).set('r');
  f.whileLoop(
    (g) => g.get('r').get('rows').op(I32_LT_S),
    (g) => {
      g.get('r').get('dBytes').mul().set('rowByte0');
      rowStat(g, 'mean', 0, 'mu0');
      rowStat(g, 'rstd', 0, 'inv0');
      eachColumn(() => {
        loadRow(g, 'x', 'rowByte0')
          .get('mu0')
          .op(...F32X4_SUB)
          .get('inv0')
          .op(...F32X4_MUL)
          .set('xhat');
        loadRow(g, 'dy', 'rowByte0').set('dyv');
        g.get('dGamma').get('cb').add();
        loadCols(g, 'dGamma')
          .get('dyv')
          .get('xhat')
          .op(...F32X4_MUL)
          .op(...F32X4_ADD)
          .v128Store();
        g.get('dBeta').get('cb').add();
        loadCols(g, 'dBeta')
          .get('dyv')
          .op(...F32X4_ADD)
          .v128Store();
      });
      g.bump('r', 1);
    },
  );
  return f;
}
