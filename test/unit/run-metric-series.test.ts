import { describe, expect, it } from 'vitest';
import { SampleThinner } from '../../src-main/api/sample-thinning.ts';
import {
  alignRuns,
  groupByNode,
  MetricSeries,
  seriesToCsv,
  smoothSeries,
} from '../../src-renderer/run/metric-series.ts';

const record = (iteration: number, metrics: Record<string, number>) => ({
  iteration,
  envSteps: (iteration + 1) * 512,
  seconds: (iteration + 1) * 0.5,
  metrics,
});

describe('MetricSeries', () => {
  it('keeps aligned columns, with null where a record lacks a metric', () => {
    const series = new MetricSeries();
    series.add(record(0, { 'a/x': 1 }));
    series.add(record(1, { 'a/x': 2, 'b/y': 5 }));
    series.add(record(2, { 'b/y': Number.NaN }));
    expect(series.iterations).toEqual([0, 1, 2]);
    expect(series.columns.get('a/x')).toEqual([1, 2, null]);
    expect(series.columns.get('b/y')).toEqual([null, 5, null]);
    expect(series.latest('b/y')).toBe(5);
    expect(series.record(1)).toEqual(record(1, { 'a/x': 2, 'b/y': 5 }));
  });

  it('replaces the tail when a resumed run repeats iterations after its checkpoint', () => {
    const series = new MetricSeries();
    for (let i = 0; i < 5; i++) series.add(record(i, { 'a/x': i }));
    expect(series.takeChangedFrom()).toBe(0);
    series.add(record(3, { 'a/x': 30 }));
    expect(series.iterations).toEqual([0, 1, 2, 3]);
    expect(series.columns.get('a/x')).toEqual([0, 1, 2, 30]);
    expect(series.takeChangedFrom()).toBe(3);
    expect(series.takeChangedFrom()).toBeUndefined();
  });

  it('smooths with a debiased exponential moving average (values by hand)', () => {
    // w = 0.5: s = 0.5, 1.25, 2.125; debiased by 1 - 0.5^n = 0.5, 0.75, 0.875.
    const smoothed = smoothSeries([1, 2, null, 3], 0.5);
    expect(smoothed[0]).toBeCloseTo(1, 12);
    expect(smoothed[1]).toBeCloseTo(1.25 / 0.75, 12);
    expect(smoothed[2]).toBeNull();
    expect(smoothed[3]).toBeCloseTo(2.125 / 0.875, 12);
    expect(smoothSeries([4, null, 6], 0)).toEqual([4, null, 6]);
  });

  it('exports CSV with one column per metric and empty cells for missing values', () => {
    const series = new MetricSeries();
    series.add(record(0, { 'b/y': 1.5 }));
    series.add(record(1, { 'a/x': 2, 'b/y': 2.5 }));
    expect(seriesToCsv(series)).toBe('iteration,env_steps,seconds,a/x,b/y\n0,512,0.5,,1.5\n1,1024,1,2,2.5\n');
  });

  it('groups metrics by node and aligns runs on the union of their iterations', () => {
    expect(groupByNode(['ppo/kl', 'rollout/return', 'ppo/clip', 'steps'])).toEqual([
      { nodeId: '(run)', names: ['steps'] },
      { nodeId: 'ppo', names: ['ppo/clip', 'ppo/kl'] },
      { nodeId: 'rollout', names: ['rollout/return'] },
    ]);
    expect(
      alignRuns([
        { iterations: [0, 1, 2], values: [1, 2, 3] },
        { iterations: [1, 3], values: [10, 30] },
      ]),
    ).toEqual([
      [0, 1, 2, 3],
      [1, 2, 3, null],
      [null, 10, null, 30],
    ]);
  });
});

describe('SampleThinner', () => {
  it('keeps the newest samples whole and a bounded, evenly spread set of older ones', () => {
    const thinner = new SampleThinner({ recent: 10, older: 8 });
    const kept = new Set<number>();
    let largest = 0;
    let droppedUnknown = 0;
    for (let iteration = 0; iteration < 10_000; iteration++) {
      kept.add(iteration);
      for (const dropped of thinner.add(iteration, iteration)) {
        if (!kept.delete(dropped)) droppedUnknown++;
      }
      largest = Math.max(largest, kept.size);
    }
    expect(droppedUnknown).toBe(0);
    expect(largest).toBeLessThanOrEqual(18);
    const sorted = [...kept].sort((a, b) => a - b);
    // The newest 10 are all there; the older ones are multiples of the stride, from the start.
    expect(sorted.slice(-10)).toEqual([9990, 9991, 9992, 9993, 9994, 9995, 9996, 9997, 9998, 9999]);
    const older = sorted.slice(0, -10);
    expect(older[0]).toBe(0);
    expect(older.every((i) => i % thinner.olderStride === 0)).toBe(true);
    expect(thinner.olderStride).toBe(2048);
    expect(older.length).toBeGreaterThanOrEqual(4);
  });
});

describe('decimate', () => {
  it('keeps short series whole and keeps every bucket extreme of long ones', async () => {
    const { decimate } = await import('../../src-renderer/run/metric-series.ts');
    expect(decimate([0, 1, 2], [5, null, 7], 10)).toEqual({ xs: [0, 1, 2], ys: [5, null, 7] });
    const xs = Array.from({ length: 100_000 }, (_, i) => i);
    const ys = xs.map((i) => Math.sin(i / 1000));
    ys[54_321] = 40;
    ys[77_777] = -40;
    const out = decimate(xs, ys, 1000);
    expect(out.xs.length).toBeLessThanOrEqual(4000);
    expect(out.xs.length).toBeGreaterThan(1000);
    expect(out.xs.every((x, i) => i === 0 || x > out.xs[i - 1]!)).toBe(true);
    expect(out.ys).toContain(40);
    expect(out.ys).toContain(-40);
    expect(out.xs[0]).toBe(0);
    expect(out.xs.at(-1)).toBe(99_999);
    // A zoomed window keeps its own detail, with one point beyond each edge.
    const zoomed = decimate(xs, ys, 1000, 500, 1500);
    expect(zoomed.xs[0]).toBe(499);
    expect(zoomed.xs.at(-1)).toBe(1501);
  });
});

describe('IncrementalSmoother', () => {
  it('equals smoothSeries as the column grows, and starts over after a truncation', async () => {
    const { IncrementalSmoother } = await import('../../src-renderer/run/metric-series.ts');
    const series = new MetricSeries();
    const smoother = new IncrementalSmoother(0.9);
    for (let i = 0; i < 50; i++) {
      series.add(record(i, i % 7 === 3 ? {} : { 'a/x': Math.sin(i) }));
      expect(smoother.update(series.columns.get('a/x')!, series.truncations)).toEqual(
        smoothSeries(series.columns.get('a/x')!, 0.9),
      );
    }
    series.add(record(20, { 'a/x': 100 }));
    expect(smoother.update(series.columns.get('a/x')!, series.truncations)).toEqual(
      smoothSeries(series.columns.get('a/x')!, 0.9),
    );
  });
});
