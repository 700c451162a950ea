/**
 * The Export dialog in the real UI (web mode, headless Chromium): a highlighted read-only preview of the
 * exported module, Copy and Save as (a download with the module's file name).
 */
import { readFile } from 'node:fs/promises';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRegistry } from '../../nodes/index.ts';
import { exportGraph } from '../../src-main/engine/export/index.ts';
import type { WebServer } from '../../src-main/server/web-server.ts';
import { haveChromium, openStudioInChromium, type StudioInChromium } from '../helpers/browser.ts';
import { loadTemplate } from '../helpers/graphs.ts';

describe.skipIf(!haveChromium)('Export dialog in Chromium', () => {
  let studio: StudioInChromium;
  let server: WebServer;
  let context: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    studio = await openStudioInChromium({ prefix: 'studio-export-e2e-' });
    ({ server, context, page } = studio);
  }, 180_000);

  afterAll(async () => {
    await studio?.close();
  });

  it('previews, copies and saves the exported CartPole module', async () => {
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(server.url);
    // First start: the template gallery opens by itself.
    await page
      .getByRole('dialog', { name: 'Templates' })
      .getByRole('button', { name: 'Load PPO on CartPole' })
      .click();
    await page.getByRole('heading', { name: 'PPO on CartPole', level: 2 }).waitFor();

    await page.getByRole('button', { name: 'Export' }).click();
    const dialog = page.getByRole('dialog', { name: 'Export as TypeScript: ppo-on-cartpole.ts' });
    await dialog.waitFor();
    const preview = dialog.getByRole('region', { name: 'exported code' });
    const expected = exportGraph(loadTemplate('cartpole-ppo'), createRegistry()).code;
    expect(await preview.textContent()).toBe(expected);
    expect(await preview.locator('.tok-keyword').count()).toBeGreaterThan(10);
    expect(await preview.locator('.tok-string').count()).toBeGreaterThan(10);
    expect(await preview.locator('[contenteditable], textarea, input').count()).toBe(0);

    await context.grantPermissions(['clipboard-read', 'clipboard-write'], {
      origin: new URL(server.url).origin,
    });
    await dialog.getByRole('button', { name: 'Copy' }).click();
    await dialog.getByRole('status', { name: 'copy status' }).getByText('Copied to the clipboard.').waitFor();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(expected);

    const [download] = await Promise.all([
      page.waitForEvent('download'),
      dialog.getByRole('button', { name: 'Save as…' }).click(),
    ]);
    expect(download.suggestedFilename()).toBe('ppo-on-cartpole.ts');
    expect(await readFile((await download.path())!, 'utf8')).toBe(expected);

    await dialog.getByRole('button', { name: 'Close' }).click();
    expect(await dialog.isVisible()).toBe(false);
    expect(pageErrors).toEqual([]);
  });
});
