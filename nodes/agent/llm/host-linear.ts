/**
 * y = x W + b as one differentiable op computed with the host SIMD kernels (wasm-simd.ts), for the CPU
 * backends: the transformer's linear layers on [B*T, d] activations. Same math as the tensor `linear`:
 *   forward: y = x W + b;   backward: dx = dy W^T,  dW = x^T dy,  db = 1^T dy
 * The kernels multiply a b^T (`mm`), a b (`mmNN`) or a^T b (`mmTN`); the forward transposes W once per
 * call (small), and the bias gradient is the product of a row of ones with dy.
 */
import type * as TF from '@tensorflow/tfjs';
import { isCpuBackend, readOnCpu } from '../../../src-main/engine/nn/cpu-read.ts';
import { ACT_IDENTITY, arenaFloats, scratchArena } from '../../../src-main/engine/nn/wasm-simd.ts';
import type { Tf } from '../../../src-main/engine/node-api.ts';

/** Whether the op serves this backend and output width (the plain-layout kernel takes columns in fours). */
export function hostLinearAvailable(tf: Tf, outputs: number): boolean {
  return isCpuBackend(tf) && outputs % 4 === 0;
}

function forward(x: Float32Array, w: Float32Array, bias: Float32Array, rows: number, n: number, m: number) {
  const arena = scratchArena(arenaFloats([rows * n, n * m, m * n, m, rows * m]));
  const xb = arena.alloc(rows * n);
  const wb = arena.alloc(n * m);
  const wt = arena.alloc(m * n);
  const bb = arena.alloc(m);
  const out = arena.alloc(rows * m);
  xb.view.set(x);
  wb.view.set(w);
  bb.view.set(bias);
  arena.transpose(wb, n, m, wt);
  arena.matMulTransposed(xb, rows, wt, m, n, out);
  arena.biasActivation(out, rows, m, bb, ACT_IDENTITY);
  return out.view.slice();
}

function backward(x: Float32Array, w: Float32Array, dy: Float32Array, rows: number, n: number, m: number) {
  const arena = scratchArena(arenaFloats([rows * n, n * m, rows * m, rows, rows * n, n * m, m]));
  const xb = arena.alloc(rows * n);
  const wb = arena.alloc(n * m);
  const g = arena.alloc(rows * m);
  const ones = arena.alloc(rows);
  const dx = arena.alloc(rows * n);
  const dw = arena.alloc(n * m);
  const db = arena.alloc(m);
  xb.view.set(x);
  wb.view.set(w);
  g.view.set(dy);
  ones.view.fill(1);
  arena.matMulTransposed(g, rows, wb, n, m, dx); // dx[r, i] = sum_o dy[r, o] W[i, o]
  arena.matMulTransposedA(xb, n, g, m, rows, dw); // dW[i, o] = sum_r x[r, i] dy[r, o]
  arena.matMul(ones, 1, g, m, rows, db);
  return { dx: dx.view.slice(), dw: dw.view.slice(), db: db.view.slice() };
}

type Linear = (x: TF.Tensor2D, w: TF.Tensor, b: TF.Tensor) => TF.Tensor2D;
const opByTf = new WeakMap<Tf, Linear>();

/** x [rows, n] W [n, m] + b [m] with its gradient, on the host. */
export function hostLinear(tf: Tf, x: TF.Tensor2D, w: TF.Tensor, b: TF.Tensor): TF.Tensor2D {
  let op = opByTf.get(tf);
  if (!op) {
    op = tf.customGrad((...inputs: (TF.Tensor | TF.GradSaveFunc)[]) => {
      const [xi, wi, bi, save] = inputs as [TF.Tensor2D, TF.Tensor2D, TF.Tensor1D, TF.GradSaveFunc];
      save([xi, wi]);
      const [rows, n] = xi.shape;
      const m = wi.shape[1];
      const read = (t: TF.Tensor) => readOnCpu(tf, t);
      const value = tf.tensor2d(forward(read(xi), read(wi), read(bi), rows, n, m), [rows, m]);
      const gradFunc = (dy: TF.Tensor, saved: TF.Tensor[]) => {
        const [sx, sw] = saved as [TF.Tensor2D, TF.Tensor2D];
        const g = backward(read(sx), read(sw), read(dy), rows, n, m);
        return [tf.tensor2d(g.dx, [rows, n]), tf.tensor2d(g.dw, [n, m]), tf.tensor1d(g.db)];
      };
      return { value, gradFunc };
    }) as unknown as Linear;
    opByTf.set(tf, op);
  }
  return op(x, w, b);
}
