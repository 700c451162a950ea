/**
 * Products with b packed in column panels, for the host trunk's large products (x W forward, x^T dy for
 * the weight gradients). The plain products walk b's rows for every block of output rows; a row of b is
 * 1.5-2 kB apart from the next, so the 16 columns a block reads over k sit in a few L1 sets that evict
 * each other, and b streams from L2 again and again. Packed, each panel of PANEL columns is contiguous
 * ([k][PANEL] floats: 8 kB per 128 k), stays in L1 while every row block of the output passes over it,
 * and the loads run in address order.
 *
 * packPanels(b, ldb, inner, cols, dst, sums): dst panel p (columns 16p..16p+w-1, w = min(16, cols - 16p))
 * at dst + 16p * inner floats, laid out [k][w]. Columns in fours. With sums >= 0, also sums[c] = the sum of
 * column c over k in order (a bias's gradient 1^T dy, read while packing dy: the same numbers as the
 * product 1^T dy, whose multiplies by 1 are exact).
 * mmNNPacked(a, rows, bp, cols, inner, out, lda, ldc, bias, residual, act, actOut, slope) and mmTNPacked(a,
 * rows, bp, cols, inner, out, lda; a stored [inner, lda]): per panel, the strided product (wasm-simd.ts) of a
 * and the panel into the panel's columns of out (row stride ldc for mmNNPacked, so that its columns can be
 * a block of a wider output; cols for mmTNPacked), then mmNNPacked's epilogue, below. Each output element takes the
 * same operations in the same order as the unpacked product: the same numbers.
 */
import { F32X4_ADD, F32X4_SPLAT, Fn, I32, I32_LT_S, V128 } from './wasm-asm.ts';

/** Columns per panel: the width of the products' register block (4 vectors). */
export const PANEL = 16;

/** Pushes min(PANEL, cols - c) (the panel's width) from locals c, cols. */
function panelWidth(f: Fn): void {
  f.get('cols').get('c').op(0x6b); // cols - c
  f.i32(PANEL);
  f.get('cols').get('c').op(0x6b).i32(PANEL).op(I32_LT_S);
  f.op(0x1b); // select: the smaller
}

/** for (c = 0; c < cols; c += PANEL) body, with w = the panel's width (locals c, w). */
function forPanels(f: Fn, body: (g: Fn) => void): void {
  f.i32(0).set('c');
  f.whileLoop(
    (g) => g.get('c').get('cols').op(I32_LT_S),
    (g) => {
      panelWidth(g);
      g.set('w');
      body(g);
      g.bump('c', PANEL);
    },
  );
}

export function packPanelsFn(): Fn {
  const f = new Fn('packPanels', ['b', 'ldb', 'inner', 'cols', 'dst', 'sums']);
  for (const n of ['c', 'w', 'k', 'src', 'v', 'ps']) f.local(n, I32);
  f.local('x', V128);
  const withSums = (g: Fn, body: (h: Fn) => void) => g.ifThen((h) => h.get('sums').i32(0).op(0x4e), body);
  /** Copies the vector at src + offset + `at` to dst + `at` (`at` pushes a byte offset), adding it to sums. */
  const copy = (g: Fn, at: (h: Fn) => void) => {
    g.get('src');
    at(g);
    g.add().v128Load().set('x');
    g.get('dst');
    at(g);
    g.add().get('x').v128Store();
    withSums(g, (h) => {
      h.get('ps');
      at(h);
      h.add();
      h.get('ps');
      at(h);
      h.add()
        .v128Load()
        .get('x')
        .op(...F32X4_ADD)
        .v128Store();
    });
  };
  forPanels(f, (g) => {
    g.get('b').get('c').i32(4).mul().add().set('src');
    // The panel's column sums start at zero (sums + c 4).
    g.get('sums').get('c').i32(4).mul().add().set('ps');
    withSums(g, (h) => {
      h.i32(0).set('v');
      h.whileLoop(
        (z) => z.get('v').get('w').i32(4).mul().op(I32_LT_S),
        (z) => {
          z.get('ps')
            .get('v')
            .add()
            .f32(0)
            .op(...F32X4_SPLAT)
            .v128Store();
          z.bump('v', 16);
        },
      );
    });
    g.i32(0).set('k');
    g.whileLoop(
      (h) => h.get('k').get('inner').op(I32_LT_S),
      (h) => {
        // Full panels: four vector copies; the last, narrower one: w / 4 of them.
        h.get('w').i32(PANEL).op(0x46); // i32.eq
        h.op(0x04, 0x40);
        for (let v = 0; v < PANEL / 4; v++) copy(h, (z) => z.i32(16 * v));
        h.op(0x05);
        h.i32(0).set('v');
        h.whileLoop(
          (z) => z.get('v').get('w').i32(4).mul().op(I32_LT_S),
          (z) => {
            copy(z, (y) => y.get('v'));
            z.bump('v', 16);
          },
        );
        h.op(0x0b);
        h.get('dst').get('w').i32(4).mul().add().set('dst');
        h.get('src').get('ldb').i32(4).mul().add().set('src');
        h.bump('k', 1);
      },
    );
  });
  return f;
}

/**
 * mmNNPacked / mmTNPacked: one call of the strided product `strided` (module index) per panel. With an
 * `epilogue` (module index of biasResidualAct, wasm-simd.ts), mmNNPacked takes six more parameters
 * (ldc, bias, residual, act, actOut, slope) and, when bias >= 0, runs the epilogue on each panel after its
 * product (residual, actOut and slope laid out as out).
 */
export function packedProductFn(name: 'mmNNPacked' | 'mmTNPacked', strided: number, epilogue?: number): Fn {
  const params = ['a', 'rows', 'bp', 'cols', 'inner', 'out', 'lda'];
  const f = new Fn(
    name,
    epilogue === undefined ? params : [...params, 'ldc', 'bias', 'residual', 'act', 'actOut', 'slope'],
  );
  f.local('c', I32).local('w', I32);
  forPanels(f, (g) => {
    // strided(a, rows, bp + c inner 4, w, inner, out + c 4, lda, ldb = w, ldc)
    g.get('a').get('rows');
    g.get('bp').get('c').get('inner').mul().i32(4).mul().add();
    g.get('w').get('inner');
    g.get('out').get('c').i32(4).mul().add();
    g.get('lda')
      .get('w')
      .get(epilogue === undefined ? 'cols' : 'ldc');
    g.call(strided);
    if (epilogue !== undefined)
      g.ifThen(
        (h) => h.get('bias').i32(0).op(0x4e), // bias >= 0
        (h) => {
          // biasResidualAct(out + c 4, rows, w, ldc, bias + c 4, residual (+ c 4), act, actOut + c 4,
          // slope (+ c 4))
          h.get('out').get('c').i32(4).mul().add().get('rows').get('w').get('ldc');
          h.get('bias').get('c').i32(4).mul().add();
          h.get('residual').get('residual').get('c').i32(4).mul().add();
          h.get('residual').i32(0).op(0x48).op(0x1b); // residual < 0 ? residual : residual + c 4
          h.get('act').get('actOut').get('c').i32(4).mul().add();
          h.get('slope').get('slope').get('c').i32(4).mul().add();
          h.get('slope').i32(0).op(0x48).op(0x1b); // slope < 0 ? slope : slope + c 4
          h.call(epilogue);
        },
      );
  });
  return f;
}
