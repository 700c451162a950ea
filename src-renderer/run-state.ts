/**
 * What the run workspace shows, folded from a run's event stream (history first, then live events).
 * The fold mutates one RunState (a 100k-event history replays without copying per event); `snapshotRunView`
 * takes the immutable view React renders, at most ~10 times a second (see run/run-stream.ts).
 */

import type { RunEvent, RunStatus } from '../src-main/api/studio-api.ts';
import type { Finding, TrajectorySample } from '../src-main/engine/events.ts';
import type { LiveNodeState } from './live-state.ts';
import { MetricSeries } from './run/metric-series.ts';

export type RunViewStatus = RunStatus | 'connecting';

/** A line of the logs and findings panel. */
export interface LogEntry {
  /** Position in the run's history: a stable key. */
  seq: number;
  kind: 'log' | 'error' | 'finding' | 'pause';
  level: 'info' | 'warn' | 'error';
  message: string;
  nodeId?: string;
  field?: string;
  iteration: number;
  finding?: Finding;
}

export interface RunView {
  runId: string;
  graphName: string;
  status: RunViewStatus;
  /** Completed iterations. */
  iteration: number;
  totalIterations: number;
  backend?: string;
  /** Latest value of every metric. */
  metrics: Readonly<Record<string, number>>;
  /** Metric records on the chart (a resumed run's repeated iterations replace earlier ones). */
  metricPoints: number;
  envSteps: number;
  /** Training seconds (pauses excluded), from the latest metrics record. */
  elapsedSeconds: number;
  /** Environment steps per second over the last few iterations. */
  stepsPerSecond?: number;
  lastCheckpoint?: number;
  /** The latest error or status message worth showing. */
  message?: string;
  entries: readonly LogEntry[];
  findings: readonly Finding[];
  /** Iterations whose trajectory samples are held, ascending. */
  sampleIterations: readonly number[];
  nodeStates: ReadonlyMap<string, LiveNodeState>;
  /** The run's metric columns (shared, grown in place; `seriesVersion` tells when they changed). */
  series: MetricSeries;
  seriesVersion: number;
}

/** Most log entries kept; older ones scroll away. */
export const LOG_ENTRIES = 500;
/** Most iterations whose trajectory samples the window holds (the server thins its own history too). */
export const SAMPLE_ITERATIONS = 60;
/** Iterations over which steps/s is measured. */
const RATE_WINDOW = 10;

/** Names that make a good headline for a node, best first. */
const HEADLINE_HINTS = ['return', 'success', 'reward', 'accuracy', 'loss'];

export class RunState {
  readonly runId: string;
  graphName: string;
  status: RunViewStatus = 'connecting';
  iteration = 0;
  totalIterations: number;
  backend?: string;
  metrics: Record<string, number> = {};
  envSteps = 0;
  elapsedSeconds = 0;
  lastCheckpoint?: number;
  message?: string;
  readonly series = new MetricSeries();
  entries: LogEntry[] = [];
  findings: Finding[] = [];
  readonly samples = new Map<number, TrajectorySample[]>();
  /** Nodes named by an error (a failed or NaN-paused run) and their message. */
  readonly nodeErrors = new Map<string, string>();
  readonly nodeWarnings = new Map<string, string>();
  private seq = 0;

  constructor(runId: string, graphName: string, totalIterations: number) {
    this.runId = runId;
    this.graphName = graphName;
    this.totalIterations = totalIterations;
  }

  apply(event: RunEvent, seq = this.seq): void {
    this.seq = seq + 1;
    switch (event.type) {
      case 'status':
        if (event.status === 'starting') {
          this.message = undefined;
          this.nodeErrors.clear();
        }
        if (event.status === 'failed' && event.message) this.message = event.message;
        this.status = event.status;
        this.iteration = event.iteration;
        this.backend = event.backend ?? this.backend;
        break;
      case 'metrics': {
        const { record } = event;
        this.series.add(record);
        this.iteration = record.iteration + 1;
        this.envSteps = record.envSteps;
        this.elapsedSeconds = record.seconds;
        Object.assign(this.metrics, record.metrics);
        // A NaN pause that was resumed and got through an iteration is over.
        this.nodeErrors.clear();
        break;
      }
      case 'checkpoint':
        this.lastCheckpoint = event.iteration;
        break;
      case 'error': {
        const where = event.nodeId && !event.message.startsWith(event.nodeId) ? `${event.nodeId}: ` : '';
        this.message = `${where}${event.message}`;
        if (event.nodeId) this.nodeErrors.set(event.nodeId, event.message);
        this.addEntry({
          seq,
          kind: 'error',
          level: 'error',
          message: this.message,
          nodeId: event.nodeId,
          field: event.field,
          iteration: this.iteration,
        });
        break;
      }
      case 'log': {
        const pause = event.level === 'warn' && /paused the run/.test(event.message);
        if (event.nodeId && event.level !== 'info') this.nodeWarnings.set(event.nodeId, event.message);
        this.addEntry({
          seq,
          kind: pause ? 'pause' : 'log',
          level: event.level,
          message: event.message,
          nodeId: event.nodeId,
          iteration: this.iteration,
        });
        break;
      }
      case 'finding': {
        const { finding } = event;
        this.findings = [...this.findings, finding].slice(-LOG_ENTRIES);
        if (finding.severity !== 'info') this.nodeWarnings.set(finding.nodeId, finding.title);
        this.addEntry({
          seq,
          kind: 'finding',
          level: finding.severity === 'info' ? 'info' : finding.severity === 'warning' ? 'warn' : 'error',
          message: finding.title,
          nodeId: finding.nodeId,
          iteration: finding.iteration,
          finding,
        });
        break;
      }
      case 'samples':
        // The server empties old samples in its history (thinning): nothing to hold for those.
        if (event.samples.length === 0) break;
        this.samples.set(event.iteration, event.samples);
        if (this.samples.size > SAMPLE_ITERATIONS) {
          const oldest = Math.min(...this.samples.keys());
          this.samples.delete(oldest);
        }
        break;
      default:
        break;
    }
  }

  private addEntry(entry: LogEntry): void {
    this.entries.push(entry);
    if (this.entries.length > LOG_ENTRIES * 2) this.entries = this.entries.slice(-LOG_ENTRIES);
  }

  /** Steps per second over the last RATE_WINDOW records (pauses are not in `seconds`). */
  stepsPerSecond(): number | undefined {
    const { envSteps, seconds } = this.series;
    const n = seconds.length;
    if (n < 2) return n === 1 && seconds[0]! > 0 ? envSteps[0]! / seconds[0]! : undefined;
    const from = Math.max(0, n - 1 - RATE_WINDOW);
    const dt = seconds[n - 1]! - seconds[from]!;
    return dt > 0 ? (envSteps[n - 1]! - envSteps[from]!) / dt : undefined;
  }

  nodeStates(): Map<string, LiveNodeState> {
    const states = new Map<string, LiveNodeState>();
    const byNode = new Map<string, string[]>();
    for (const name of Object.keys(this.metrics)) {
      const slash = name.indexOf('/');
      if (slash <= 0) continue;
      const nodeId = name.slice(0, slash);
      let list = byNode.get(nodeId);
      if (!list) {
        list = [];
        byNode.set(nodeId, list);
      }
      list.push(name.slice(slash + 1));
    }
    const live = this.status === 'running' || this.status === 'starting' || this.status === 'paused';
    for (const [nodeId, names] of byNode) {
      names.sort();
      const headline =
        HEADLINE_HINTS.map((hint) => names.find((n) => n.includes(hint))).find(Boolean) ?? names[0]!;
      // A badge says the node is live; after the run only warnings and errors stay on the canvas.
      if (!live) continue;
      states.set(nodeId, {
        status: this.status === 'paused' ? 'paused' : 'running',
        headline: { name: headline, value: this.metrics[`${nodeId}/${headline}`]! },
      });
    }
    for (const [nodeId, message] of this.nodeWarnings) {
      states.set(nodeId, { ...states.get(nodeId), status: 'warning', message });
    }
    for (const [nodeId, message] of this.nodeErrors) {
      states.set(nodeId, { ...states.get(nodeId), status: 'error', message });
    }
    return states;
  }

  snapshot(): RunView {
    return {
      runId: this.runId,
      graphName: this.graphName,
      status: this.status,
      iteration: this.iteration,
      totalIterations: this.totalIterations,
      backend: this.backend,
      metrics: { ...this.metrics },
      metricPoints: this.series.length,
      envSteps: this.envSteps,
      elapsedSeconds: this.elapsedSeconds,
      stepsPerSecond: this.stepsPerSecond(),
      lastCheckpoint: this.lastCheckpoint,
      message: this.message,
      entries: this.entries.slice(-LOG_ENTRIES),
      findings: this.findings,
      sampleIterations: [...this.samples.keys()].sort((a, b) => a - b),
      nodeStates: this.nodeStates(),
      series: this.series,
      seriesVersion: this.series.version,
    };
  }
}

export const isActiveStatus = (status: RunViewStatus | undefined): boolean =>
  status === 'starting' || status === 'running' || status === 'paused' || status === 'connecting';
