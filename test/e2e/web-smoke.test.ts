/**
 * End-to-end smoke test: Debian's Chromium (headless, through playwright-core) drives the real UI in web
 * mode against the real engine. Controls are found by role and accessible name, as a person finds them.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureRendererBuilt } from '../../src-main/server/renderer-build.ts';
import { startWebServer, type WebServer } from '../../src-main/server/web-server.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && process.env.CI)
  throw new Error(`Chromium is missing at ${CHROMIUM}: .ci/run installs it (apt-get install chromium).`);

async function waitFor<T>(
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

describe.skipIf(!haveChromium)('web mode in Chromium', () => {
  let tmp: string;
  let server: WebServer;
  let context: BrowserContext;
  let page: Page;

  const readout = (name: string) => page.getByRole('status', { name, exact: true });
  const stateWord = () => readout('run state').textContent();
  const metricPoints = async () => Number(await readout('metric points').textContent());
  const waitForState = (word: string) => waitFor(`run state '${word}'`, stateWord, (s) => s === word);

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'studio-e2e-'));
    // A fresh build of the current sources, so the test never runs an old UI.
    const rendererDir = await ensureRendererBuilt({ outDir: path.join(tmp, 'renderer'), force: true });
    server = await startWebServer({ port: 0, dataDir: path.join(tmp, 'data'), rendererDir, log: () => {} });
    context = await chromium.launchPersistentContext(path.join(tmp, 'profile'), {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
    page = context.pages()[0] ?? (await context.newPage());
  });

  afterAll(async () => {
    await context?.close();
    await server?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('loads the CartPole template, runs, pauses, resumes, survives a reload and stops', async () => {
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') pageErrors.push(message.text());
    });

    await page.goto(server.url);
    // The token moves out of the address bar (kept for this tab only).
    await waitFor(
      'the token to leave the URL',
      async () => page.url(),
      (u) => !u.includes('token='),
    );
    expect(await stateWord()).toBe('idle');

    // First start: the template gallery opens by itself.
    const gallery = page.getByRole('dialog', { name: 'Templates' });
    await gallery.getByRole('heading', { name: 'PPO on CartPole' }).waitFor();
    expect(await gallery.getByText('Expected result:').count()).toBeGreaterThan(0);
    await gallery.getByRole('button', { name: 'Load PPO on CartPole' }).click();

    await page.getByRole('heading', { name: 'PPO on CartPole', level: 2 }).waitFor();
    // The six nodes are on the canvas.
    await waitFor(
      '6 nodes on the canvas',
      () => page.getByRole('group', { name: /^Node / }).count(),
      (n) => n === 6,
    );

    await page.getByRole('spinbutton', { name: 'Iterations' }).fill('400');
    // The run settings offer every backend; this run asks for WebAssembly explicitly.
    const backendChoice = page.getByRole('combobox', { name: 'Backend' });
    expect(await backendChoice.locator('option').allTextContents()).toEqual(
      expect.arrayContaining(['WebGPU (GPU)', 'WebAssembly', 'auto (best available)']),
    );
    await backendChoice.selectOption('wasm');
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await waitForState('running');
    await waitFor('metric points', metricPoints, (n) => n >= 3);
    expect(await readout('backend').textContent()).toBe('wasm');
    expect(
      await page
        .getByRole('table', { name: 'latest metrics' })
        .getByText('rollout/episode_return_mean')
        .count(),
    ).toBe(1);

    await page.getByRole('button', { name: 'Pause' }).click();
    await waitForState('paused');
    const paused = await metricPoints();
    await new Promise((r) => setTimeout(r, 1500));
    expect(await metricPoints()).toBe(paused);

    await page.getByRole('button', { name: 'Resume' }).click();
    await waitForState('running');
    const resumed = await waitFor('metric points after resume', metricPoints, (n) => n >= paused + 3);

    // A reload re-subscribes to the running run and gets its whole history.
    await page.reload();
    await waitForState('running');
    await waitFor('history after reload', metricPoints, (n) => n >= resumed);

    await page.getByRole('button', { name: 'Stop' }).click();
    await waitForState('stopped');
    expect(await readout('last checkpoint').textContent()).toMatch(/^\d+$/);
    expect(pageErrors).toEqual([]);
  });
});
