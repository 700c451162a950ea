/**
 * Seedable random streams. Every node gets its own stream derived from the run seed and its node id, so
 * adding a node never shifts another node's numbers, and the whole state fits in four integers that a
 * checkpoint stores. Generator: xoshiro128** (Blackman & Vigna), seeded through splitmix32.
 */
export type RngState = [number, number, number, number];

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** FNV-1a over the UTF-16 code units of a string: a stable 32-bit name hash. */
export function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export class Rng {
  private s: Uint32Array;

  constructor(seed: number | RngState) {
    this.s = new Uint32Array(4);
    if (Array.isArray(seed)) {
      this.s.set(seed);
    } else {
      const mix = splitmix32(seed);
      for (let i = 0; i < 4; i++) this.s[i] = mix();
    }
    if ((this.s[0] | this.s[1] | this.s[2] | this.s[3]) === 0) this.s[0] = 1;
  }

  /** A stream for one named consumer (a node id), independent of every other name. */
  static forStream(runSeed: number, name: string): Rng {
    return new Rng((Math.imul(runSeed >>> 0, 0x9e3779b1) ^ hashString(name)) >>> 0);
  }

  /** A child stream derived from this one (consumes one draw). */
  fork(name: string): Rng {
    return new Rng((this.nextUint32() ^ hashString(name)) >>> 0);
  }

  state(): RngState {
    return [this.s[0], this.s[1], this.s[2], this.s[3]];
  }

  setState(state: RngState): void {
    this.s.set(state);
  }

  nextUint32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform in [0, 1) with 32 bits of resolution. */
  float(): number {
    return this.nextUint32() / 4294967296;
  }

  uniform(low: number, high: number): number {
    return low + (high - low) * this.float();
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }

  /** Standard normal by Box-Muller (no cached spare, so the state is only the four words). */
  normal(): number {
    let u = this.float();
    while (u <= 1e-12) u = this.float();
    const v = this.float();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** A random permutation of 0..n-1 (Fisher-Yates). */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = p[i];
      p[i] = p[j];
      p[j] = tmp;
    }
    return p;
  }

  /** Index drawn from unnormalised non-negative weights. */
  categorical(probs: ArrayLike<number>, offset = 0, count = probs.length): number {
    let total = 0;
    for (let i = 0; i < count; i++) total += probs[offset + i];
    let u = this.float() * total;
    for (let i = 0; i < count; i++) {
      u -= probs[offset + i];
      if (u < 0) return i;
    }
    return count - 1;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
