/**
 * Desktop build (`npm run build`): main process, preload and renderer into out/. The engine's worker is a
 * second main-process entry, emitted as out/main/worker.js beside the chunk holding worker-run.ts (chunks
 * stay flat in out/main), which is where WorkerRun looks for it.
 */
import { readFileSync } from 'node:fs';
import { defineConfig } from 'electron-vite';
import type { Plugin } from 'vite';
import renderer from './src-renderer/vite.config.ts';

// electron-vite reads Electron's version from node_modules/electron, which npm leaves out where Electron
// cannot be installed (an optional dependency): take the major version from package.json instead.
const pkg = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')) as {
  optionalDependencies?: Record<string, string>;
};
process.env.ELECTRON_MAJOR_VER ??= (pkg.optionalDependencies?.electron ?? '45')
  .replace(/^\D*/, '')
  .split('.')[0];

/**
 * electron-vite's ESM shim declares `require` at the top of a chunk that uses it; a module that declares
 * its own `require = createRequire(import.meta.url)` (the engine's backend.ts) would then declare it twice.
 * Both are the same function, so the module's copy is dropped.
 */
function dedupeRequireShim(): Plugin {
  const duplicate = /^(?:var|let|const) require = createRequire\(import\.meta\.url\);\n/m;
  return {
    name: 'studio:dedupe-require-shim',
    enforce: 'post',
    renderChunk(code) {
      if (
        !code.includes('require = __shims_module__.createRequire(import.meta.url)') ||
        !duplicate.test(code)
      )
        return null;
      return { code: code.replace(duplicate, ''), map: null };
    },
  };
}

export default defineConfig({
  main: {
    plugins: [dedupeRequireShim()],
    build: {
      outDir: 'out/main',
      rolldownOptions: {
        input: { index: 'src-main/electron/main.ts', worker: 'src-main/engine/runtime/worker.ts' },
        output: { entryFileNames: '[name].js', chunkFileNames: '[name]-[hash].js' },
      },
    },
  },
  preload: {
    build: {
      outDir: 'out/preload',
      rolldownOptions: {
        input: { index: 'src-main/electron/preload.ts' },
        // A sandboxed preload must be CommonJS.
        output: { format: 'cjs', entryFileNames: '[name].cjs' },
      },
    },
  },
  renderer: {
    ...renderer,
    build: {
      ...renderer.build,
      outDir: 'out/renderer',
      rolldownOptions: { input: 'src-renderer/index.html' },
    },
  },
});
