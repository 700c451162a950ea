import 'fake-indexeddb/auto';
import { afterEach, describe, expect, it } from 'vitest';
import type { MetricsRecord } from '../../src-main/api/studio-api.ts';
import { MetricSeries } from '../../src-renderer/run/metric-series.ts';
import {
  annotateRun,
  BLOCK_ITERATIONS,
  deleteRunRecord,
  listRunRecords,
  loadSeries,
  openRunDb,
  type RunDb,
  renameRun,
  saveMetricBlocks,
  saveRunRecord,
} from '../../src-renderer/run/run-db.ts';

const record = (iteration: number): MetricsRecord => ({
  iteration,
  envSteps: (iteration + 1) * 10,
  seconds: iteration + 1,
  metrics: iteration % 2 ? { 'a/x': iteration, 'b/y': -iteration } : { 'a/x': iteration },
});

let db: RunDb | undefined;
let dbCounter = 0;
const freshDb = () => {
  db = openRunDb(`runs-test-${++dbCounter}`);
  return db;
};
afterEach(async () => {
  await db?.delete();
});

describe('run history in Dexie', () => {
  it('stores metrics in blocks, rewrites only what changed, and loads them back', async () => {
    const store = freshDb();
    const series = new MetricSeries();
    for (let i = 0; i < 600; i++) series.add(record(i));
    await saveMetricBlocks(store, 'r1', series, series.takeChangedFrom()!);
    expect(await store.metricBlocks.count()).toBe(Math.ceil(600 / BLOCK_ITERATIONS));

    // A resume from the checkpoint at 300 repeats iterations 300...: the tail is replaced, not doubled.
    series.add({ ...record(300), metrics: { 'a/x': 3000 } });
    series.add(record(301));
    await saveMetricBlocks(store, 'r1', series, series.takeChangedFrom()!);
    expect(await store.metricBlocks.count()).toBe(Math.ceil(302 / BLOCK_ITERATIONS));

    const loaded = await loadSeries(store, 'r1');
    expect(loaded.length).toBe(302);
    expect(loaded.iterations).toEqual(series.iterations);
    expect(loaded.columns.get('a/x')).toEqual(series.columns.get('a/x'));
    expect(loaded.columns.get('b/y')).toEqual(series.columns.get('b/y'));
    expect(loaded.record(300)).toEqual({ ...record(300), metrics: { 'a/x': 3000 } });
    expect((await loadSeries(store, 'other')).length).toBe(0);
  });

  it('keeps a run record with the user name and notes across updates; lists by graph; deletes', async () => {
    const store = freshDb();
    await saveRunRecord(store, {
      id: 'r1',
      graphName: 'CartPole',
      createdAt: '2026-01-01T00:00:00Z',
      seed: 3,
    });
    await saveRunRecord(store, { id: 'r2', graphName: 'CartPole', createdAt: '2026-01-02T00:00:00Z' });
    await saveRunRecord(store, { id: 'r3', graphName: 'Bandit', createdAt: '2026-01-03T00:00:00Z' });
    await renameRun(store, 'r1', 'baseline');
    await annotateRun(store, 'r1', 'lr 3e-4');
    await saveRunRecord(store, { id: 'r1', graphName: 'CartPole', status: 'finished', iteration: 5 });
    const r1 = await store.runs.get('r1');
    expect(r1).toMatchObject({
      name: 'baseline',
      notes: 'lr 3e-4',
      status: 'finished',
      iteration: 5,
      seed: 3,
    });
    expect((await listRunRecords(store, 'CartPole')).map((r) => r.id)).toEqual(['r2', 'r1']);
    expect((await listRunRecords(store)).map((r) => r.id)).toEqual(['r3', 'r2', 'r1']);

    const series = new MetricSeries();
    series.add(record(0));
    await saveMetricBlocks(store, 'r1', series, 0);
    await deleteRunRecord(store, 'r1');
    expect(await store.runs.get('r1')).toBeUndefined();
    expect(await store.metricBlocks.where('runId').equals('r1').count()).toBe(0);
  });
});
