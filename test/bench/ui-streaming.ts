/**
 * UI streaming benchmark (not a test): the renderer's main thread while a run streams metrics at full
 * speed, measured in Chromium with a long-task observer (tasks over 50 ms), plus how often the UI
 * updated (the run stream batches to at most ~10 updates a second) and a replay of a 100k-iteration run
 * into the charts. Prints a table; `benchUiStreaming()` returns it for `npm run bench`.
 *
 *   npx tsx test/bench/ui-streaming.ts [--iterations 150]
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { chromium, type Page } from 'playwright-core';
import { ensureRendererBuilt } from '../../src-main/server/renderer-build.ts';
import { startWebServer } from '../../src-main/server/web-server.ts';
import { fmt, formatSection, type Section } from './table.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const REPLAY_RUN = 'bench-replay-100k';
const REPLAY_POINTS = 100_000;

interface Window {
  longTasks: number[];
  uiUpdates: number;
}

async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A finished run of 100k iterations in the data folder, as the engine would have left it. */
async function writeReplayRun(dataDir: string): Promise<void> {
  const dir = path.join(dataDir, 'runs', REPLAY_RUN);
  await mkdir(dir, { recursive: true });
  const lines: string[] = [];
  for (let i = 0; i < REPLAY_POINTS; i++) {
    const metrics: Record<string, number> = {
      'rollout/episode_return_mean': 20 + 480 * (1 - Math.exp(-i / 20_000)) + 10 * Math.sin(i / 50),
      'rollout/episode_length_mean': 20 + 480 * (1 - Math.exp(-i / 20_000)),
      'ppo/policy_loss': Math.sin(i / 7) * 0.01,
      'ppo/value_loss': 100 * Math.exp(-i / 30_000) + Math.random(),
      'ppo/entropy': 0.69 * Math.exp(-i / 50_000),
      'ppo/approx_kl': 0.01 * Math.random(),
      'ppo/clip_fraction': 0.1 * Math.random(),
      'gae/advantage_mean': Math.random() - 0.5,
    };
    lines.push(JSON.stringify({ iteration: i, envSteps: (i + 1) * 512, seconds: (i + 1) * 0.1, metrics }));
  }
  await writeFile(path.join(dir, 'metrics.jsonl'), `${lines.join('\n')}\n`);
  const now = new Date().toISOString();
  await writeFile(
    path.join(dir, 'run.json'),
    JSON.stringify({
      format: 'agent-rl-studio/run',
      version: 1,
      id: REPLAY_RUN,
      graphName: 'Replay of 100k iterations',
      createdAt: '2000-01-01T00:00:00.000Z',
      updatedAt: now,
      status: 'finished',
      iteration: REPLAY_POINTS,
      totalIterations: REPLAY_POINTS,
      envSteps: REPLAY_POINTS * 512,
    }),
  );
}

/** Long tasks and UI updates (changes of the 'chart points' readout) from now on. */
async function startWatching(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as Window;
    w.longTasks = [];
    w.uiUpdates = 0;
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) w.longTasks.push(entry.duration);
    }).observe({ type: 'longtask' });
    const readout = document.querySelector('output[aria-label="metric points"]');
    if (readout)
      new MutationObserver(() => {
        w.uiUpdates++;
      }).observe(readout, { childList: true, characterData: true, subtree: true });
  });
}

const collect = (page: Page) =>
  page.evaluate(() => {
    const w = window as unknown as Window;
    return { longTasks: [...w.longTasks], uiUpdates: w.uiUpdates };
  });

export async function benchUiStreaming(options: { iterations?: number } = {}): Promise<Section> {
  const iterations = options.iterations ?? 150;
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'studio-ui-bench-'));
  const dataDir = path.join(tmp, 'data');
  await writeReplayRun(dataDir);
  const rendererDir = await ensureRendererBuilt({ outDir: path.join(tmp, 'renderer'), force: true });
  const server = await startWebServer({ port: 0, dataDir, rendererDir, log: () => {} });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run'],
  });
  const rows: Section['rows'] = [];
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const readout = (name: string) => page.getByRole('status', { name, exact: true });
    await page.goto(server.url);
    const gallery = page.getByRole('dialog', { name: 'Templates' });
    await gallery
      .waitFor({ timeout: 3000 })
      .catch(() => page.getByRole('button', { name: 'Templates' }).click());
    await gallery.getByRole('button', { name: 'Load PPO on CartPole' }).click();
    await page.getByRole('spinbutton', { name: 'Iterations' }).fill(String(iterations));

    // 1. A live run at full speed, charts on screen.
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await waitFor(
      'the run to start',
      async () => (await readout('run state').textContent()) === 'running',
      120_000,
    );
    await startWatching(page);
    const started = Date.now();
    await waitFor(
      'the run to finish',
      async () => (await readout('run state').textContent()) === 'finished',
      30 * 60_000,
    );
    const liveSeconds = (Date.now() - started) / 1000;
    const live = await collect(page);
    rows.push([
      `live CartPole run, ${iterations} iterations`,
      fmt(liveSeconds, 1),
      fmt(iterations / liveSeconds, 1),
      fmt(live.uiUpdates / liveSeconds, 1),
      String(live.longTasks.length),
      live.longTasks.length ? fmt(Math.max(...live.longTasks)) : '0',
    ]);

    // 2. Replay of a 100k-iteration run into the charts (a reload or Show of a long run).
    await page.getByRole('tab', { name: 'Run history' }).click();
    await page.getByRole('checkbox', { name: 'Runs of every graph' }).check();
    await page.getByRole('button', { name: `Show run ${REPLAY_RUN}` }).click();
    await page.getByRole('tab', { name: 'Charts' }).click();
    await startWatching(page);
    const replayStart = Date.now();
    await waitFor(
      '100k points on the chart',
      async () => Number(await readout('chart points').textContent()) === REPLAY_POINTS,
      10 * 60_000,
    );
    // Let the queued chart redraws finish.
    await new Promise((r) => setTimeout(r, 1500));
    const replaySeconds = (Date.now() - replayStart) / 1000;
    const replay = await collect(page);
    rows.push([
      '100k-iteration replay (8 charts)',
      fmt(replaySeconds, 1),
      fmt(REPLAY_POINTS / replaySeconds, 0),
      fmt(replay.uiUpdates / replaySeconds, 1),
      String(replay.longTasks.length),
      replay.longTasks.length ? fmt(Math.max(...replay.longTasks)) : '0',
    ]);

    // 3. Interaction on 100k points: hover over a chart and change the smoothing.
    await startWatching(page);
    const chart = page.locator('.uplot .u-over').first();
    const box = await chart.boundingBox();
    const hoverStart = Date.now();
    if (box) for (let x = 0; x < box.width; x += 20) await page.mouse.move(box.x + x, box.y + box.height / 2);
    await page
      .getByRole('slider', { name: /Smoothing/ })
      .first()
      .fill('0.9');
    await new Promise((r) => setTimeout(r, 1500));
    const hover = await collect(page);
    rows.push([
      'hover + smoothing change on 100k points',
      fmt((Date.now() - hoverStart) / 1000, 1),
      '',
      '',
      String(hover.longTasks.length),
      hover.longTasks.length ? fmt(Math.max(...hover.longTasks)) : '0',
    ]);
  } finally {
    await browser.close();
    await server.close();
    await rm(tmp, { recursive: true, force: true });
  }
  return {
    title: 'UI streaming (Chromium, renderer main thread)',
    header: ['scenario', 'seconds', 'events/s', 'UI updates/s', 'long tasks', 'longest ms'],
    rows,
    notes: [
      'Long tasks: main-thread tasks over 50 ms (PerformanceObserver "longtask"); the goal is none over 50 ms, i.e. 0 rows.',
      'UI updates/s: changes of the metric-points readout (the run stream batches events to at most ~10 a second).',
    ],
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({ options: { iterations: { type: 'string', default: '150' } } });
  const section = await benchUiStreaming({ iterations: Number(values.iterations) });
  console.log(formatSection(section));
}
