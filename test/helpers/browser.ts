/**
 * End-to-end set-up shared by the Chromium tests: a fresh renderer build of the current sources, the web
 * server on a free port with its own data folder, and Debian's Chromium (headless, through playwright-core)
 * on a persistent profile, so reloads keep IndexedDB as a person's browser does.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { ensureRendererBuilt } from '../../src-main/server/renderer-build.ts';
import { startWebServer, type WebServer } from '../../src-main/server/web-server.ts';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && process.env.CI)
  throw new Error(`Chromium is missing at ${CHROMIUM}: .ci/run installs it (apt-get install chromium).`);

/** Poll `probe` until `ok`; the error names what was awaited and the last value seen. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T>,
  ok: (value: T) => boolean,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T = await probe();
  while (!ok(last)) {
    if (Date.now() > deadline)
      throw new Error(`Timed out waiting for ${what} (last value: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 100));
    last = await probe();
  }
  return last;
}

export interface StudioInChromium {
  tmp: string;
  server: WebServer;
  context: BrowserContext;
  page: Page;
  /** Uncaught page errors and console errors, for tests to assert there were none. */
  pageErrors: string[];
  close(): Promise<void>;
}

export async function openStudioInChromium(options: {
  prefix: string;
  viewport?: { width: number; height: number };
}): Promise<StudioInChromium> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), options.prefix));
  // A fresh build of the current sources, so a test never runs an old UI.
  const rendererDir = await ensureRendererBuilt({ outDir: path.join(tmp, 'renderer'), force: true });
  const server = await startWebServer({
    port: 0,
    dataDir: path.join(tmp, 'data'),
    rendererDir,
    log: () => {},
  });
  const context = await chromium.launchPersistentContext(path.join(tmp, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    acceptDownloads: true,
    ...(options.viewport ? { viewport: options.viewport } : {}),
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const pageErrors: string[] = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') pageErrors.push(message.text());
  });
  return {
    tmp,
    server,
    context,
    page,
    pageErrors,
    async close() {
      await context.close();
      await server.close();
      await rm(tmp, { recursive: true, force: true });
    },
  };
}
