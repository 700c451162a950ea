/**
 * `npm start`: opens the desktop app where Electron can run; elsewhere (no display, or Electron's binary
 * could not be had) it says why in one line and starts web mode, printing the URL. Builds what it needs
 * first (the renderer, and for the desktop app the Electron bundles).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { newestMtime, REPO_ROOT } from './server/renderer-build.ts';
import { runServe } from './server/serve.ts';

export type ElectronCheck = { ok: true; binary: string } | { ok: false; reason: string };

const ELECTRON_MIN_NODE = [22, 12];

/** Electron's binary, downloading it on first use as `electron` itself would; or why there is none. */
export function findElectron(options: { download?: boolean } = {}): ElectronCheck {
  const require = createRequire(path.join(REPO_ROOT, 'package.json'));
  let dir: string;
  try {
    dir = path.dirname(require.resolve('electron/package.json'));
  } catch {
    const [major, minor] = process.versions.node.split('.').map(Number);
    const tooOld =
      major < ELECTRON_MIN_NODE[0] || (major === ELECTRON_MIN_NODE[0] && minor < ELECTRON_MIN_NODE[1]);
    return {
      ok: false,
      reason: tooOld
        ? `Electron is not installed (npm skips it on Node ${process.versions.node}; it needs Node >= ${ELECTRON_MIN_NODE.join('.')})`
        : 'Electron is not installed (npm skipped this optional dependency here)',
    };
  }
  const binary = (): string | undefined => {
    const override = process.env.ELECTRON_OVERRIDE_DIST_PATH;
    const pathFile = path.join(dir, 'path.txt');
    const name = existsSync(pathFile) ? readFileSync(pathFile, 'utf8').trim() : undefined;
    const candidate = override
      ? path.join(override, name ?? 'electron')
      : name
        ? path.join(dir, 'dist', name)
        : undefined;
    return candidate && existsSync(candidate) ? candidate : undefined;
  };
  let found = binary();
  if (!found && options.download !== false && existsSync(path.join(dir, 'install.js'))) {
    process.stdout.write("Downloading Electron's binary (first start)...\n");
    spawnSync(process.execPath, [path.join(dir, 'install.js')], { stdio: 'ignore', timeout: 10 * 60_000 });
    found = binary();
  }
  return found
    ? { ok: true, binary: found }
    : { ok: false, reason: "Electron's binary is missing and could not be downloaded" };
}

/** Whether a window can be shown: always on macOS and Windows; elsewhere an X11 or Wayland display. */
export function displayAvailable(env: NodeJS.ProcessEnv = process.env, platform = process.platform): boolean {
  if (platform === 'darwin' || platform === 'win32') return true;
  return Boolean(env.DISPLAY || env.WAYLAND_DISPLAY);
}

async function ensureElectronBuilt(): Promise<void> {
  const main = path.join(REPO_ROOT, 'out', 'main', 'index.js');
  const inputs = ['src-main', 'src-renderer', 'nodes', 'electron.vite.config.ts'].map((p) =>
    path.join(REPO_ROOT, p),
  );
  const built = existsSync(main) ? (await stat(main)).mtimeMs : 0;
  if (built && (await newestMtime(inputs)) <= built) return;
  process.stdout.write('Building the desktop app...\n');
  const { build } = await import('electron-vite');
  await build({
    configFile: path.join(REPO_ROOT, 'electron.vite.config.ts'),
    root: REPO_ROOT,
    logLevel: 'warn',
  });
}

async function startDesktop(binary: string): Promise<void> {
  await ensureElectronBuilt();
  const env = { ...process.env };
  delete env.ELECTRON_RUN_AS_NODE;
  const child = spawn(binary, [REPO_ROOT, ...process.argv.slice(2)], { stdio: 'inherit', env });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}

export async function start(): Promise<void> {
  const display = displayAvailable();
  // Without a display there is no point downloading Electron now.
  const electron = findElectron({ download: display });
  if (electron.ok && display) return startDesktop(electron.binary);
  const reason = electron.ok
    ? 'No display for the desktop window (DISPLAY and WAYLAND_DISPLAY are unset)'
    : electron.reason;
  process.stdout.write(`${reason}: starting web mode instead.\n`);
  const code = await runServe(process.argv.slice(2), { announceBuild: false });
  if (code !== undefined) process.exitCode = code;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  start().catch((error: Error) => {
    process.stderr.write(`Cannot start: ${error.message}\n`);
    process.exitCode = 1;
  });
}
