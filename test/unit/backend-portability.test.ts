/**
 * Every node must run on every backend. On WebGPU, synchronous read-backs (`dataSync`, `arraySync`,
 * `bufferSync`) throw in Node (they need OffscreenCanvas), and they stall a GPU pipeline anyway: the
 * engine and the nodes read tensors with `await tensor.data()` only.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type * as TF from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { startBackend } from '../../src-main/engine/backend.ts';
import { readInto, readOnCpu } from '../../src-main/engine/nn/cpu-read.ts';
import type { Tf } from '../../src-main/engine/node-api.ts';
import { repoRoot } from '../helpers/graphs.ts';

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return sources(full);
    return name.endsWith('.ts') ? [full] : [];
  });
}

describe('backend portability', () => {
  it('no synchronous tensor read-back in the engine or the node library', () => {
    const offenders: string[] = [];
    // The one exception: host ops inside autodiff cannot await; this helper reads only on the CPU backends
    // (data already in host memory) and refuses elsewhere.
    const cpuRead = path.join(repoRoot, 'src-main/engine/nn/cpu-read.ts');
    expect(readFileSync(cpuRead, 'utf8')).toMatch(/if \(!isCpuBackend\(tf\)\) throw/);
    for (const file of [
      ...sources(path.join(repoRoot, 'nodes')),
      ...sources(path.join(repoRoot, 'src-main/engine')),
    ].filter((f) => f !== cpuRead)) {
      readFileSync(file, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (/\.(dataSync|arraySync|bufferSync)\s*\(/.test(line))
            offenders.push(`${path.relative(repoRoot, file)}:${i + 1}`);
        });
    }
    expect(offenders, 'use `await tensor.data()` instead').toEqual([]);
  });

  it('the CPU-only synchronous read refuses a GPU backend by name', () => {
    const gpu = { getBackend: () => 'webgpu' } as unknown as Tf;
    expect(() => readOnCpu(gpu, {} as TF.Tensor)).toThrow(/webgpu backend/);
  });

  it.each(['wasm', 'cpu'] as const)(
    'readInto copies a tensor into a buffer at an offset (%s)',
    async (name) => {
      const { tf } = await startBackend(name);
      const values = Float32Array.from({ length: 37 }, (_, i) => Math.sin(i) * 100);
      // A computed tensor, not only one written from an array, and one that shares data (a reshape).
      const computed = tf.tidy(() => tf.add(tf.tensor1d(values), 0.5));
      const reshaped = tf.reshape(computed, [37, 1]);
      const target = new Float32Array(80).fill(-1);
      readInto(tf, computed, target, 3);
      readInto(tf, reshaped, target, 40);
      const expected = Array.from(values, (v) => Math.fround(v + 0.5));
      expect(Array.from(target.subarray(3, 40))).toEqual(expected);
      expect(Array.from(target.subarray(40, 77))).toEqual(expected);
      expect([target[2], target[77]]).toEqual([-1, -1]);
      tf.dispose([computed, reshaped]);
    },
  );
});
