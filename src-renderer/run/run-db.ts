/**
 * Run history in the window's IndexedDB (Dexie), apart from the editor's graph store: a record per run
 * (name, notes, graph snapshot, seed, backend, duration, final figures) and its metrics in blocks of
 * BLOCK_ITERATIONS iterations (a block is rewritten whole, so a history replayed after a reload, or the
 * iterations a checkpoint resume repeats, overwrite instead of piling up).
 */
import { Dexie, type EntityTable } from 'dexie';
import type { GraphFile, RunStatus } from '../../src-main/api/studio-api.ts';
import { MetricSeries } from './metric-series.ts';

export const RUN_DB_NAME = 'agent-rl-studio-runs';
export const BLOCK_ITERATIONS = 256;

export interface RunRecord {
  id: string;
  graphName: string;
  /** The user's name for the run (defaults to the graph's name and start time). */
  name: string;
  notes: string;
  createdAt: string;
  updatedAt: string;
  status: RunStatus | 'connecting';
  iteration: number;
  totalIterations: number;
  envSteps: number;
  /** Training seconds, pauses excluded. */
  durationSeconds: number;
  seed?: number;
  backend?: string;
  /** Latest value of every metric. */
  finalMetrics: Record<string, number>;
  /** The graph as it was run. */
  graph?: GraphFile;
}

export interface MetricBlock {
  runId: string;
  block: number;
  iterations: number[];
  envSteps: number[];
  seconds: number[];
  columns: Record<string, (number | null)[]>;
}

export type RunDb = Dexie & {
  runs: EntityTable<RunRecord, 'id'>;
  metricBlocks: Dexie.Table<MetricBlock, [string, number]>;
};

export function openRunDb(name = RUN_DB_NAME): RunDb {
  const db = new Dexie(name) as RunDb;
  db.version(1).stores({
    runs: 'id, graphName, createdAt',
    metricBlocks: '[runId+block], runId',
  });
  return db;
}

/** Create or update a run's record; the user's name and notes survive updates that do not set them. */
export async function saveRunRecord(
  db: RunDb,
  update: Partial<RunRecord> & Pick<RunRecord, 'id' | 'graphName'>,
): Promise<RunRecord> {
  return db.transaction('rw', db.runs, async () => {
    const existing = await db.runs.get(update.id);
    const now = new Date().toISOString();
    const defined = Object.fromEntries(Object.entries(update).filter(([, v]) => v !== undefined));
    const record: RunRecord = {
      name: existing?.name ?? update.graphName,
      notes: '',
      createdAt: now,
      status: 'connecting',
      iteration: 0,
      totalIterations: 0,
      envSteps: 0,
      durationSeconds: 0,
      finalMetrics: {},
      ...existing,
      ...defined,
      updatedAt: now,
    } as RunRecord;
    await db.runs.put(record);
    return record;
  });
}

/** Write the blocks holding series[fromIndex..] and drop blocks past the series' end. */
export async function saveMetricBlocks(
  db: RunDb,
  runId: string,
  series: MetricSeries,
  fromIndex: number,
): Promise<void> {
  const n = series.length;
  const lastBlock = n > 0 ? Math.floor(series.iterations[n - 1]! / BLOCK_ITERATIONS) : -1;
  const blocks: MetricBlock[] = [];
  if (fromIndex < n) {
    const firstBlock = Math.floor(series.iterations[Math.max(0, fromIndex)]! / BLOCK_ITERATIONS);
    // Start at the first index of that block, so the block is written whole.
    let i = Math.max(0, fromIndex);
    while (i > 0 && Math.floor(series.iterations[i - 1]! / BLOCK_ITERATIONS) >= firstBlock) i--;
    const names = series.names;
    while (i < n) {
      const block = Math.floor(series.iterations[i]! / BLOCK_ITERATIONS);
      const start = i;
      while (i < n && Math.floor(series.iterations[i]! / BLOCK_ITERATIONS) === block) i++;
      const columns: Record<string, (number | null)[]> = {};
      for (const name of names) columns[name] = series.columns.get(name)!.slice(start, i);
      blocks.push({
        runId,
        block,
        iterations: series.iterations.slice(start, i),
        envSteps: series.envSteps.slice(start, i),
        seconds: series.seconds.slice(start, i),
        columns,
      });
    }
  }
  await db.transaction('rw', db.metricBlocks, async () => {
    await db.metricBlocks
      .where('[runId+block]')
      .between([runId, lastBlock + 1], [runId, Dexie.maxKey])
      .delete();
    if (blocks.length) await db.metricBlocks.bulkPut(blocks);
  });
}

/** A run's stored metrics as a series (empty when none are stored). */
export async function loadSeries(db: RunDb, runId: string): Promise<MetricSeries> {
  const blocks = await db.metricBlocks
    .where('[runId+block]')
    .between([runId, Dexie.minKey], [runId, Dexie.maxKey])
    .toArray();
  const series = new MetricSeries();
  for (const block of blocks.sort((a, b) => a.block - b.block)) {
    const names = Object.keys(block.columns);
    block.iterations.forEach((iteration, i) => {
      const metrics: Record<string, number> = {};
      for (const name of names) {
        const value = block.columns[name]![i];
        if (value !== null && value !== undefined) metrics[name] = value;
      }
      series.add({ iteration, envSteps: block.envSteps[i]!, seconds: block.seconds[i]!, metrics });
    });
  }
  series.takeChangedFrom();
  return series;
}

/** Runs of one graph (by name), or all runs, newest first. */
export async function listRunRecords(db: RunDb, graphName?: string): Promise<RunRecord[]> {
  const records =
    graphName === undefined ? await db.runs.toArray() : await db.runs.where({ graphName }).toArray();
  return records.sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id));
}

export async function renameRun(db: RunDb, runId: string, name: string): Promise<void> {
  await db.runs.update(runId, { name: name.trim() || runId, updatedAt: new Date().toISOString() });
}

export async function annotateRun(db: RunDb, runId: string, notes: string): Promise<void> {
  await db.runs.update(runId, { notes, updatedAt: new Date().toISOString() });
}

export async function deleteRunRecord(db: RunDb, runId: string): Promise<void> {
  await db.transaction('rw', db.runs, db.metricBlocks, async () => {
    await db.runs.delete(runId);
    await db.metricBlocks.where('runId').equals(runId).delete();
  });
}
