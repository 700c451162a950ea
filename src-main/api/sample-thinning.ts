/**
 * Bounded memory for trajectory samples in a run's event history. A 1-hour run emits samples every
 * iteration (tens of thousands of events of a few kilobytes each); keeping them all would grow without
 * bound. The newest `recent` iterations keep their samples; older ones are thinned to a stride that
 * doubles whenever more than `older` of them would be kept, so the kept ones stay spread over the whole
 * run (iteration 0, 64, 128, ... late in a long run) and the total stays below `recent + older`.
 */
export interface SampleThinningOptions {
  /** Newest sample events kept whole. */
  recent?: number;
  /** Most older sample events kept (spread evenly over the run). */
  older?: number;
}

export class SampleThinner {
  private readonly recentLimit: number;
  private readonly olderLimit: number;
  /** Keys (e.g. history indices) of the newest sample events, oldest first, with their iteration. */
  private readonly recentKept: { key: number; iteration: number }[] = [];
  private olderKept: { key: number; iteration: number }[] = [];
  private stride = 1;

  constructor(options: SampleThinningOptions = {}) {
    // A sample event is up to ~100 kB (4 episodes of up to 500 steps): at most ~15 MB per run.
    this.recentLimit = Math.max(1, options.recent ?? 100);
    this.olderLimit = Math.max(1, options.older ?? 50);
  }

  /** Stride between kept older iterations (1, 2, 4, ...). */
  get olderStride(): number {
    return this.stride;
  }

  /**
   * Note a new sample event; returns the keys of earlier events whose samples should now be dropped.
   */
  add(key: number, iteration: number): number[] {
    const dropped: number[] = [];
    this.recentKept.push({ key, iteration });
    while (this.recentKept.length > this.recentLimit) {
      const leaving = this.recentKept.shift()!;
      if (leaving.iteration % this.stride === 0) this.olderKept.push(leaving);
      else dropped.push(leaving.key);
    }
    while (this.olderKept.length > this.olderLimit) {
      this.stride *= 2;
      const keep: { key: number; iteration: number }[] = [];
      for (const entry of this.olderKept) {
        if (entry.iteration % this.stride === 0) keep.push(entry);
        else dropped.push(entry.key);
      }
      this.olderKept = keep;
    }
    return dropped;
  }
}
