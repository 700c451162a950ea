/**
 * The canvas editor in the real UI (web mode, headless Chromium), step by step as a user works: the
 * gallery at first start, drag a node from the palette, wire two handles, an incompatible wire refused
 * with its reason, a parameter edit with validation, undo and redo, auto-layout, reload, restore an older
 * version, and a broken file refused with the open graph left as it was.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebServer } from '../../src-main/server/web-server.ts';
import { haveChromium, openStudioInChromium, type StudioInChromium, waitFor } from '../helpers/browser.ts';

describe.skipIf(!haveChromium)('canvas editor in Chromium', () => {
  let studio: StudioInChromium;
  let server: WebServer;
  let page: Page;

  const canvasNodes = () => page.getByRole('group', { name: /^Node / });
  const nodeCount = () => canvasNodes().count();
  const node = (id: string) => page.locator(`.react-flow__node[data-id="${id}"]`);
  const handle = (nodeId: string, port: string, side: 'source' | 'target') =>
    node(nodeId).locator(`.react-flow__handle.${side}[data-handleid="${port}"]`);
  const wire = (from: string, to: string) =>
    page.getByRole('group', {
      name: new RegExp(`^Wire from ${from.replace('.', '\\.')} to ${to.replace('.', '\\.')}`),
    });

  /** Drag a wire with the mouse, through intermediate points, as a person does. */
  async function dragWire(from: ReturnType<typeof handle>, to: ReturnType<typeof handle>) {
    const a = (await from.boundingBox())!;
    const b = (await to.boundingBox())!;
    await page.mouse.move(a.x + a.width / 2, a.y + a.height / 2);
    await page.mouse.down();
    await page.mouse.move((a.x + b.x) / 2, (a.y + b.y) / 2 + 20, { steps: 6 });
    // Hover the target until the canvas shows the wire reaching it, as a person waits for that feedback
    // (a slow frame can miss one pointer move: nudge the pointer within the handle and look again).
    const reached = async () => ((await to.getAttribute('class')) ?? '').includes('connectingto');
    for (let attempt = 0; attempt < 8; attempt++) {
      const c = (await to.boundingBox())!;
      const nudge = (attempt % 3) - 1;
      await page.mouse.move(c.x + c.width / 2 + nudge, c.y + c.height / 2 + nudge, { steps: 4 });
      const deadline = Date.now() + 1500;
      while (!(await reached()) && Date.now() < deadline) await page.waitForTimeout(50);
      if (await reached()) break;
    }
    expect(await reached(), 'the dragged wire reaches the target handle').toBe(true);
    await page.mouse.up();
  }

  beforeAll(async () => {
    studio = await openStudioInChromium({
      prefix: 'studio-editor-e2e-',
      viewport: { width: 1500, height: 1000 },
    });
    ({ server, page } = studio);
  }, 180_000);

  afterAll(async () => {
    await studio?.close();
  });

  it('edits a pipeline on the canvas and keeps it', async () => {
    await page.goto(server.url);

    // First start: the gallery opens by itself; a template becomes a graph of one's own.
    const gallery = page.getByRole('dialog', { name: 'Templates' });
    await gallery.getByRole('heading', { name: 'PPO on CartPole' }).waitFor();
    await gallery.getByRole('button', { name: 'Load PPO on CartPole' }).click();
    await page.getByRole('heading', { name: 'PPO on CartPole', level: 2 }).waitFor();
    await waitFor('6 nodes on the canvas', nodeCount, (n) => n === 6);
    await page
      .getByRole('status', { name: 'diagnostic summary' })
      .filter({ hasText: 'no problems' })
      .waitFor();

    // Palette: search, then drag a node onto the canvas.
    await page.getByRole('searchbox', { name: 'Search nodes' }).fill('monte');
    const entry = page.getByRole('button', { name: /^Add Monte-Carlo/ });
    await entry.dragTo(page.locator('.react-flow__pane'), { targetPosition: { x: 300, y: 500 } });
    await waitFor('the dropped node', nodeCount, (n) => n === 7);
    const added = (await canvasNodes().last().getAttribute('data-id'))!;
    expect(added).toMatch(/monte/);

    // Wire two handles that fit: rollout's trajectories into the new node.
    await dragWire(handle('rollout', 'trajectories', 'source'), handle(added, 'trajectories', 'target'));
    await wire('rollout.trajectories', `${added}.trajectories`).waitFor();

    // An incompatible wire is refused with the compiler's reason.
    await dragWire(handle('value', 'value', 'source'), handle('gae', 'trajectories', 'target'));
    await page
      .getByRole('alert')
      .filter({ hasText: 'Wire refused: a ValueFn output cannot feed a Trajectories input.' })
      .waitFor();
    expect(await wire('value.value', 'gae.trajectories').count()).toBe(0);
    await page.getByRole('button', { name: 'Dismiss error' }).click();

    // Inspector: a parameter out of bounds is flagged on the field, the node and the Run button.
    await node('gae').click();
    const gamma = page.getByRole('textbox', { name: /^gamma/ });
    await expect.poll(() => gamma.inputValue()).toBe('0.99');
    await gamma.fill('1.5');
    await page.getByRole('alert').filter({ hasText: 'gamma must be at most 1' }).waitFor();
    await node('gae').getByText('error', { exact: true }).waitFor();
    await page
      .getByRole('status', { name: 'why Run is disabled' })
      .filter({ hasText: /gae\.gamma/ })
      .waitFor();

    // Undo and redo (keyboard, focus on the canvas).
    await page.locator('.react-flow__pane').click({ position: { x: 5, y: 5 } });
    await node('gae').click();
    await page.keyboard.press('Control+z');
    await expect.poll(() => gamma.inputValue()).toBe('0.99');
    await page.keyboard.press('Control+Shift+z');
    await expect.poll(() => gamma.inputValue()).toBe('1.5');
    await page.getByRole('button', { name: 'Undo', exact: true }).click();
    await expect.poll(() => gamma.inputValue()).toBe('0.99');
    await page
      .getByRole('status', { name: 'diagnostic summary' })
      .filter({ hasText: /^0 errors|no problems/ })
      .waitFor();

    // Auto-layout moves the nodes (ELK, layered): environment left of the trainer.
    const before = await node('env').getAttribute('style');
    await page.getByRole('button', { name: 'Auto-layout' }).click();
    await waitFor(
      'a new layout',
      () => node('env').getAttribute('style'),
      (s) => s !== before,
    );
    const x = async (id: string) => (await node(id).boundingBox())!.x;
    expect(await x('env')).toBeLessThan(await x('ppo'));

    // Reload: the graph is as it was (autosaved).
    await page
      .getByRole('status', { name: 'save state' })
      .filter({ hasText: /^saved$/ })
      .waitFor();
    await page.reload();
    await waitFor('7 nodes after reload', nodeCount, (n) => n === 7);
    await wire('rollout.trajectories', `${added}.trajectories`).waitFor();

    // Version history: restore the version the graph was created with.
    await page.getByRole('button', { name: 'History' }).click();
    const versions = page.getByRole('dialog', { name: 'Version history' });
    await versions.getByRole('button', { name: /^Restore version 1 \(from template/ }).click();
    await waitFor('the 6 nodes of the first version', nodeCount, (n) => n === 6);
    await page
      .getByRole('status', { name: 'notice' })
      .filter({ hasText: /^Restored the version/ })
      .waitFor();

    // A broken file is refused with the reason; the open graph stays.
    await page.getByLabel('Graph file').setInputFiles({
      name: 'broken.json',
      mimeType: 'application/json',
      buffer: Buffer.from('{"format": "agent-rl-studio/graph", "nodes": ['),
    });
    await page
      .getByRole('alert')
      .filter({ hasText: /^broken\.json cannot be opened: .*JSON/ })
      .waitFor();
    expect(await nodeCount()).toBe(6);
    expect(await page.getByRole('heading', { level: 2, name: 'PPO on CartPole' }).count()).toBe(1);

    expect(studio.pageErrors).toEqual([]);
  }, 120_000);
});
