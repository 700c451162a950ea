/**
 * Electronegativity (Doyensec's Electron security scanner) over the app's main process, preload and
 * renderer. Every finding must be fixed or accepted below with its justification; an accepted finding that
 * no longer appears must be removed from the list, so that the list stays true.
 */
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { CONTENT_SECURITY_POLICY } from '../../src-main/api/content-security-policy.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface Finding {
  id: string;
  file: string;
  description: string;
  sample?: string;
  location?: { line: number };
}

/** Findings reviewed and accepted, with the reason. Matched by check id and file. */
const ACCEPTED: { id: string; file: string; why: string }[] = [
  {
    id: 'PRELOAD_JS_CHECK',
    file: 'src-main/electron/main.ts',
    why: 'The preload (src-main/electron/preload.ts) runs sandboxed and context-isolated and exposes only the typed StudioApi through contextBridge: no ipcRenderer, no Node API, no generic send/invoke. Every IPC handler checks that the sender is the main frame of the app window on app://studio.',
  },
  {
    id: 'OPEN_EXTERNAL_JS_CHECK',
    file: 'src-main/electron/main.ts',
    why: 'shell.openExternal is reached only from setWindowOpenHandler (a link the user activated), only for a parsed http: or https: URL, at most once a second; every other scheme (file:, smb:, custom protocol handlers) is refused.',
  },
  {
    id: 'CSP_GLOBAL_CHECK',
    file: 'src-renderer/index.html',
    why: "The only 'maybe weak' directive is script-src 'self' (a risk where the origin hosts JSONP, AngularJS or user uploads). The app's origin (app://studio, or the token-guarded local server) serves only the built renderer bundle; there is no unsafe-inline, no unsafe-eval, object-src and base-uri are 'none'.",
  },
];

/**
 * Checks left out, with the reason. AvailableSecurityFixesGlobalCheck downloads Electron's release list
 * at scan time (no network in CI); the Electron version is pinned in package.json and electron-builder.yml.
 */
const EXCLUDED_CHECKS = ['availablesecurityfixesglobalcheck'];

type Runner = (
  options: Record<string, unknown>,
  forCli?: boolean,
) => Promise<{ issues: Finding[]; errors: { file: string; message: string; tolerable: boolean }[] }>;

describe('Content-Security-Policy', () => {
  it("index.html's meta policy is the one the desktop protocol and the web server send", async () => {
    const html = await readFile(path.join(ROOT, 'src-renderer', 'index.html'), 'utf8');
    const meta = /http-equiv="Content-Security-Policy"\s+content="([^"]+)"/.exec(html)?.[1];
    // frame-ancestors is ignored in a meta tag, so only the header carries it.
    expect(meta).toBe(CONTENT_SECURITY_POLICY.replace("; frame-ancestors 'none'", ''));
    expect(CONTENT_SECURITY_POLICY).not.toMatch(/unsafe-(inline|eval)/);
  });
});

describe('electronegativity', () => {
  let scanDir: string | undefined;

  afterAll(async () => {
    if (scanDir) await rm(scanDir, { recursive: true, force: true });
  });

  it('finds nothing that is not fixed or justified', async () => {
    // Scan exactly what ships in the app's windows and main process (not tests or build output).
    scanDir = await mkdtemp(path.join(os.tmpdir(), 'studio-electronegativity-'));
    for (const part of ['src-main', 'src-renderer', 'package.json'])
      await cp(path.join(ROOT, part), path.join(scanDir, part), { recursive: true });
    const pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as {
      optionalDependencies?: Record<string, string>;
    };
    const electronVersion = pkg.optionalDependencies?.electron?.replace(/^\D*/, '');
    expect(electronVersion).toMatch(/^\d+\.\d+\.\d+$/);

    const run = createRequire(import.meta.url)('@doyensec/electronegativity') as Runner;
    const quiet = console.log;
    console.log = () => {}; // its progress chatter
    let result: Awaited<ReturnType<Runner>>;
    try {
      result = await run({
        input: scanDir,
        isRelative: true,
        isVerbose: false,
        customScan: [],
        excludeFromScan: EXCLUDED_CHECKS,
        electronVersionOverride: electronVersion,
        parserPlugins: [],
      });
    } finally {
      console.log = quiet;
    }

    expect(result.errors.filter((e) => !e.tolerable)).toEqual([]);
    const key = (f: { id: string; file: string }) => `${f.id} @ ${f.file}`;
    const unjustified = result.issues
      .filter((f) => !ACCEPTED.some((a) => key(a) === key(f)))
      .map(
        (f) =>
          `${key(f)}:${f.location?.line ?? 0} ${f.description} ${f.sample ? `(${f.sample.slice(0, 120)})` : ''}`,
      );
    expect(unjustified).toEqual([]);
    const stale = ACCEPTED.filter((a) => !result.issues.some((f) => key(f) === key(a))).map(key);
    expect(stale).toEqual([]);
  }, 60_000);
});
