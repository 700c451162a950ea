/**
 * Building the renderer on demand (web mode, `npm start`), with Vite's JavaScript API. Vite is a
 * development dependency: an installed app ships the built renderer and never gets here.
 */
import { existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const RENDERER_SOURCE_DIR = path.join(REPO_ROOT, 'src-renderer');
export const defaultRendererDir = (): string => path.join(REPO_ROOT, 'out', 'renderer');

/** Newest modification time of the files under `dirs` (files given directly count too). */
export async function newestMtime(paths: string[]): Promise<number> {
  let newest = 0;
  const visit = async (p: string): Promise<void> => {
    const info = await stat(p).catch(() => undefined);
    if (!info) return;
    if (info.isDirectory()) {
      if (path.basename(p) === 'node_modules') return;
      for (const entry of await readdir(p)) await visit(path.join(p, entry));
    } else {
      newest = Math.max(newest, info.mtimeMs);
    }
  };
  for (const p of paths) await visit(p);
  return newest;
}

/** The renderer sources and the API types it compiles against. */
const rendererInputs = () => [RENDERER_SOURCE_DIR, path.join(REPO_ROOT, 'src-main', 'api', 'studio-api.ts')];

export async function rendererIsStale(outDir: string): Promise<boolean> {
  const index = path.join(outDir, 'index.html');
  if (!existsSync(index)) return true;
  return (await newestMtime(rendererInputs())) > (await stat(index)).mtimeMs;
}

/** Build the renderer into `outDir` unless it is built and newer than its sources. Returns `outDir`. */
export async function ensureRendererBuilt(
  options: { outDir?: string; force?: boolean; log?: (line: string) => void } = {},
): Promise<string> {
  const outDir = path.resolve(options.outDir ?? defaultRendererDir());
  if (!options.force && !(await rendererIsStale(outDir))) return outDir;
  if (!existsSync(RENDERER_SOURCE_DIR)) {
    throw new Error(`The renderer is not built (${outDir}) and its sources are not here to build it.`);
  }
  options.log?.(`Building the renderer into ${path.relative(process.cwd(), outDir) || outDir} ...`);
  let vite: typeof import('vite');
  try {
    vite = await import('vite');
  } catch (error) {
    throw new Error(`Vite is needed to build the renderer (npm install): ${(error as Error).message}`);
  }
  await vite.build({
    configFile: path.join(RENDERER_SOURCE_DIR, 'vite.config.ts'),
    logLevel: 'warn',
    build: { outDir, emptyOutDir: true },
  });
  return outDir;
}
