/**
 * A multilayer perceptron held as tf.Variables, with a host (plain JavaScript) forward pass over a copy
 * of the weights read once per iteration. Small policies act faster on the host than through per-step
 * tensor ops, and the copy doubles as the NaN check and the checkpoint.
 */
import type * as TF from '@tensorflow/tfjs';
import { NonFiniteError, type Tf } from '../node-api.ts';
import type { Rng } from '../rng.ts';
import { HostMlpPass } from './host-ppo.ts';
import { orthogonal } from './init.ts';

export type Activation = 'tanh' | 'relu';

export interface MlpSpec {
  sizes: number[];
  activation: Activation;
  /** Orthogonal-init gain per layer (hidden layers, then the output layer). */
  gains: number[];
}

export class Mlp {
  readonly variables: TF.Variable[] = [];
  private host: Float32Array[] = [];
  /** The float32 SIMD pass that acts on the host copy (sized for the largest batch asked so far). */
  private hostPass?: HostMlpPass;

  constructor(
    private readonly tf: Tf,
    readonly spec: MlpSpec,
    rng: Rng,
    private readonly nodeId: string,
  ) {
    const { sizes } = spec;
    for (let l = 0; l + 1 < sizes.length; l++) {
      const w = orthogonal(sizes[l], sizes[l + 1], spec.gains[l], rng);
      // Unnamed: tfjs names variables uniquely, so several runs can share one process.
      this.variables.push(variableFrom(tf, tf.tensor2d(w, [sizes[l], sizes[l + 1]])));
      this.variables.push(variableFrom(tf, tf.zeros([sizes[l + 1]])));
      this.host.push(w, new Float32Array(sizes[l + 1]));
    }
    this.refreshHostPass();
  }

  /** The host pass reads the host copy's weights; call after every change of `host`. */
  private refreshHostPass(): void {
    this.hostPass?.loadParams(this.host);
  }

  get inputSize(): number {
    return this.spec.sizes[0];
  }

  get outputSize(): number {
    return this.spec.sizes[this.spec.sizes.length - 1];
  }

  /** Differentiable forward pass: [batch, in] -> [batch, out]. */
  apply(x: TF.Tensor2D): TF.Tensor2D {
    const tf = this.tf;
    let h: TF.Tensor2D = x;
    const layers = this.variables.length / 2;
    for (let l = 0; l < layers; l++) {
      const z = dense(tf, h, this.variables[2 * l] as TF.Tensor2D, this.variables[2 * l + 1] as TF.Tensor1D);
      h = l + 1 < layers ? (this.spec.activation === 'tanh' ? tf.tanh(z) : tf.relu(z)) : z;
    }
    return h;
  }

  /** Copy the weights to the host; a NaN or infinity is reported against this node. */
  async syncHost(): Promise<void> {
    const arrays = await Promise.all(this.variables.map((v) => v.data() as Promise<Float32Array>));
    arrays.forEach((a, i) => {
      for (let k = 0; k < a.length; k++) {
        if (!Number.isFinite(a[k])) {
          const what = `${i % 2 === 0 ? 'weight' : 'bias'} of layer ${Math.floor(i / 2) + 1}`;
          throw new NonFiniteError(this.nodeId, 'weights', `${what}, entry ${k} = ${a[k]}`);
        }
      }
    });
    this.host = arrays;
    this.refreshHostPass();
  }

  /** Host forward pass for `count` rows of `input` (row-major); writes [count, out] into `out`. */
  forwardHost(input: Float32Array, count: number, out: Float32Array, inputOffset = 0): void {
    if (!this.hostPass || this.hostPass.batch < count) {
      this.hostPass = new HostMlpPass(this.spec.sizes, this.spec.activation, Math.max(count, 1));
      this.hostPass.loadParams(this.host);
    }
    const y = this.hostPass.forward(input, count, inputOffset);
    for (let k = 0; k < count * this.outputSize; k++) out[k] = y[k];
  }

  /** Copies of the current weights [W0, b0, W1, b1, ...], for an update done on the host. */
  async readParams(): Promise<Float32Array[]> {
    const arrays = await Promise.all(this.variables.map((v) => v.data() as Promise<Float32Array>));
    return arrays.map((a) => Float32Array.from(a));
  }

  /** Write weights updated on the host back into the variables (and the host copy used for acting). */
  writeParams(arrays: Float32Array[]): void {
    this.variables.forEach((v, i) => {
      const value = this.tf.tensor(arrays[i], v.shape);
      v.assign(value);
      value.dispose();
      this.host[i] = Float32Array.from(arrays[i]);
    });
    this.refreshHostPass();
  }

  /** Number of trainable parameters. */
  get parameterCount(): number {
    return this.variables.reduce((n, v) => n + v.size, 0);
  }

  /** The current weights (read from the variables, not the host copy of the last sync). */
  async saveArrays(): Promise<Record<string, Float32Array>> {
    const arrays = await Promise.all(this.variables.map((v) => v.data() as Promise<Float32Array>));
    return Object.fromEntries(arrays.map((a, i) => [`p${i}`, Float32Array.from(a)]));
  }

  loadArrays(arrays: Record<string, ArrayLike<number>>): void {
    this.variables.forEach((v, i) => {
      const a = arrays[`p${i}`];
      if (!a || a.length !== v.size) throw new Error(`weights p${i}: expected ${v.size} values`);
      const data = Float32Array.from(a);
      const value = this.tf.tensor(data, v.shape);
      v.assign(value);
      value.dispose();
      this.host[i] = data;
    });
    this.refreshHostPass();
  }

  dispose(): void {
    for (const v of this.variables) v.dispose();
  }
}

/** A trainable variable holding `initial`'s values; the temporary tensor is freed. */
export function variableFrom(tf: Tf, initial: TF.Tensor): TF.Variable {
  const variable = tf.variable(initial, true);
  initial.dispose();
  return variable;
}

type Dense = (x: TF.Tensor2D, w: TF.Tensor2D, b: TF.Tensor1D) => TF.Tensor2D;
const denseByTf = new WeakMap<Tf, Dense>();

/**
 * x @ W + b with a hand-written gradient that transposes explicitly: the WebAssembly backend's matMul
 * with a transpose flag (what tfjs's own matMul gradient uses) is several times slower than transpose +
 * matMul on these shapes.
 */
export function dense(tf: Tf, x: TF.Tensor2D, w: TF.Tensor2D, b: TF.Tensor1D): TF.Tensor2D {
  let op = denseByTf.get(tf);
  if (!op) {
    const custom = tf.customGrad((...inputs: (TF.Tensor | TF.GradSaveFunc)[]) => {
      const [x, w, b, save] = inputs as [TF.Tensor, TF.Tensor, TF.Tensor, TF.GradSaveFunc];
      save([x, w]);
      const value = tf.add(tf.matMul(x as TF.Tensor2D, w as TF.Tensor2D), b);
      const gradFunc = (dy: TF.Tensor, saved: TF.Tensor[]) => {
        const [sx, sw] = saved as [TF.Tensor2D, TF.Tensor2D];
        return [
          tf.matMul(dy as TF.Tensor2D, tf.transpose(sw)),
          tf.matMul(tf.transpose(sx), dy as TF.Tensor2D),
          tf.sum(dy, 0),
        ];
      };
      return { value, gradFunc };
    }) as unknown as Dense;
    op = custom;
    denseByTf.set(tf, op);
  }
  return op(x, w, b);
}
