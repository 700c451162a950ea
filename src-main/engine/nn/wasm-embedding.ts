/**
 * The transformer's embedding rows as WebAssembly kernels (host trunk), four columns at a time (d a
 * multiple of 4), with the float32 additions the JavaScript loops did, in the same order: the same bits.
 *   embedRows(tokens, tok, pos, out, rows, t, d):  out[r] = tok[tokens[r]] + pos[r mod t]
 *   scatterRows(tokens, g, dTok, dPos, rows, t, d): dTok[tokens[r]] += g[r], dPos[r mod t] += g[r], for r in
 *                                                     order (the caller zeroes dTok and dPos first)
 * tokens: int32 [rows]; every row of tok, pos, out, g, dTok, dPos is d floats.
 */
import { F32X4_ADD, Fn, I32, I32_LT_S } from './wasm-asm.ts';

const I32_REM_U = 0x70;

/** for (r = 0; r < rows; r++) with rowBytes = d 4, tokenRow = tokens[r] d 4, posRow = (r mod t) d 4, rRow = r d 4. */
function rowLoop(f: Fn, body: (g: Fn) => void): void {
  f.get('d').i32(4).mul().set('rowBytes');
  f.i32(0).set('r');
  f.whileLoop(
    (g) => g.get('r').get('rows').op(I32_LT_S),
    (g) => {
      g.get('tokens').get('r').i32(4).mul().add().op(0x28, 2, 0).get('rowBytes').mul().set('tokenRow'); // i32.load
      g.get('r').get('t').op(I32_REM_U).get('rowBytes').mul().set('posRow');
      g.get('r').get('rowBytes').mul().set('rRow');
      g.i32(0).set('c');
      g.whileLoop(
        (h) => h.get('c').get('rowBytes').op(I32_LT_S),
        (h) => {
          body(h);
          h.bump('c', 16);
        },
      );
      g.bump('r', 1);
    },
  );
}

const LOCALS = ['r', 'c', 'rowBytes', 'tokenRow', 'posRow', 'rRow'];

export function embedRowsFn(): Fn {
  const f = new Fn('embedRows', ['tokens', 'tok', 'pos', 'out', 'rows', 't', 'd']);
  for (const n of LOCALS) f.local(n, I32);
  rowLoop(f, (g) => {
    g.get('out').get('rRow').add().get('c').add();
    g.get('tok').get('tokenRow').add().get('c').add().v128Load();
    g.get('pos').get('posRow').add().get('c').add().v128Load();
    g.op(...F32X4_ADD).v128Store();
  });
  return f;
}

export function scatterRowsFn(): Fn {
  const f = new Fn('scatterRows', ['tokens', 'g', 'dTok', 'dPos', 'rows', 't', 'd']);
  for (const n of LOCALS) f.local(n, I32);
  /** sum[row + c] += g[r, c] (four lanes). */
  const accumulate = (h: Fn, sum: string, row: string) => {
    h.get(sum).get(row).add().get('c').add();
    h.get(sum).get(row).add().get('c').add().v128Load();
    h.get('g').get('rRow').add().get('c').add().v128Load();
    h.op(...F32X4_ADD).v128Store();
  };
  rowLoop(f, (h) => {
    accumulate(h, 'dTok', 'tokenRow');
    accumulate(h, 'dPos', 'posRow');
  });
  return f;
}
