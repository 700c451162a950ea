/**
 * Every node must run on every backend. On WebGPU, synchronous read-backs (`dataSync`, `arraySync`,
 * `bufferSync`) throw in Node (they need OffscreenCanvas), and they stall a GPU pipeline anyway: the
 * engine and the nodes read tensors with `await tensor.data()` only.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
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
    for (const file of [
      ...sources(path.join(repoRoot, 'nodes')),
      ...sources(path.join(repoRoot, 'src-main/engine')),
    ]) {
      readFileSync(file, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (/\.(dataSync|arraySync|bufferSync)\s*\(/.test(line))
            offenders.push(`${path.relative(repoRoot, file)}:${i + 1}`);
        });
    }
    expect(offenders, 'use `await tensor.data()` instead').toEqual([]);
  });
});
