/**
 * A run's metrics as columns (one number array per metric, aligned with the iterations), grown in place:
 * charts of 100k points redraw from these arrays without copying them. A record for an iteration already
 * held (a run resumed from a checkpoint repeats the iterations after it) replaces the tail from there, so
 * the resumed run continues the same curve.
 */
import type { MetricsRecord } from '../../src-main/api/studio-api.ts';

export class MetricSeries {
  readonly iterations: number[] = [];
  readonly envSteps: number[] = [];
  readonly seconds: number[] = [];
  /** Metric name -> values aligned with `iterations` (null where a record lacked the metric). */
  readonly columns = new Map<string, (number | null)[]>();
  /** Bumped on every change, so views know when to redraw. */
  version = 0;
  /** Bumped when points are dropped (a resumed run's repeated iterations): caches built on the old tail are stale. */
  truncations = 0;
  /** First index changed since `takeChangedFrom` was last called (what a store must write again). */
  private changedFrom: number | undefined;

  /** The first index changed since the previous call (undefined: nothing changed), and reset. */
  takeChangedFrom(): number | undefined {
    const from = this.changedFrom;
    this.changedFrom = undefined;
    return from;
  }

  private markChanged(index: number): void {
    this.changedFrom = this.changedFrom === undefined ? index : Math.min(this.changedFrom, index);
    this.version++;
  }

  get length(): number {
    return this.iterations.length;
  }

  get names(): string[] {
    return [...this.columns.keys()].sort();
  }

  add(record: MetricsRecord): void {
    const last = this.iterations[this.iterations.length - 1];
    if (last !== undefined && record.iteration <= last) this.truncateFrom(record.iteration);
    const index = this.iterations.length;
    this.iterations.push(record.iteration);
    this.envSteps.push(record.envSteps);
    this.seconds.push(record.seconds);
    for (const [name, value] of Object.entries(record.metrics)) {
      let column = this.columns.get(name);
      if (!column) {
        column = new Array<number | null>(index).fill(null);
        this.columns.set(name, column);
      }
      column.push(Number.isFinite(value) ? value : null);
    }
    for (const column of this.columns.values()) if (column.length === index) column.push(null);
    this.markChanged(index);
  }

  /** Drop every point at or after `iteration`. */
  truncateFrom(iteration: number): void {
    let keep = this.iterations.length;
    while (keep > 0 && this.iterations[keep - 1]! >= iteration) keep--;
    if (keep === this.iterations.length) return;
    this.iterations.length = keep;
    this.envSteps.length = keep;
    this.seconds.length = keep;
    for (const column of this.columns.values()) column.length = keep;
    this.truncations++;
    this.markChanged(keep);
  }

  /** The record at `index`, as it arrived (missing metrics left out). */
  record(index: number): MetricsRecord {
    const metrics: Record<string, number> = {};
    for (const [name, column] of this.columns) {
      const value = column[index];
      if (value !== null && value !== undefined) metrics[name] = value;
    }
    return {
      iteration: this.iterations[index]!,
      envSteps: this.envSteps[index]!,
      seconds: this.seconds[index]!,
      metrics,
    };
  }

  /** Latest finite value of a metric. */
  latest(name: string): number | undefined {
    const column = this.columns.get(name);
    if (!column) return undefined;
    for (let i = column.length - 1; i >= 0; i--) if (column[i] !== null) return column[i]!;
    return undefined;
  }
}

/**
 * Exponential moving average with TensorBoard's debiasing: s_t = w s_{t-1} + (1 - w) x_t, shown as
 * s_t / (1 - w^n) where n counts the finite values so far, so the start is not pulled towards zero.
 * Missing values stay missing. weight 0 returns the values unchanged.
 */
export function smoothSeries(values: readonly (number | null)[], weight: number): (number | null)[] {
  if (weight <= 0) return values.slice();
  const out = new Array<number | null>(values.length);
  let accumulated = 0;
  let count = 0;
  for (let i = 0; i < values.length; i++) {
    const x = values[i];
    if (x === null || x === undefined) {
      out[i] = null;
      continue;
    }
    accumulated = weight * accumulated + (1 - weight) * x;
    count++;
    out[i] = accumulated / (1 - weight ** count);
  }
  return out;
}

/**
 * smoothSeries kept up to date as a column grows: only new points are smoothed (a 100k-point chart
 * redraws without re-smoothing the whole curve ten times a second). Starts over after a truncation.
 */
export class IncrementalSmoother {
  private readonly out: (number | null)[] = [];
  private accumulated = 0;
  private count = 0;
  private truncations = -1;

  constructor(readonly weight: number) {}

  update(values: readonly (number | null)[], truncations: number): readonly (number | null)[] {
    if (this.weight <= 0) return values;
    if (truncations !== this.truncations || values.length < this.out.length) {
      this.out.length = 0;
      this.accumulated = 0;
      this.count = 0;
      this.truncations = truncations;
    }
    const w = this.weight;
    for (let i = this.out.length; i < values.length; i++) {
      const x = values[i];
      if (x === null || x === undefined) {
        this.out.push(null);
        continue;
      }
      this.accumulated = w * this.accumulated + (1 - w) * x;
      this.count++;
      this.out.push(this.accumulated / (1 - w ** this.count));
    }
    return this.out;
  }
}

const csvCell = (text: string) => (/[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text);

/** iteration, env_steps, seconds, then every metric (sorted) as columns; missing values are empty. */
export function seriesToCsv(series: MetricSeries): string {
  const names = series.names;
  const lines = [['iteration', 'env_steps', 'seconds', ...names].map(csvCell).join(',')];
  for (let i = 0; i < series.length; i++) {
    const row = [String(series.iterations[i]), String(series.envSteps[i]), String(series.seconds[i])];
    for (const name of names) {
      const value = series.columns.get(name)![i];
      row.push(value === null || value === undefined ? '' : String(value));
    }
    lines.push(row.join(','));
  }
  return `${lines.join('\n')}\n`;
}

/** Metric names grouped by the node that publishes them (`<nodeId>/<name>`), nodes and names sorted. */
export function groupByNode(names: readonly string[]): { nodeId: string; names: string[] }[] {
  const groups = new Map<string, string[]>();
  for (const name of names) {
    const slash = name.indexOf('/');
    const nodeId = slash > 0 ? name.slice(0, slash) : '(run)';
    let group = groups.get(nodeId);
    if (!group) {
      group = [];
      groups.set(nodeId, group);
    }
    group.push(name);
  }
  return [...groups.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([nodeId, list]) => ({ nodeId, names: list.sort() }));
}

/**
 * Several runs' values of one metric on a shared x axis (the union of their iterations, ascending), as
 * uPlot wants: [xs, run1 values, run2 values, ...] with null where a run has no point.
 */
export function alignRuns(
  runs: readonly { iterations: readonly number[]; values: readonly (number | null)[] }[],
): [number[], ...(number | null)[][]] {
  const xs = [...new Set(runs.flatMap((r) => r.iterations))].sort((a, b) => a - b);
  const position = new Map(xs.map((x, i) => [x, i]));
  const columns = runs.map((run) => {
    const column = new Array<number | null>(xs.length).fill(null);
    run.iterations.forEach((x, i) => {
      column[position.get(x)!] = run.values[i] ?? null;
    });
    return column;
  });
  return [xs, ...columns];
}

/**
 * Points to draw for one series between fromX and toX: everything when there are at most 2 x `buckets`
 * points, else the first, the minimum and the maximum and the last of each of `buckets` equal slices, in
 * x order, so spikes survive (min/max decimation) and a 100k-point curve draws as a few thousand.
 */
export function decimate(
  xs: readonly number[],
  ys: readonly (number | null)[],
  buckets: number,
  fromX = Number.NEGATIVE_INFINITY,
  toX = Number.POSITIVE_INFINITY,
): { xs: number[]; ys: (number | null)[] } {
  let start = 0;
  while (start < xs.length && xs[start]! < fromX) start++;
  let end = xs.length;
  while (end > start && xs[end - 1]! > toX) end--;
  // One point beyond each side keeps the line running to the edge of a zoomed view.
  start = Math.max(0, start - 1);
  end = Math.min(xs.length, end + 1);
  const n = end - start;
  if (n <= buckets * 2) return { xs: xs.slice(start, end), ys: ys.slice(start, end) };
  const outX: number[] = [];
  const outY: (number | null)[] = [];
  const size = n / buckets;
  for (let b = 0; b < buckets; b++) {
    const lo = start + Math.floor(b * size);
    const hi = Math.min(end, start + Math.floor((b + 1) * size));
    let minI = -1;
    let maxI = -1;
    for (let i = lo; i < hi; i++) {
      const y = ys[i];
      if (y === null || y === undefined) continue;
      if (minI < 0 || y < ys[minI]!) minI = i;
      if (maxI < 0 || y > ys[maxI]!) maxI = i;
    }
    const picks = [lo, minI, maxI, hi - 1].filter((i) => i >= lo).sort((a, b2) => a - b2);
    let previous = -1;
    for (const i of picks) {
      if (i === previous) continue;
      previous = i;
      outX.push(xs[i]!);
      outY.push(ys[i] ?? null);
    }
  }
  return { xs: outX, ys: outY };
}
