/**
 * StudioService: the one implementation of StudioApi, over the engine. No Electron import: the Electron
 * IPC adapter, the web server and the tests all drive this class.
 *
 * Runs live under `<dataDir>/runs/<runId>/`: the engine writes graph.json, metrics.jsonl and checkpoints/
 * there, and this service adds run.json (name, status, progress) so that the run list survives restarts.
 * Training happens in a worker thread (WorkerRun); a crash of the worker becomes an error on the run and
 * its last checkpoint stays resumable.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRegistry } from '../../nodes/index.ts';
import { compileGraph } from '../engine/compiler.ts';
import { formatDiagnostic, hasErrors } from '../engine/diagnostics.ts';
import type { MetricsRecord, RunEvent, RunStatus } from '../engine/events.ts';
import { exportGraph as exportGraphCode } from '../engine/export/index.ts';
import { parseGraphText, parseGraphValue } from '../engine/graph/parse.ts';
import type { GraphFile } from '../engine/graph/types.ts';
import { buildCatalog, type Catalog, type NodeRegistry } from '../engine/registry.ts';
import { WorkerRun, type WorkerRunOptions } from '../engine/runtime/worker-run.ts';
import { StudioError } from './errors.ts';
import { SampleThinner } from './sample-thinning.ts';
import type {
  CheckpointInfo,
  ExportedCode,
  OpenedGraph,
  RunEventListener,
  RunInfo,
  SaveGraphOptions,
  StartRunRequest,
  StudioApi,
  StudioInfo,
  TemplateSummary,
  ValidationResult,
} from './studio-api.ts';

/** Run ids are folder names: lowercase letters, digits and dashes only (no path tricks). */
export const RUN_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,119}$/;
const TEMPLATE_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,119}$/;
const MAX_GRAPH_FILE_BYTES = 64 * 1024 * 1024;
const RUN_FILE_FORMAT = 'agent-rl-studio/run';
const ACTIVE_STATUSES: readonly RunStatus[] = ['starting', 'running', 'paused'];

/** Native file dialogs (Electron); absent in web mode, where the UI uploads and downloads itself. */
export interface FileDialogs {
  /** The path the user chose, or null when cancelled. */
  showOpen(): Promise<string | null>;
  showSave(defaultFileName: string): Promise<string | null>;
}

export type LogLevel = 'info' | 'warn' | 'error';

export interface StudioServiceOptions {
  /** Runs are kept under `<dataDir>/runs/`. */
  dataDir: string;
  mode?: StudioInfo['mode'];
  version?: string;
  /** Folder of template graphs (*.json); default: the repository's templates/. */
  templatesDir?: string;
  dialogs?: FileDialogs;
  /** Where the service reports problems it does not answer to a caller (a failed run.json write...). */
  log?: (level: LogLevel, message: string) => void;
  /** Node library used for the catalog and validation (the worker always uses the full library). */
  registry?: NodeRegistry;
}

/** run.json: what the run list shows without reading the whole run. */
interface RunMeta {
  format: typeof RUN_FILE_FORMAT;
  version: 1;
  id: string;
  graphName: string;
  createdAt: string;
  updatedAt: string;
  status: RunStatus;
  iteration: number;
  totalIterations: number;
  envSteps: number;
  seed?: number;
  backend?: string;
  error?: string;
  /** Process that ran it last: a run left 'running' by a process that is gone was interrupted. */
  pid?: number;
}

interface ManagedRun {
  id: string;
  dir: string;
  meta: RunMeta;
  /** Every event since this process first saw the run; `seq` is the index here. */
  history: RunEvent[];
  listeners: Map<string, RunEventListener>;
  worker?: WorkerRun;
  workerDone: boolean;
  /** Serialises writes of run.json. */
  metaWrite: Promise<void>;
  /** Old trajectory samples in `history` are emptied so that a long run's memory stays bounded. */
  sampleThinner: SampleThinner;
}

const defaultTemplatesDir = () => fileURLToPath(new URL('../../templates/', import.meta.url));

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function slug(name: string): string {
  return (
    name
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 40)
      .replace(/-+$/, '') || 'run'
  );
}

function newRunId(graphName: string): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15).toLowerCase();
  return `${slug(graphName)}-${stamp}-${randomBytes(3).toString('hex')}`;
}

async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`);
  await rename(tmp, file);
}

function processAlive(pid: number | undefined): boolean {
  if (!pid) return false;
  // Another service in this process (tests, or the CLI beside the app) owns it.
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error));

export class StudioService implements StudioApi {
  readonly dataDir: string;
  readonly runsDir: string;
  private readonly registry: NodeRegistry;
  private readonly templatesDir: string;
  private readonly options: StudioServiceOptions;
  private readonly log: (level: LogLevel, message: string) => void;
  private readonly runs = new Map<string, ManagedRun>();
  private readonly loading = new Map<string, Promise<ManagedRun>>();
  private readonly subscriptions = new Map<string, ManagedRun>();
  /** Files the user chose in a dialog this session: the only paths saveGraphFile writes without asking. */
  private readonly chosenPaths = new Set<string>();
  private cachedCatalog?: Catalog;
  private subscriptionCounter = 0;
  private closed = false;

  constructor(options: StudioServiceOptions) {
    this.options = options;
    this.dataDir = path.resolve(options.dataDir);
    this.runsDir = path.join(this.dataDir, 'runs');
    this.registry = options.registry ?? createRegistry();
    this.templatesDir = options.templatesDir ?? defaultTemplatesDir();
    this.log =
      options.log ??
      ((level, message) => {
        if (level !== 'info') process.stderr.write(`${level}: ${message}\n`);
      });
  }

  // --- catalog, validation, templates ---

  async getInfo(): Promise<StudioInfo> {
    return {
      mode: this.options.mode ?? 'web',
      version: this.options.version ?? process.env.npm_package_version ?? '0.0.0',
      dataDir: this.dataDir,
      capabilities: { fileDialogs: Boolean(this.options.dialogs), export: true },
    };
  }

  async catalog(): Promise<Catalog> {
    this.cachedCatalog ??= buildCatalog(this.registry);
    return this.cachedCatalog;
  }

  async validate(graph: unknown): Promise<ValidationResult> {
    const { diagnostics } = compileGraph(graph, this.registry);
    return { ok: !hasErrors(diagnostics), diagnostics };
  }

  async migrateGraph(graph: GraphFile): Promise<GraphFile> {
    const parsed = parseGraphValue(graph);
    if (!parsed.graph)
      throw new StudioError('invalid-graph', 'This is not a graph that can be upgraded.', parsed.diagnostics);
    return {
      ...parsed.graph,
      nodes: parsed.graph.nodes.map((node) => upgradeNodeParams(node, this.registry)),
    };
  }

  async listTemplates(): Promise<TemplateSummary[]> {
    let names: string[];
    try {
      names = (await readdir(this.templatesDir)).filter((n) => n.endsWith('.json')).sort();
    } catch (error) {
      throw new StudioError(
        'io',
        `Cannot read the templates folder ${this.templatesDir}: ${errorText(error)}`,
      );
    }
    const templates: TemplateSummary[] = [];
    for (const name of names) {
      const id = name.slice(0, -'.json'.length);
      if (!TEMPLATE_ID_PATTERN.test(id)) continue;
      try {
        const graph = await this.readTemplate(id);
        if (!graph.template) {
          this.log(
            'warn',
            `Template ${name} has no "template" card (title, description, expected result): skipped.`,
          );
          continue;
        }
        templates.push({ id, name: graph.name, card: graph.template, nodeCount: graph.nodes.length });
      } catch (error) {
        this.log('warn', `Template ${name} is skipped: ${errorText(error)}`);
      }
    }
    return templates;
  }

  async getTemplate(id: string): Promise<GraphFile> {
    if (typeof id !== 'string' || !TEMPLATE_ID_PATTERN.test(id)) {
      throw new StudioError(
        'bad-arguments',
        `'${String(id).slice(0, 100)}' is not a template id (e.g. 'cartpole-ppo').`,
      );
    }
    return this.readTemplate(id);
  }

  private async readTemplate(id: string): Promise<GraphFile> {
    let text: string;
    try {
      text = await readFile(path.join(this.templatesDir, `${id}.json`), 'utf8');
    } catch {
      throw new StudioError('not-found', `There is no template '${id}'.`);
    }
    const parsed = parseGraphText(text);
    if (!parsed.graph) {
      throw new StudioError(
        'invalid-graph',
        `Template '${id}' is not a valid graph file.`,
        parsed.diagnostics,
      );
    }
    return parsed.graph;
  }

  // --- files ---

  async openGraphFile(): Promise<OpenedGraph | null> {
    const dialogs = this.requireDialogs();
    const chosen = await dialogs.showOpen();
    if (!chosen) return null;
    const size = (await stat(chosen).catch((error) => this.ioError(`Cannot open ${chosen}`, error))).size;
    if (size > MAX_GRAPH_FILE_BYTES)
      throw new StudioError('io', `${chosen} is larger than 64 MiB: not a graph file.`);
    const text = await readFile(chosen, 'utf8').catch((error) =>
      this.ioError(`Cannot read ${chosen}`, error),
    );
    this.chosenPaths.add(chosen);
    const parsed = parseGraphText(text);
    return {
      path: chosen,
      fileName: path.basename(chosen),
      graph: parsed.graph,
      diagnostics: parsed.diagnostics,
      ...(parsed.migratedFrom === undefined ? {} : { migratedFrom: parsed.migratedFrom }),
    };
  }

  async saveGraphFile(graph: GraphFile, options: SaveGraphOptions = {}): Promise<{ path: string } | null> {
    const dialogs = this.requireDialogs();
    const parsed = parseGraphValue(graph);
    if (!parsed.graph)
      throw new StudioError('invalid-graph', 'This is not a graph that can be saved.', parsed.diagnostics);
    if (options.path !== undefined && !this.chosenPaths.has(options.path)) {
      throw new StudioError(
        'bad-arguments',
        'A graph can only be saved to a file chosen in an Open or Save dialog.',
      );
    }
    const target =
      options.path && !options.saveAs
        ? options.path
        : await dialogs.showSave(`${slug(parsed.graph.name)}.json`);
    if (!target) return null;
    const tmp = `${target}.tmp-${process.pid}`;
    try {
      await writeFile(tmp, `${JSON.stringify(graph, null, 2)}\n`);
      await rename(tmp, target);
    } catch (error) {
      this.ioError(`Cannot save ${target}`, error);
    }
    this.chosenPaths.add(target);
    return { path: target };
  }

  private requireDialogs(): FileDialogs {
    if (!this.options.dialogs) {
      throw new StudioError(
        'unsupported',
        'File dialogs exist only in the desktop app; in the browser, open and save graphs by upload and download.',
      );
    }
    return this.options.dialogs;
  }

  private ioError(what: string, error: unknown): never {
    throw new StudioError('io', `${what}: ${errorText(error)}`);
  }

  async exportGraph(graph: GraphFile): Promise<ExportedCode> {
    const compiled = compileGraph(graph, this.registry);
    if (!compiled.plan || hasErrors(compiled.diagnostics)) {
      throw new StudioError('invalid-graph', 'Fix the graph errors before exporting.', compiled.diagnostics);
    }
    return exportGraphCode(compiled.plan.graph, this.registry);
  }

  // --- runs ---

  async startRun(request: StartRunRequest): Promise<{ runId: string }> {
    this.assertOpen();
    const compiled = compileGraph(request.graph, this.registry);
    if (!compiled.plan || hasErrors(compiled.diagnostics)) {
      const errors = compiled.diagnostics.filter((d) => d.severity === 'error');
      throw new StudioError(
        'invalid-graph',
        `The graph cannot run:\n${errors.map(formatDiagnostic).join('\n')}`,
        compiled.diagnostics,
      );
    }
    const graph = compiled.plan.graph;
    const id = newRunId(graph.name);
    const dir = path.join(this.runsDir, id);
    try {
      await mkdir(dir, { recursive: true });
    } catch (error) {
      this.ioError(`Cannot create the run folder ${dir}`, error);
    }
    const now = new Date().toISOString();
    const run: ManagedRun = {
      id,
      dir,
      meta: {
        format: RUN_FILE_FORMAT,
        version: 1,
        id,
        graphName: graph.name,
        createdAt: now,
        updatedAt: now,
        status: 'starting',
        iteration: 0,
        totalIterations: request.iterations ?? graph.run.iterations,
        envSteps: 0,
        seed: request.seed ?? graph.seed,
        pid: process.pid,
      },
      history: [],
      listeners: new Map(),
      workerDone: true,
      metaWrite: Promise.resolve(),
      sampleThinner: new SampleThinner(),
    };
    this.runs.set(id, run);
    this.saveMeta(run);
    this.launch(run, {
      graph,
      seed: request.seed,
      iterations: request.iterations,
      backend: request.backend,
      runDir: dir,
    });
    return { runId: id };
  }

  async resumeRunFromCheckpoint(runId: string): Promise<{ runId: string }> {
    this.assertOpen();
    const run = await this.getRun(runId);
    if (this.isActive(run)) {
      throw new StudioError(
        'conflict',
        `Run '${runId}' is ${run.meta.status}: stop it before resuming it from a checkpoint.`,
      );
    }
    const checkpoint = await this.lastCheckpoint(run.dir);
    if (!checkpoint) {
      throw new StudioError(
        'not-found',
        `Run '${runId}' has no checkpoint to resume from: start it again instead.`,
      );
    }
    this.record(run, {
      type: 'log',
      level: 'info',
      message: `Resuming from checkpoint ${checkpoint.name} (iteration ${checkpoint.iteration}).`,
    });
    run.meta.error = undefined;
    run.meta.pid = process.pid;
    // The checkpoint carries the graph, seed and total iterations.
    this.launch(run, { graph: undefined, resumeFrom: run.dir, runDir: run.dir });
    return { runId };
  }

  async pauseRun(runId: string): Promise<void> {
    (await this.activeWorker(runId, 'pause')).pause();
  }

  async resumeRun(runId: string): Promise<void> {
    (await this.activeWorker(runId, 'resume')).resume();
  }

  async stepRun(runId: string, iterations = 1): Promise<void> {
    if (!Number.isInteger(iterations) || iterations < 1) {
      throw new StudioError(
        'bad-arguments',
        `Step needs a whole number of iterations >= 1 (got ${String(iterations)}).`,
      );
    }
    (await this.activeWorker(runId, 'step')).step(iterations);
  }

  async stopRun(runId: string): Promise<void> {
    (await this.activeWorker(runId, 'stop')).stop();
  }

  /** Remove a run that is not active: its folder (checkpoints, metrics) and its history. */
  async deleteRun(runId: string): Promise<void> {
    const run = await this.getRun(runId);
    if (this.isActive(run)) {
      throw new StudioError('conflict', `Run '${runId}' is ${run.meta.status}: stop it before deleting it.`);
    }
    if (
      ACTIVE_STATUSES.includes(run.meta.status) &&
      run.meta.pid !== process.pid &&
      processAlive(run.meta.pid)
    ) {
      throw new StudioError(
        'conflict',
        `Run '${runId}' is being run by another process (pid ${run.meta.pid}).`,
      );
    }
    await run.metaWrite;
    try {
      await rm(run.dir, { recursive: true, force: true });
    } catch (error) {
      this.ioError(`Cannot delete the run folder ${run.dir}`, error);
    }
    this.runs.delete(runId);
    for (const [subscription, owner] of this.subscriptions) {
      if (owner === run) this.subscriptions.delete(subscription);
    }
  }

  /** Kill a run's worker at once, without a checkpoint (as a crash would). For app quit and tests. */
  async killRun(runId: string): Promise<void> {
    const run = this.runs.get(runId);
    if (run?.worker && !run.workerDone) await run.worker.kill();
  }

  async listRuns(): Promise<RunInfo[]> {
    let entries: string[];
    try {
      entries = (await readdir(this.runsDir, { withFileTypes: true }))
        .filter((e) => e.isDirectory() && RUN_ID_PATTERN.test(e.name))
        .map((e) => e.name);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new StudioError('io', `Cannot read the runs folder ${this.runsDir}: ${errorText(error)}`);
    }
    const infos = await Promise.all(
      entries.map(async (id) => {
        try {
          const run = this.runs.get(id);
          const meta = run ? run.meta : await this.readMeta(id);
          return await this.runInfo(meta, run);
        } catch (error) {
          this.log('warn', `Run folder ${id} is skipped in the run list: ${errorText(error)}`);
          return undefined;
        }
      }),
    );
    return infos
      .filter((i): i is RunInfo => i !== undefined)
      .sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id));
  }

  async subscribe(
    runId: string,
    listener: RunEventListener,
    options: { fromSeq?: number } = {},
  ): Promise<string> {
    if (typeof listener !== 'function')
      throw new StudioError('bad-arguments', 'subscribe needs a listener function.');
    const run = await this.getRun(runId);
    const id = `sub-${++this.subscriptionCounter}`;
    // History and registration in one synchronous stretch: no event can fall between them.
    const from = Math.max(0, Math.floor(options.fromSeq ?? 0));
    for (let seq = from; seq < run.history.length; seq++)
      this.deliver(listener, run.history[seq], seq, runId);
    run.listeners.set(id, listener);
    this.subscriptions.set(id, run);
    return id;
  }

  async unsubscribe(subscriptionId: string): Promise<void> {
    const run = this.subscriptions.get(subscriptionId);
    if (!run) return;
    run.listeners.delete(subscriptionId);
    this.subscriptions.delete(subscriptionId);
  }

  /** Stop every active run (each writes a checkpoint), kill those that do not end in time. */
  async shutdown(timeoutMs = 10_000): Promise<void> {
    this.closed = true;
    const active = [...this.runs.values()].filter((r) => this.isActive(r));
    for (const run of active) run.worker?.stop();
    const all = Promise.all(active.map((r) => r.worker?.done));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      all.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      for (const run of active) {
        if (!run.workerDone) {
          this.log('warn', `Run ${run.id} did not stop within ${timeoutMs} ms: its worker is killed.`);
          await run.worker?.kill();
        }
      }
    }
    await Promise.all([...this.runs.values()].map((r) => r.metaWrite));
  }

  // --- internals ---

  private assertOpen(): void {
    if (this.closed) throw new StudioError('conflict', 'The studio is shutting down: no new run can start.');
  }

  private isActive(run: ManagedRun): boolean {
    return Boolean(run.worker) && !run.workerDone;
  }

  private async activeWorker(runId: string, action: string): Promise<WorkerRun> {
    const run = await this.getRun(runId);
    if (!run.worker || run.workerDone) {
      const hint = run.meta.status === 'finished' ? '' : ' Use "resume from checkpoint" to continue it.';
      throw new StudioError(
        'conflict',
        `Run '${runId}' is ${run.meta.status}, so it cannot ${action}.${hint}`,
      );
    }
    return run.worker;
  }

  private launch(run: ManagedRun, options: WorkerRunOptions): void {
    let worker: WorkerRun;
    try {
      worker = new WorkerRun(options);
    } catch (error) {
      const message = `The training worker could not start: ${errorText(error)}`;
      this.record(run, { type: 'error', message });
      this.record(run, { type: 'status', status: 'failed', iteration: run.meta.iteration, message });
      throw new StudioError('internal', message);
    }
    run.worker = worker;
    run.workerDone = false;
    worker.on((event) => this.record(run, event));
    worker.done.then(
      (summary) => {
        run.workerDone = true;
        run.meta.status = summary.status;
        // A crashed worker reports no progress: keep what the events said.
        run.meta.iteration = Math.max(run.meta.iteration, summary.iteration);
        run.meta.envSteps = Math.max(run.meta.envSteps, summary.envSteps);
        if (summary.backend) run.meta.backend = summary.backend;
        if (summary.error) run.meta.error = summary.error.message;
        this.saveMeta(run);
      },
      (error) => {
        run.workerDone = true;
        this.log('error', `Run ${run.id}: ${errorText(error)}`);
      },
    );
  }

  private record(run: ManagedRun, event: RunEvent): void {
    const seq = run.history.length;
    run.history.push(event);
    const meta = run.meta;
    switch (event.type) {
      case 'status':
        meta.status = event.status;
        if (event.status === 'starting') meta.error = undefined;
        else meta.iteration = event.iteration;
        if (event.backend) meta.backend = event.backend;
        if (event.status === 'failed' && event.message) meta.error = event.message;
        this.saveMeta(run);
        break;
      case 'metrics':
        meta.iteration = event.record.iteration + 1;
        meta.envSteps = event.record.envSteps;
        break;
      case 'checkpoint':
        this.saveMeta(run);
        break;
      case 'error':
        meta.error = event.message;
        break;
      case 'samples':
        // Emptied, not removed: `seq` is an index into the history and must stay stable.
        for (const old of run.sampleThinner.add(seq, event.iteration)) {
          const thinned = run.history[old];
          if (thinned?.type === 'samples') run.history[old] = { ...thinned, samples: [] };
        }
        break;
      default:
        break;
    }
    for (const listener of run.listeners.values()) this.deliver(listener, event, seq, run.id);
  }

  private deliver(listener: RunEventListener, event: RunEvent, seq: number, runId: string): void {
    try {
      listener(event, seq);
    } catch (error) {
      // One broken subscriber (a closed window) must not stop the run or the others.
      this.log('warn', `A subscriber of run ${runId} failed: ${errorText(error)}`);
    }
  }

  private saveMeta(run: ManagedRun): void {
    run.meta.updatedAt = new Date().toISOString();
    const snapshot = { ...run.meta };
    run.metaWrite = run.metaWrite
      .then(() => writeJsonAtomic(path.join(run.dir, 'run.json'), snapshot))
      .catch((error) => this.log('error', `Cannot write run.json of run ${run.id}: ${errorText(error)}`));
  }

  /** A run known to this process, or loaded from its folder (history rebuilt from metrics.jsonl). */
  private async getRun(runId: string): Promise<ManagedRun> {
    if (typeof runId !== 'string' || !RUN_ID_PATTERN.test(runId)) {
      throw new StudioError('bad-arguments', `'${String(runId).slice(0, 100)}' is not a run id.`);
    }
    const known = this.runs.get(runId);
    if (known) return known;
    let loading = this.loading.get(runId);
    if (!loading) {
      loading = this.loadRun(runId).finally(() => this.loading.delete(runId));
      this.loading.set(runId, loading);
    }
    return loading;
  }

  private async loadRun(runId: string): Promise<ManagedRun> {
    const meta = await this.readMeta(runId);
    const dir = path.join(this.runsDir, runId);
    const history: RunEvent[] = [];
    const metricsText = await readFile(path.join(dir, 'metrics.jsonl'), 'utf8').catch(() => '');
    for (const line of metricsText.split('\n')) {
      if (!line.trim()) continue;
      try {
        history.push({ type: 'metrics', record: JSON.parse(line) as MetricsRecord });
      } catch {
        this.log('warn', `Run ${runId}: a line of metrics.jsonl is not JSON and is skipped.`);
      }
    }
    if (meta.error) history.push({ type: 'error', message: meta.error });
    history.push({
      type: 'status',
      status: meta.status,
      iteration: meta.iteration,
      backend: meta.backend,
      message: meta.error,
    });
    const run: ManagedRun = {
      id: runId,
      dir,
      meta,
      history,
      listeners: new Map(),
      workerDone: true,
      metaWrite: Promise.resolve(),
      sampleThinner: new SampleThinner(),
    };
    // Another call may have registered it meanwhile (a resume that started it): keep that one.
    const existing = this.runs.get(runId);
    if (existing) return existing;
    this.runs.set(runId, run);
    return run;
  }

  /** run.json of a run not in memory; a run left active by a process that is gone was interrupted. */
  private async readMeta(runId: string): Promise<RunMeta> {
    const dir = path.join(this.runsDir, runId);
    let meta: RunMeta | undefined;
    try {
      const value: unknown = JSON.parse(await readFile(path.join(dir, 'run.json'), 'utf8'));
      if (isObject(value) && value.format === RUN_FILE_FORMAT) meta = value as unknown as RunMeta;
    } catch {
      // Older or foreign run folders (e.g. from the CLI) have no run.json: derived below.
    }
    if (!meta) {
      if (!existsSync(dir)) throw new StudioError('not-found', `There is no run '${runId}'.`);
      const graphText = await readFile(path.join(dir, 'graph.json'), 'utf8').catch(() => undefined);
      const graph = graphText ? parseGraphText(graphText).graph : undefined;
      const created = (await stat(dir)).mtime.toISOString();
      const checkpoint = await this.lastCheckpoint(dir);
      meta = {
        format: RUN_FILE_FORMAT,
        version: 1,
        id: runId,
        graphName: graph?.name ?? runId,
        createdAt: created,
        updatedAt: created,
        status: 'stopped',
        iteration: checkpoint?.iteration ?? 0,
        totalIterations: graph?.run.iterations ?? 0,
        envSteps: 0,
      };
    }
    meta = { ...meta, id: runId };
    if (ACTIVE_STATUSES.includes(meta.status) && !processAlive(meta.pid)) {
      meta.status = 'failed';
      meta.error = 'The app closed while this run was active. Resume it from its last checkpoint.';
    }
    return meta;
  }

  private async runInfo(meta: RunMeta, run: ManagedRun | undefined): Promise<RunInfo> {
    const dir = path.join(this.runsDir, meta.id);
    const lastCheckpoint = await this.lastCheckpoint(dir);
    const active = run ? this.isActive(run) : false;
    const elsewhere = !run && ACTIVE_STATUSES.includes(meta.status);
    return {
      id: meta.id,
      graphName: meta.graphName,
      status: meta.status,
      iteration: meta.iteration,
      totalIterations: meta.totalIterations,
      envSteps: meta.envSteps,
      ...(meta.backend ? { backend: meta.backend } : {}),
      createdAt: meta.createdAt,
      updatedAt: meta.updatedAt,
      active,
      ...(lastCheckpoint ? { lastCheckpoint } : {}),
      resumable: !active && !elsewhere && lastCheckpoint !== undefined,
      ...(meta.error ? { error: meta.error } : {}),
    };
  }

  private async lastCheckpoint(runDir: string): Promise<CheckpointInfo | undefined> {
    try {
      const latest: unknown = JSON.parse(
        await readFile(path.join(runDir, 'checkpoints', 'latest.json'), 'utf8'),
      );
      const name = isObject(latest) ? latest.checkpoint : undefined;
      if (typeof name !== 'string' || !/^iter-\d+$/.test(name)) return undefined;
      if (!existsSync(path.join(runDir, 'checkpoints', name, 'manifest.json'))) return undefined;
      return { name, iteration: Number(name.slice('iter-'.length)) };
    } catch {
      return undefined;
    }
  }
}

/** A node's params run through its type's migrations up to the current version; unchanged when one fails. */
function upgradeNodeParams(
  node: GraphFile['nodes'][number],
  registry: NodeRegistry,
): GraphFile['nodes'][number] {
  const definition = registry.get(node.type);
  if (!definition || node.typeVersion >= definition.version) return node;
  let params: Record<string, unknown> = { ...node.params };
  for (let v = node.typeVersion; v < definition.version; v++) {
    const up = definition.migrations?.[v];
    if (!up) return node;
    try {
      params = up(params);
    } catch {
      return node;
    }
  }
  return { ...node, typeVersion: definition.version, params };
}
