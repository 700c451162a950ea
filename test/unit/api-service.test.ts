/**
 * The StudioApi implementation without Electron: templates, validation, file dialogs, run control with
 * real training workers, history replay, crash recovery from the last checkpoint, and call dispatch.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { dispatchCall } from '../../src-main/api/dispatch.ts';
import { StudioError } from '../../src-main/api/errors.ts';
import type { GraphFile, StudioErrorInfo } from '../../src-main/api/studio-api.ts';
import { type FileDialogs, StudioService } from '../../src-main/api/studio-service.ts';
import { EventLog, TEMPLATE, tinyGraph } from './api-fixtures.ts';

async function errorOf(promise: Promise<unknown>): Promise<StudioError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(StudioError);
    return error as StudioError;
  }
  throw new Error('expected a StudioError');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('StudioService', () => {
  let tmp: string;
  let service: StudioService;
  const services: StudioService[] = [];
  const logs: string[] = [];

  const newService = (options: { dialogs?: FileDialogs } = {}) => {
    const made = new StudioService({
      dataDir: path.join(tmp, 'data'),
      log: (level, message) => logs.push(`${level}: ${message}`),
      ...options,
    });
    services.push(made);
    return made;
  };

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'studio-service-'));
    service = newService();
  });

  afterAll(async () => {
    await Promise.all(services.map((s) => s.shutdown(5000)));
    await rm(tmp, { recursive: true, force: true });
  });

  describe('catalog, validation and templates', () => {
    it('lists the node library with ports and parameter schemas', async () => {
      const catalog = await service.catalog();
      const cartpole = catalog.nodes.find((n) => n.type === 'env.cartpole');
      expect(cartpole?.outputs.map((p) => p.name)).toEqual(['env']);
      expect(cartpole?.paramsSchema).toHaveProperty('properties.numEnvs');
      expect(catalog.portTypes.Env.kind).toBe('component');
    });

    it('validates graphs and places problems on nodes', async () => {
      expect(await service.validate(await tinyGraph())).toEqual({ ok: true, diagnostics: [] });
      const broken = await tinyGraph();
      broken.nodes[0].type = 'env.nope';
      const result = await service.validate(broken);
      expect(result.ok).toBe(false);
      expect(result.diagnostics.some((d) => d.nodeId === 'env' && d.code === 'unknown-node-type')).toBe(true);
      expect((await service.validate('not a graph')).ok).toBe(false);
    });

    it('lists template cards and loads a template', async () => {
      const templates = await service.listTemplates();
      const cartpole = templates.find((t) => t.id === 'cartpole-ppo');
      expect(cartpole?.card.title).toBe('PPO on CartPole');
      expect(cartpole?.card.expectedResult).toMatch(/475/);
      expect(cartpole?.nodeCount).toBe(6);
      const graph = await service.getTemplate('cartpole-ppo');
      expect(graph.nodes).toHaveLength(6);
      expect((await errorOf(service.getTemplate('../package'))).code).toBe('bad-arguments');
      expect((await errorOf(service.getTemplate('no-such-template'))).code).toBe('not-found');
    });
  });

  describe('files', () => {
    it('has no file dialogs in web mode', async () => {
      expect((await service.getInfo()).capabilities.fileDialogs).toBe(false);
      expect((await errorOf(service.openGraphFile())).code).toBe('unsupported');
      expect((await errorOf(service.saveGraphFile(await tinyGraph()))).code).toBe('unsupported');
    });

    it('opens and saves through dialogs, writing only where the user chose', async () => {
      const chosen = path.join(tmp, 'chosen.json');
      const other = path.join(tmp, 'other.json');
      await writeFile(chosen, await readFile(TEMPLATE, 'utf8'));
      let saveAnswer: string | null = path.join(tmp, 'saved.json');
      const desktop = newService({
        dialogs: { showOpen: async () => chosen, showSave: async () => saveAnswer },
      });
      expect((await desktop.getInfo()).capabilities.fileDialogs).toBe(true);
      const opened = await desktop.openGraphFile();
      expect(opened?.fileName).toBe('chosen.json');
      expect(opened?.graph?.name).toBe('PPO on CartPole');

      const graph = await tinyGraph();
      graph.name = 'Edited';
      expect(await desktop.saveGraphFile(graph, { path: chosen })).toEqual({ path: chosen });
      expect(JSON.parse(await readFile(chosen, 'utf8')).name).toBe('Edited');
      expect((await errorOf(desktop.saveGraphFile(graph, { path: other }))).code).toBe('bad-arguments');
      expect(existsSync(other)).toBe(false);
      expect(await desktop.saveGraphFile(graph)).toEqual({ path: saveAnswer });
      saveAnswer = null;
      expect(await desktop.saveGraphFile(graph, { saveAs: true })).toBeNull();
      expect((await errorOf(desktop.saveGraphFile({ nodes: 'x' } as unknown as GraphFile))).code).toBe(
        'invalid-graph',
      );
    });
  });

  describe('runs', () => {
    const logsAfter = () => logs.filter((l) => l.startsWith('error'));
    afterEach(() => expect(logsAfter()).toEqual([]));

    it('refuses a graph with errors, with its diagnostics', async () => {
      const broken = await tinyGraph();
      broken.edges = [];
      const error = await errorOf(service.startRun({ graph: broken }));
      expect(error.code).toBe('invalid-graph');
      expect(error.diagnostics?.some((d) => d.severity === 'error' && d.nodeId)).toBe(true);
    });

    it('starts, pauses, steps, resumes and stops a run, and replays its history to a late subscriber', async () => {
      const { runId } = await service.startRun({ graph: await tinyGraph(), seed: 7 });
      const first = new EventLog();
      await service.subscribe(runId, first.listener);

      // Paused before its first iteration, so each Step is exactly whole iterations.
      await service.pauseRun(runId);
      await first.until('paused', () => first.lastStatus() === 'paused', 10_000);
      expect(first.metrics).toHaveLength(0);
      await service.stepRun(runId, 1);
      await first.until('one step', () => first.metrics.length === 1 && first.lastStatus() === 'paused');
      await service.stepRun(runId, 2);
      await first.until('two steps', () => first.metrics.length === 3 && first.lastStatus() === 'paused');
      await sleep(300);
      expect(first.metrics).toHaveLength(3);

      await service.resumeRun(runId);
      await first.until('more iterations', () => first.metrics.length >= 6);
      await service.pauseRun(runId);
      await first.until('paused again', () => first.lastStatus() === 'paused', 10_000);
      const atPause = first.metrics.length;
      await sleep(500);
      expect(first.metrics.length).toBe(atPause);

      await service.resumeRun(runId);
      await first.until('more iterations', () => first.metrics.length >= atPause + 3);
      await service.stopRun(runId);
      await first.until('stopped', () => first.lastStatus() === 'stopped');

      // Every event once, in order, numbered from 0.
      expect(first.seqs).toEqual(first.seqs.map((_, i) => i));
      const iterations = first.metrics.map((m) => m.record.iteration);
      expect(iterations).toEqual(iterations.map((_, i) => i));
      expect(first.events.some((e) => e.type === 'checkpoint')).toBe(true);

      const late = new EventLog();
      await service.subscribe(runId, late.listener);
      expect(late.events).toEqual(first.events);

      const listed = (await service.listRuns()).find((r) => r.id === runId);
      expect(listed).toMatchObject({
        status: 'stopped',
        active: false,
        resumable: true,
        graphName: 'PPO on CartPole',
      });
      expect(listed?.iteration).toBe(first.metrics.length);
      expect(listed?.lastCheckpoint?.iteration).toBe(first.metrics.length);
      expect(listed?.backend).toBe('cpu');

      expect((await errorOf(service.pauseRun(runId))).code).toBe('conflict');
      expect((await errorOf(service.pauseRun('no-such-run'))).code).toBe('not-found');
      expect((await errorOf(service.pauseRun('../etc'))).code).toBe('bad-arguments');
    });

    it('reports a crashed worker as an error on the run and resumes it from the last checkpoint', async () => {
      const { runId } = await service.startRun({
        graph: await tinyGraph({ iterations: 12, checkpointEvery: 1 }),
      });
      const log = new EventLog();
      await service.subscribe(runId, log.listener);
      await log.until('a checkpoint', () =>
        log.events.some((e) => e.type === 'checkpoint' && e.iteration >= 2),
      );
      await service.killRun(runId);
      await log.until('failed', () => log.lastStatus() === 'failed');
      expect(log.events.some((e) => e.type === 'error' && /crashed/.test(e.message))).toBe(true);

      const crashed = (await service.listRuns()).find((r) => r.id === runId);
      expect(crashed).toMatchObject({ status: 'failed', resumable: true });
      const checkpoint = crashed!.lastCheckpoint!.iteration;
      expect(checkpoint).toBeGreaterThanOrEqual(2);

      const before = log.events.length;
      expect(await service.resumeRunFromCheckpoint(runId)).toEqual({ runId });
      await log.until('finished', () => log.lastStatus() === 'finished');
      const resumed = log.events.slice(before).filter((e) => e.type === 'metrics');
      expect(resumed[0]?.type === 'metrics' && resumed[0].record.iteration).toBe(checkpoint);
      expect(resumed.at(-1)?.type === 'metrics' && resumed.at(-1)).toMatchObject({
        record: { iteration: 11 },
      });
      expect((await service.listRuns()).find((r) => r.id === runId)).toMatchObject({
        status: 'finished',
        iteration: 12,
      });
    });

    it('lists and replays runs kept on disk from an earlier session', async () => {
      const { runId } = await service.startRun({ graph: await tinyGraph({ iterations: 3 }) });
      const log = new EventLog();
      await service.subscribe(runId, log.listener);
      await log.until('finished', () => log.lastStatus() === 'finished');

      const later = newService();
      const listed = async () => (await later.listRuns()).find((r) => r.id === runId);
      // run.json is written just after the last event.
      for (let i = 0; i < 50 && (await listed())?.status !== 'finished'; i++) await sleep(50);
      expect(await listed()).toMatchObject({
        status: 'finished',
        iteration: 3,
        totalIterations: 3,
        active: false,
      });
      const replay = new EventLog();
      await later.subscribe(runId, replay.listener);
      expect(replay.metrics.map((m) => m.record)).toEqual(log.metrics.map((m) => m.record));
      expect(replay.lastStatus()).toBe('finished');
    });

    it('marks a run left active by a process that is gone as failed and resumable', async () => {
      const { runId } = await service.startRun({ graph: await tinyGraph({ iterations: 2 }) });
      const log = new EventLog();
      await service.subscribe(runId, log.listener);
      await log.until('finished', () => log.lastStatus() === 'finished');
      const file = path.join(service.runsDir, runId, 'run.json');
      await sleep(100);
      const meta = JSON.parse(await readFile(file, 'utf8'));
      await writeFile(file, JSON.stringify({ ...meta, status: 'running', pid: 2 ** 22 + 12345 }));
      const later = newService();
      const listed = (await later.listRuns()).find((r) => r.id === runId);
      expect(listed).toMatchObject({ status: 'failed', resumable: true });
      expect(listed?.error).toMatch(/closed while this run was active/);
    });

    it('shows run folders without run.json (written by the CLI) and skips junk', async () => {
      const dir = path.join(service.runsDir, 'cli-run');
      await mkdir(dir, { recursive: true });
      await writeFile(path.join(dir, 'graph.json'), JSON.stringify(await tinyGraph({ iterations: 9 })));
      await mkdir(path.join(service.runsDir, 'Not A Run'), { recursive: true });
      const runs = await newService().listRuns();
      expect(runs.find((r) => r.id === 'cli-run')).toMatchObject({
        graphName: 'PPO on CartPole',
        totalIterations: 9,
        resumable: false,
      });
      expect(runs.some((r) => r.id === 'Not A Run')).toBe(false);
    });
  });
});

describe('dispatchCall', () => {
  let tmp: string;
  let service: StudioService;

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'studio-dispatch-'));
    service = new StudioService({ dataDir: tmp, log: () => {} });
  });

  afterAll(async () => {
    await service.shutdown();
    await rm(tmp, { recursive: true, force: true });
  });

  const errorCode = async (method: unknown, params?: unknown): Promise<StudioErrorInfo['code'] | 'ok'> => {
    const reply = await dispatchCall(service, method, params);
    return reply.ok ? 'ok' : reply.error.code;
  };

  it('answers calls with results', async () => {
    const reply = await dispatchCall(service, 'listTemplates', []);
    expect(reply.ok && Array.isArray(reply.result)).toBe(true);
    expect(await errorCode('listRuns')).toBe('ok');
    expect(await errorCode('getTemplate', ['cartpole-ppo'])).toBe('ok');
  });

  it('gives an error reply for unknown methods, never a crash', async () => {
    for (const method of [
      'nope',
      'toString',
      '__proto__',
      'constructor',
      'subscribe',
      'shutdown',
      'killRun',
      42,
      null,
      undefined,
      {},
    ]) {
      expect(await errorCode(method, [])).toBe('unknown-method');
    }
  });

  it('gives an error reply for malformed arguments', async () => {
    expect(await errorCode('getTemplate', [])).toBe('bad-arguments');
    expect(await errorCode('getTemplate', [5])).toBe('bad-arguments');
    expect(await errorCode('getTemplate', ['a', 'b'])).toBe('bad-arguments');
    expect(await errorCode('listTemplates', 'not an array')).toBe('bad-arguments');
    expect(await errorCode('pauseRun', ['../../etc'])).toBe('bad-arguments');
    expect(await errorCode('stepRun', ['some-run', 0])).toBe('bad-arguments');
    expect(await errorCode('startRun', [{ graph: {}, iterations: -1 }])).toBe('bad-arguments');
    expect(await errorCode('startRun', [{ graph: {}, surprise: true }])).toBe('bad-arguments');
    expect(await errorCode('startRun', [{ graph: {}, backend: 'quantum' }])).toBe('bad-arguments');
    expect(await errorCode('startRun', [{ graph: {} }])).toBe('invalid-graph');
    expect(await errorCode('startRun', [{ graph: {}, seed: null, iterations: null }])).toBe('invalid-graph');
    expect(await errorCode('stepRun', ['some-run', null])).toBe('not-found');
    expect(await errorCode('validate', [])).toBe('bad-arguments');
  });
});
