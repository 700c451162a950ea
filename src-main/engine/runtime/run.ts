/**
 * One training run: compile, start the backend, build every node, then run the schedule once per
 * iteration. Pure Node (no Electron): the worker, the CLI, tests and exported code all call `executeRun`.
 */
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startBackend } from '../backend.ts';
import { compileGraph, type Plan, type PlanNode } from '../compiler.ts';
import { formatDiagnostic, GraphError, hasErrors } from '../diagnostics.ts';
import type { Finding, MetricsRecord, RunEvent, RunStatus, TrajectorySample } from '../events.ts';
import type { BackendName, GraphFile } from '../graph/types.ts';
import { NodeError, type NodeInstance, type NodeState, NonFiniteError, type Tf } from '../node-api.ts';
import type { NodeRegistry } from '../registry.ts';
import { Rng } from '../rng.ts';
import { type RunSnapshot, readCheckpoint, writeCheckpoint } from './checkpoint.ts';
import { RunControl, StopSignal } from './control.ts';

export interface RunOptions {
  graph: GraphFile | unknown;
  registry: NodeRegistry;
  /** Overrides of the graph's own settings. */
  seed?: number;
  iterations?: number;
  backend?: BackendName;
  /** Folder for graph.json, metrics.jsonl and checkpoints; none = keep nothing on disk. */
  runDir?: string;
  /** A run folder or checkpoint folder to continue from. Its graph and seed are used. */
  resumeFrom?: string;
  control?: RunControl;
  onEvent?: (event: RunEvent) => void;
  /**
   * What to do when a node asks to pause (a safety monitor's finding): 'pause' waits for a person
   * (the app), 'stop' ends the run with a checkpoint (the CLI and headless exports, where nobody can
   * press Resume). Default 'pause'.
   */
  onPauseRequest?: 'pause' | 'stop';
}

export interface RunResult {
  status: RunStatus;
  iteration: number;
  envSteps: number;
  backend?: string;
  metrics: MetricsRecord[];
  error?: { message: string; nodeId?: string; field?: string };
  /**
   * Wall-clock seconds spent in each node's step (by node id) and in the engine's per-iteration state
   * snapshot ('engine/snapshot'): where the time goes. Not metrics: they differ run to run.
   */
  timings: Record<string, number>;
}

interface BuiltNode {
  plan: PlanNode;
  instance: NodeInstance;
  rng: Rng;
}

export async function executeRun(options: RunOptions): Promise<RunResult> {
  const control = options.control ?? new RunControl();
  const emit = options.onEvent ?? (() => {});
  const result: RunResult = { status: 'starting', iteration: 0, envSteps: 0, metrics: [], timings: {} };
  const setStatus = (status: RunStatus, message?: string) => {
    result.status = status;
    emit({ type: 'status', status, iteration: result.iteration, backend: result.backend, message });
  };
  const fail = (message: string, nodeId?: string, field?: string) => {
    result.error = { message, nodeId, field };
    emit({ type: 'error', message, nodeId, field });
    setStatus('failed', message);
    return result;
  };
  setStatus('starting');

  let resume: RunSnapshot | undefined;
  if (options.resumeFrom) {
    try {
      resume = await readCheckpoint(options.resumeFrom);
    } catch (error) {
      return fail((error as Error).message);
    }
  }
  const compiled = compileGraph(resume?.graph ?? options.graph, options.registry);
  for (const d of compiled.diagnostics.filter((x) => x.severity === 'warning')) {
    emit({ type: 'log', level: 'warn', message: formatDiagnostic(d), nodeId: d.nodeId });
  }
  if (!compiled.plan || hasErrors(compiled.diagnostics)) {
    const errors = compiled.diagnostics.filter((d) => d.severity === 'error');
    for (const d of errors)
      emit({ type: 'error', message: formatDiagnostic(d), nodeId: d.nodeId, field: d.param ?? d.port });
    result.error = { message: new GraphError(errors).message, nodeId: errors[0]?.nodeId };
    setStatus('failed', result.error.message);
    return result;
  }
  const plan = compiled.plan;
  const seed = resume?.seed ?? options.seed ?? plan.graph.seed;
  const totalIterations = options.iterations ?? resume?.totalIterations ?? plan.graph.run.iterations;
  const backendName = options.backend ?? plan.graph.run.backend;

  let tf: Tf;
  try {
    const backend = await startBackend(
      resume && backendName === 'auto' ? (resume.backend as BackendName) : backendName,
    );
    tf = backend.tf;
    result.backend = backend.name;
    emit({ type: 'log', level: 'info', message: `Backend: ${backend.name} (${backend.detail})` });
  } catch (error) {
    return fail((error as Error).message);
  }
  if (resume && resume.backend !== result.backend) {
    emit({
      type: 'log',
      level: 'warn',
      message: `Resuming a run made on '${resume.backend}' with '${result.backend}': numbers will differ slightly from an uninterrupted run.`,
    });
  }

  const built = new Map<string, BuiltNode>();
  const runInfo = { seed, totalIterations, backend: result.backend ?? 'cpu' };
  const dispose = () => {
    for (const node of built.values()) node.instance.dispose?.();
  };
  try {
    for (const node of plan.build) {
      const rng = Rng.forStream(seed, node.id);
      const inputs: Record<string, unknown> = {};
      for (const port of node.definition.inputs) {
        const wires = node.inputs[port.name] ?? [];
        const values = wires.map((w) => built.get(w.node)?.instance.components?.[w.port]);
        if (port.multiple) inputs[port.name] = values;
        else if (values.length) inputs[port.name] = values[0];
      }
      const instance = await node.definition.create(node.params, {
        nodeId: node.id,
        label: node.label,
        tf,
        rng,
        inputs,
        run: runInfo,
        control,
        log: (level, message) => emit({ type: 'log', level, message, nodeId: node.id }),
      });
      built.set(node.id, { plan: node, instance, rng });
    }
  } catch (error) {
    dispose();
    return fail(errorMessage(error), errorNode(error), errorField(error));
  }

  let iteration = 0;
  let envSteps = 0;
  let secondsBefore = 0;
  try {
    if (resume) {
      await restoreSnapshot(resume, built);
      iteration = resume.iteration;
      envSteps = resume.envSteps;
      secondsBefore = resume.seconds;
    }
  } catch (error) {
    dispose();
    return fail(`Cannot resume: ${errorMessage(error)}`, errorNode(error));
  }
  result.iteration = iteration;
  result.envSteps = envSteps;

  const metricsFile = options.runDir ? path.join(options.runDir, 'metrics.jsonl') : undefined;
  if (options.runDir) {
    await mkdir(options.runDir, { recursive: true });
    await writeFile(path.join(options.runDir, 'graph.json'), JSON.stringify(plan.graph, null, 2));
    await truncateMetrics(metricsFile!, iteration);
  }

  let lastSnapshot: RunSnapshot | undefined;
  const snapshot = async (): Promise<RunSnapshot> => ({
    iteration,
    envSteps,
    seconds: secondsBefore + activeSeconds(),
    seed,
    totalIterations,
    backend: result.backend ?? 'cpu',
    graph: plan.graph,
    nodeVersions: Object.fromEntries(plan.build.map((n) => [n.id, n.definition.version])),
    nodes: Object.fromEntries(
      await Promise.all(
        [...built.values()].map(async (b) => [
          b.plan.id,
          { rng: b.rng.state(), state: detachJson(await b.instance.saveState?.()) },
        ]),
      ),
    ),
  });
  const saveCheckpoint = async (snap: RunSnapshot) => {
    if (!options.runDir) return;
    const where = await writeCheckpoint(options.runDir, snap);
    emit({ type: 'checkpoint', iteration: snap.iteration, path: where });
  };

  // Wall time counts only while running, so that `seconds` excludes pauses.
  let activeMs = 0;
  let since = performance.now();
  const activeSeconds = () => (activeMs + (performance.now() - since)) / 1000;
  control.onWait = (waiting) => {
    if (waiting) {
      activeMs += performance.now() - since;
      setStatus('paused');
    } else {
      since = performance.now();
      setStatus('running');
    }
  };

  setStatus('running');
  try {
    // The last completed iteration's state, in memory: Stop writes it, a NaN pause rolls back to it.
    lastSnapshot = await snapshot();
    while (iteration < totalIterations) {
      await control.iterationBoundary();
      let record: IterationRecord;
      try {
        record = await runIteration(plan, built, iteration, totalIterations, result.timings);
      } catch (error) {
        if (!(error instanceof NonFiniteError) || !lastSnapshot) throw error;

        // Numbers went bad: pause with the node named; Resume retries from the last good state.
        emit({ type: 'error', message: error.message, nodeId: error.nodeId, field: error.field });
        result.error = { message: error.message, nodeId: error.nodeId, field: error.field };
        control.pause();
        await control.iterationBoundary();
        await restoreSnapshot(lastSnapshot, built);
        continue;
      }
      envSteps += record.envSteps;
      iteration += 1;
      const line: MetricsRecord = {
        iteration: iteration - 1,
        envSteps,
        seconds: round3(secondsBefore + activeSeconds()),
        metrics: record.metrics,
      };
      result.iteration = iteration;
      result.envSteps = envSteps;
      result.metrics.push(line);
      emit({ type: 'metrics', record: line });
      if (record.samples.length) emit({ type: 'samples', iteration: iteration - 1, samples: record.samples });
      for (const finding of record.findings) emit({ type: 'finding', finding });
      if (metricsFile) await appendFile(metricsFile, `${JSON.stringify(line)}\n`);
      const snapshotStart = performance.now();
      lastSnapshot = await snapshot();
      addSeconds(result.timings, 'engine/snapshot', snapshotStart);
      for (const p of record.pauses) {
        // A node asked a person to look: pause after the completed iteration; Resume continues.
        emit({
          type: 'log',
          level: 'warn',
          message: `${p.nodeId}: paused the run: ${p.reason}`,
          nodeId: p.nodeId,
        });
        if (options.onPauseRequest === 'stop') control.stop();
        else control.pause();
      }
      const every = plan.graph.run.checkpointEvery;
      if ((every > 0 && iteration % every === 0) || iteration === totalIterations)
        await saveCheckpoint(lastSnapshot);
    }
    setStatus('finished');
  } catch (error) {
    if (error instanceof StopSignal) {
      if (lastSnapshot) await saveCheckpoint(lastSnapshot);
      setStatus('stopped');
    } else {
      if (lastSnapshot) await saveCheckpoint(lastSnapshot).catch(() => {});
      fail(errorMessage(error), errorNode(error), errorField(error));
    }
  } finally {
    dispose();
  }
  return result;
}

async function runIteration(
  plan: Plan,
  built: Map<string, BuiltNode>,
  iteration: number,
  totalIterations: number,
  timings: Record<string, number>,
): Promise<IterationRecord> {
  const streams = new Map<string, Record<string, unknown>>();
  const metrics: Record<string, number> = {};
  const samples: TrajectorySample[] = [];
  const findings: Finding[] = [];
  const pauses: Array<{ nodeId: string; reason: string; field?: string }> = [];
  let envSteps = 0;
  for (const id of plan.schedule) {
    const node = built.get(id)!;
    if (!node.instance.step) continue;
    const inputs: Record<string, unknown> = {};
    for (const port of node.plan.definition.inputs) {
      const wires = node.plan.inputs[port.name] ?? [];
      const values = wires.map(
        (w) => streams.get(w.node)?.[w.port] ?? built.get(w.node)?.instance.components?.[w.port],
      );
      if (port.multiple) inputs[port.name] = values;
      else if (values.length) inputs[port.name] = values[0];
    }
    const started = performance.now();
    const out = await node.instance.step(inputs, { iteration, totalIterations });
    addSeconds(timings, id, started);
    streams.set(id, out.outputs ?? {});
    envSteps += out.envSteps ?? 0;
    for (const [name, value] of Object.entries(out.metrics ?? {})) {
      if (!Number.isFinite(value)) throw new NonFiniteError(id, name, `metric ${name} = ${value}`);
      metrics[`${id}/${name}`] = value;
    }
    if (out.samples) samples.push(...out.samples);
    for (const f of out.findings ?? [])
      findings.push({ ...f, nodeId: f.nodeId ?? id, iteration: f.iteration ?? iteration });
    if (out.pause) pauses.push({ nodeId: id, ...out.pause });
  }
  return { envSteps, metrics, samples, findings, pauses };
}

/**
 * A node's saved state with its `json` part deep-copied: nodes often hand out live objects there (a
 * window of recent returns), and a snapshot must not change when the next iteration mutates them before
 * a Stop writes it. Arrays are copies by the saveState contract, so large weights are not copied twice.
 */
function detachJson(state: NodeState | undefined): NodeState | undefined {
  return state && state.json !== undefined ? { ...state, json: structuredClone(state.json) } : state;
}

function addSeconds(timings: Record<string, number>, key: string, startedMs: number): void {
  timings[key] = (timings[key] ?? 0) + (performance.now() - startedMs) / 1000;
}

interface IterationRecord {
  envSteps: number;
  metrics: Record<string, number>;
  samples: TrajectorySample[];
  findings: Finding[];
  pauses: Array<{ nodeId: string; reason: string; field?: string }>;
}

async function restoreSnapshot(snapshot: RunSnapshot, built: Map<string, BuiltNode>): Promise<void> {
  for (const [id, node] of built) {
    const saved = snapshot.nodes[id];
    if (!saved) throw new NodeError(id, 'the checkpoint has no state for this node');
    node.rng.setState(saved.rng);
    if (saved.state && node.instance.loadState) await node.instance.loadState(saved.state);
  }
}

/** On resume, drop metrics lines of iterations that will be run again. */
async function truncateMetrics(file: string, fromIteration: number): Promise<void> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return;
  }
  const kept = text
    .split('\n')
    .filter((line) => line.trim())
    .filter((line) => {
      try {
        return (JSON.parse(line) as MetricsRecord).iteration < fromIteration;
      } catch {
        return false;
      }
    });
  await writeFile(file, kept.map((l) => `${l}\n`).join(''));
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;
const errorMessage = (e: unknown) => (e instanceof Error ? e.message : String(e));
const errorNode = (e: unknown) =>
  e instanceof NodeError || e instanceof NonFiniteError ? e.nodeId : undefined;
const errorField = (e: unknown) =>
  e instanceof NodeError || e instanceof NonFiniteError ? e.field : undefined;
