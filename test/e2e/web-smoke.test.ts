/**
 * End-to-end smoke test: Debian's Chromium (headless, through playwright-core) drives the real UI in web
 * mode against the real engine. Controls are found by role and accessible name, as a person finds them.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebServer } from '../../src-main/server/web-server.ts';
import { haveChromium, openStudioInChromium, type StudioInChromium, waitFor } from '../helpers/browser.ts';

describe.skipIf(!haveChromium)('web mode in Chromium', () => {
  let studio: StudioInChromium;
  let server: WebServer;
  let page: Page;

  const readout = (name: string) => page.getByRole('status', { name, exact: true });
  const stateWord = () => readout('run state').textContent();
  const metricPoints = async () => Number(await readout('metric points').textContent());
  const waitForState = (word: string) => waitFor(`run state '${word}'`, stateWord, (s) => s === word);

  beforeAll(async () => {
    studio = await openStudioInChromium({ prefix: 'studio-e2e-' });
    ({ server, page } = studio);
  }, 180_000);

  afterAll(async () => {
    await studio?.close();
  });

  it('loads the CartPole template, runs, pauses, resumes, survives a reload and stops', async () => {
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

    await page.getByRole('spinbutton', { name: 'Iterations' }).fill('5000');
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
    expect(studio.pageErrors).toEqual([]);
  });
});
