/**
 * A minimal WebAssembly assembler: the binary encoding of a module of functions with i32 parameters, built
 * from readable instruction lists (`Fn`), so the SIMD kernels need no build step and no binary in the
 * repository. Only the instructions the kernels use.
 */
export const I32 = 0x7f;
export const F32 = 0x7d;
export const V128 = 0x7b;
export const F64 = 0x7c;

export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

export function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    const done = (n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

export function f32Bytes(v: number): number[] {
  return [...new Uint8Array(Float32Array.of(v).buffer)];
}

export function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

export function utf8(s: string): number[] {
  const bytes = [...new TextEncoder().encode(s)];
  return [...uleb(bytes.length), ...bytes];
}

/** One function body under construction: named locals and the instructions used by the kernels. */
export class Fn {
  readonly code: number[] = [];
  private readonly locals: number[] = [];
  private readonly names = new Map<string, number>();

  constructor(
    readonly name: string,
    readonly params: string[],
  ) {
    params.forEach((p, i) => {
      this.names.set(p, i);
    });
  }

  local(name: string, type: number): this {
    this.names.set(name, this.params.length + this.locals.length);
    this.locals.push(type);
    return this;
  }

  private idx(name: string): number {
    const i = this.names.get(name);
    if (i === undefined) throw new Error(`wasm-simd: unknown local ${name}`);
    return i;
  }

  get(name: string): this {
    this.code.push(0x20, ...uleb(this.idx(name)));
    return this;
  }
  set(name: string): this {
    this.code.push(0x21, ...uleb(this.idx(name)));
    return this;
  }
  i32(v: number): this {
    this.code.push(0x41, ...sleb(v));
    return this;
  }
  f32(v: number): this {
    this.code.push(0x43, ...f32Bytes(v));
    return this;
  }
  f64(v: number): this {
    this.code.push(0x44, ...new Uint8Array(new Float64Array([v]).buffer));
    return this;
  }
  op(...bytes: number[]): this {
    this.code.push(...bytes);
    return this;
  }
  /** i32 a + b, a * b of two locals or constants pushed by the callbacks. */
  add(): this {
    return this.op(0x6a);
  }
  mul(): this {
    return this.op(0x6c);
  }
  /** Calls the module's function number `index` (its arguments already on the stack). */
  call(index: number): this {
    return this.op(0x10, ...uleb(index));
  }
  f32Load(): this {
    return this.op(0x2a, 2, 0);
  }
  f32Store(): this {
    return this.op(0x38, 2, 0);
  }
  v128Load(): this {
    return this.op(0xfd, 0x00, 4, 0);
  }
  v128Store(): this {
    return this.op(0xfd, 0x0b, 4, 0);
  }
  /** Loop while `cond` (pushes an i32) holds: block { loop { if !cond break; body; continue } }. */
  whileLoop(cond: (f: this) => void, body: (f: this) => void): this {
    this.op(0x02, 0x40, 0x03, 0x40);
    cond(this);
    this.op(0x45, 0x0d, 1); // i32.eqz; br_if to the block's end
    body(this);
    this.op(0x0c, 0, 0x0b, 0x0b); // br to the loop's start; end loop; end block
    return this;
  }
  ifThen(cond: (f: this) => void, body: (f: this) => void): this {
    cond(this);
    this.op(0x04, 0x40);
    body(this);
    this.op(0x0b);
    return this;
  }
  /**
   * for (counter = 0; counter + step <= limit; counter += step) body(step), then the rest of the range
   * by tailStep: body(tailStep) (a register block, then its tail).
   */
  blocked(
    counter: string,
    limit: string,
    step: number,
    tailStep: number,
    body: (size: number) => void,
  ): this {
    this.i32(0).set(counter);
    for (const size of [step, tailStep]) {
      this.whileLoop(
        (g) =>
          g
            .get(counter)
            .i32(size - 1)
            .add()
            .get(limit)
            .op(I32_LT_S),
        (g) => {
          body(size);
          g.bump(counter, size);
        },
      );
    }
    return this;
  }

  /** local += step (i32). */
  bump(name: string, step: number): this {
    return this.get(name).i32(step).add().set(name);
  }

  body(): number[] {
    const groups = this.locals.map((t) => [1, t]);
    const inner = [...vec(groups), ...this.code, 0x0b];
    return [...uleb(inner.length), ...inner];
  }
}

export const F32X4_SPLAT = [0xfd, 0x13];
export const F32X4_ADD = [0xfd, 0xe4, 0x01];
export const F32X4_SUB = [0xfd, 0xe5, 0x01];
export const F32X4_MUL = [0xfd, 0xe6, 0x01];
/** f32x4.relaxed_madd: a * b + c, one fused instruction where the CPU has FMA (relaxed SIMD). */
export const F32X4_RELAXED_MADD = [0xfd, 0x85, 0x02];
export const F32_ADD = [0x92];
export const F32_MUL = [0x94];
export const extractLane = (lane: number) => [0xfd, 0x1f, lane];
export const I32_LT_S = 0x48;

/** The module's bytes; `shared` imports a shared memory (limits: flag 3, min 1, max 65536 pages). */
export function assemble(fns: Fn[], shared: boolean): Uint8Array<ArrayBuffer> {
  const section = (id: number, payload: number[]) => [id, ...uleb(payload.length), ...payload];
  const types = fns.map((f) => [0x60, ...vec(f.params.map(() => [I32])), 0]);
  const bytes = [
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, vec(types)),
    ...section(
      2,
      vec([
        [...utf8('env'), ...utf8('memory'), 0x02, ...(shared ? [0x03, 0x01, ...uleb(65536)] : [0x00, 0x01])],
      ]),
    ),
    ...section(3, vec(fns.map((_, i) => uleb(i)))),
    ...section(7, vec(fns.map((f, i) => [...utf8(f.name), 0x00, ...uleb(i)]))),
    ...section(10, vec(fns.map((f) => f.body()))),
  ];
  return new Uint8Array(bytes);
}

/** A module with one function (v128, v128, v128) -> v128 that returns f32x4.relaxed_madd of its params. */
const RELAXED_SIMD_PROBE = new Uint8Array([
  ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
  ...[1, 8, 1, 0x60, 3, V128, V128, V128, 1, V128],
  ...[3, 2, 1, 0],
  ...[10, 13, 1, 11, 0, 0x20, 0, 0x20, 1, 0x20, 2, ...F32X4_RELAXED_MADD, 0x0b],
]);

let relaxedSimd: boolean | undefined;

/**
 * Whether modules may use relaxed SIMD. Chromium, Electron and Node 22+ ship it; Node 20's V8 has it
 * behind a flag, which V8 takes at run time as long as no module needed it yet, so set it there.
 */
export function relaxedSimdAvailable(): boolean {
  if (relaxedSimd === undefined) {
    relaxedSimd = WebAssembly.validate(RELAXED_SIMD_PROBE);
    const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
    const v8 = proc?.getBuiltinModule?.('node:v8') as
      | { setFlagsFromString?: (flags: string) => void }
      | undefined;
    if (!relaxedSimd && v8?.setFlagsFromString) {
      v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
      relaxedSimd = WebAssembly.validate(RELAXED_SIMD_PROBE);
    }
  }
  return relaxedSimd;
}
