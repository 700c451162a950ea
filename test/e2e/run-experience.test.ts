/**
 * The run experience in Chromium (web mode, real engine): run the CartPole template and watch the chart
 * grow; pause, resume, step exactly one iteration; trajectory credit colouring; logs; reload mid-run;
 * a killed engine worker resumed from its checkpoint on the same chart; two runs compared on one chart.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebServer } from '../../src-main/server/web-server.ts';
import { haveChromium, openStudioInChromium, type StudioInChromium, waitFor } from '../helpers/browser.ts';

describe.skipIf(!haveChromium)('the run experience in Chromium', () => {
  let studio: StudioInChromium;
  let server: WebServer;
  let page: Page;

  const readout = (name: string) => page.getByRole('status', { name, exact: true });
  const stateWord = () => readout('run state').textContent();
  const chartPoints = async () => Number(await readout('chart points').textContent());
  const iteration = async () => Number((await readout('iteration').textContent())?.split(' / ')[0]);
  const waitForState = (word: string, timeoutMs?: number) =>
    waitFor(`run state '${word}'`, stateWord, (s) => s === word, timeoutMs);
  const tab = (name: string) => page.getByRole('tab', { name }).click();
  const activeRunId = async () => (await server.service.listRuns()).find((r) => r.active)?.id;

  beforeAll(async () => {
    studio = await openStudioInChromium({ prefix: 'studio-run-e2e-' });
    ({ server, page } = studio);
  }, 180_000);

  afterAll(async () => {
    await studio?.close();
  });

  it('runs, pauses, resumes and steps exactly one iteration while the chart grows', async () => {
    await page.goto(server.url);
    // The gallery may open by itself on a first start.
    const gallery = page.getByRole('dialog', { name: 'Templates' });
    await gallery
      .waitFor({ timeout: 3000 })
      .catch(() => page.getByRole('button', { name: 'Templates' }).click());
    await gallery.getByRole('button', { name: 'Load PPO on CartPole' }).click();
    await page.getByRole('heading', { name: 'PPO on CartPole', level: 2 }).waitFor();
    expect(await stateWord()).toBe('idle');

    await page.getByRole('spinbutton', { name: 'Iterations' }).fill('5000');
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await waitForState('running');
    await waitFor('chart points', chartPoints, (n) => n >= 3);
    expect(await readout('backend').textContent()).toMatch(/wasm|tensorflow|cpu|webgpu/);
    expect(Number((await readout('steps per second').textContent())?.replace(/,/g, ''))).toBeGreaterThan(0);
    // One chart per metric, grouped by node, each drawn by uPlot.
    const rollout = page.getByRole('region', { name: 'metrics of rollout' });
    await rollout.getByRole('figure', { name: 'chart rollout/episode_return_mean' }).waitFor();
    // Charts mount as their first points arrive, so wait for them rather than count once.
    await waitFor(
      'six or more charts',
      () => page.locator('.uplot').count(),
      (n) => n > 5,
    );
    // Per-node live state on the canvas: a running badge and the headline metric.
    await page
      .getByText(/^episode_return_mean: /)
      .first()
      .waitFor();
    expect(await page.locator('.badge-running').count()).toBeGreaterThan(0);

    await page.getByRole('button', { name: 'Pause', exact: true }).click();
    await waitForState('paused');
    const paused = await chartPoints();
    await new Promise((r) => setTimeout(r, 1000));
    expect(await chartPoints()).toBe(paused);

    await page.getByRole('button', { name: 'Resume', exact: true }).click();
    await waitForState('running');
    await waitFor('chart points after resume', chartPoints, (n) => n >= paused + 2);

    // Keyboard: Alt+P pauses; Step runs exactly one more iteration and pauses again.
    await page.keyboard.press('Alt+P');
    await waitForState('paused');
    await new Promise((r) => setTimeout(r, 300));
    const before = await iteration();
    const pointsBefore = await chartPoints();
    await page.getByRole('button', { name: 'Step', exact: true }).click();
    await waitFor('one more iteration', iteration, (n) => n === before + 1);
    await waitForState('paused');
    await new Promise((r) => setTimeout(r, 800));
    expect(await iteration()).toBe(before + 1);
    expect(await chartPoints()).toBe(pointsBefore + 1);
  }, 90_000);

  it('shows sampled episodes with credit colouring and the logs', async () => {
    await tab('Trajectories');
    const strip = page.getByRole('img', { name: 'credit per step' });
    await strip.waitFor();
    const cells = strip.locator('[data-credit]');
    expect(await cells.count()).toBeGreaterThan(5);
    const colours = await cells.evaluateAll((elements) =>
      elements.map((e) => getComputedStyle(e).backgroundColor),
    );
    // Positive credit green, negative red (CartPole's GAE advantages have both signs).
    expect(
      colours.some((c) => /rgba\(22, 163, 74/.test(c)) || colours.some((c) => /rgba\(220, 38, 38/.test(c)),
    ).toBe(true);
    for (const name of ['reward', 'value', 'advantage', 'return'])
      await page.getByRole('img', { name: `${name} per step` }).waitFor();
    expect(await readout('episode').textContent()).toBe('1 of 4');
    await page.getByRole('button', { name: 'Next episode' }).click();
    expect(await readout('episode').textContent()).toBe('2 of 4');

    await tab('Logs and findings');
    await page
      .getByRole('list', { name: 'log entries' })
      .getByText(/Backend:/)
      .waitFor();
    await tab('Charts');
  });

  it('keeps streaming after a reload; resumes a stopped run and a killed worker from checkpoints on the same chart', async () => {
    await page.getByRole('button', { name: 'Resume', exact: true }).click();
    await waitForState('running');
    const beforeReload = await chartPoints();
    await page.reload();
    await waitForState('running');
    await waitFor('history and live points after reload', chartPoints, (n) => n > beforeReload);

    // Stop keeps a checkpoint; the run list resumes it and the same chart continues.
    const runId = await activeRunId();
    expect(runId).toBeDefined();
    await page.getByRole('button', { name: 'Stop', exact: true }).click();
    await waitForState('stopped');
    const checkpoint = Number(await readout('last checkpoint').textContent());
    expect(checkpoint).toBe(await iteration());
    const stoppedPoints = await chartPoints();
    await tab('Run history');
    await page.getByRole('button', { name: `Resume run ${runId} from checkpoint` }).click();
    await waitForState('running');
    await tab('Charts');
    await waitFor('the chart to continue after resume', chartPoints, (n) => n >= stoppedPoints + 2);

    // A crash of the engine worker: the run fails, its last checkpoint resumes, the curve carries on.
    const beforeKill = await chartPoints();
    await server.service.killRun(runId!);
    await waitForState('failed');
    expect(await page.getByText(/The training worker crashed/).count()).toBeGreaterThan(0);
    await tab('Run history');
    await page.getByRole('button', { name: `Resume run ${runId} from checkpoint` }).click();
    await waitForState('running');
    await tab('Charts');
    // Iterations after the checkpoint are replaced by the resumed ones, then the curve grows past them.
    await waitFor('the chart to continue after the crash', chartPoints, (n) => n > beforeKill, 40_000);
    // The iteration readout follows the status stream, which may trail the chart by an update.
    await waitFor('the resumed run to pass the checkpoint', iteration, (n) => n > checkpoint);

    await page.getByRole('button', { name: 'Stop', exact: true }).click();
    await waitForState('stopped');
  }, 120_000);

  it('compares two runs on one chart', async () => {
    await page.getByRole('spinbutton', { name: 'Iterations' }).fill('2');
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await waitForState('finished', 60_000);
    await tab('Run history');
    const runs = await server.service.listRuns();
    expect(runs.length).toBe(2);
    for (const r of runs) await page.getByRole('checkbox', { name: `Compare run ${r.id}` }).check();
    const comparison = page.getByRole('region', { name: 'comparison' });
    await comparison.getByRole('figure', { name: 'compare rollout/episode_return_mean' }).waitFor();
    const compared = comparison.getByRole('list', { name: 'compared runs' }).getByRole('listitem');
    expect(await compared.count()).toBe(2);
    const counts = (await compared.allTextContents()).map((t) => Number(/\((\d+) points\)/.exec(t)?.[1]));
    expect(counts.sort((a, b) => a - b)[0]).toBe(2);
    expect(counts[1]).toBeGreaterThan(8);
    // uPlot's legend lists both runs' series in the one chart (charts are drawn one per task: wait for it).
    await expect.poll(() => comparison.locator('.u-legend .u-series').count()).toBe(3);

    // Rename sticks (Dexie) across a reload.
    const newest = runs[0]!.id;
    const name = page.getByRole('textbox', { name: `Name of run ${newest}` });
    await name.fill('short baseline');
    await name.press('Enter');
    await compared.getByText('short baseline').waitFor();
    await page.reload();
    await tab('Run history');
    await waitFor(
      'the renamed run',
      () => page.getByRole('textbox', { name: `Name of run ${newest}` }).inputValue(),
      (v) => v === 'short baseline',
    );
    expect(studio.pageErrors).toEqual([]);
  }, 90_000);
});
