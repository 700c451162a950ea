/**
 * The LLM agent on every backend this machine can start: training and generation tokens/s at the default
 * size and at a larger GPU preset, with the ratio to WebAssembly (the GPU goal: >= 10x for the larger
 * preset). A software GPU adapter (SwiftShader) is measured only when asked for: it is a correctness
 * path, far slower than WebAssembly.
 */
import { type BackendInfo, startBackend } from '../../src-main/engine/backend.ts';
import type { BackendName } from '../../src-main/engine/graph/types.ts';
import { DEFAULT_SHAPE, LARGE_SHAPE, measureTokenRates, type TokenRates } from './llm.ts';
import { fmt, type Row, ratio, type Section } from './table.ts';

export async function benchBackends(options: { softwareGpu?: boolean } = {}): Promise<Section> {
  const rows: Row[] = [];
  const notes: string[] = [];
  const presets = [
    { name: 'default', shape: DEFAULT_SHAPE, trainSteps: 8, newTokens: 64, batch: 16 },
    // Batch 4: the 32-bit WebAssembly heap cannot hold batch 16's attention activations at this size.
    { name: 'large', shape: LARGE_SHAPE, trainSteps: 2, newTokens: 16, batch: 4 },
  ];
  const wasm: Record<string, TokenRates> = {};
  for (const backend of ['wasm', 'webgpu', 'tensorflow'] as BackendName[]) {
    let info: BackendInfo;
    try {
      info = await startBackend(backend);
    } catch (error) {
      notes.push(`${backend}: not available (${(error as Error).message})`);
      continue;
    }
    if (backend === 'webgpu' && /software adapter/.test(info.detail) && !options.softwareGpu) {
      notes.push(
        `webgpu: skipped, only a software adapter (${info.detail}); --software-gpu measures it anyway`,
      );
      continue;
    }
    notes.push(`${backend}: ${info.detail}`);
    for (const preset of presets) {
      console.error(`bench: ${backend} ${preset.name}...`);
      let r: TokenRates;
      try {
        r = await measureTokenRates({ backend, ...preset });
      } catch (error) {
        notes.push(`${backend} ${preset.name}: failed (${(error as Error).message.split('\n')[0]})`);
        continue;
      }
      if (backend === 'wasm') wasm[preset.name] = r;
      const base = wasm[preset.name];
      rows.push(
        [
          `${preset.name} (${fmt(r.parameters / 1e6, 1)}M) training tokens/s`,
          backend,
          fmt(r.trainTokensPerSecond, 1),
          ratio(r.trainTokensPerSecond, base?.trainTokensPerSecond),
        ],
        [
          `${preset.name} generation tokens/s (KV cache)`,
          backend,
          fmt(r.generateKvTokensPerSecond, 1),
          ratio(r.generateKvTokensPerSecond, base?.generateKvTokensPerSecond),
        ],
      );
    }
  }
  return {
    title: 'LLM agent per backend (batch 16 default, 4 large)',
    header: ['figure', 'backend', 'tokens/s', 'vs wasm'],
    rows,
    notes,
  };
}
