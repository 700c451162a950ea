import { describe, expect, it } from 'vitest';
import type { RunEvent, StudioApi } from '../../src-main/api/studio-api.ts';
import type { TrajectorySample } from '../../src-main/engine/events.ts';
import { RunStream, type Scheduler, Throttle } from '../../src-renderer/run/run-stream.ts';
import { RunState, SAMPLE_ITERATIONS } from '../../src-renderer/run-state.ts';

const metrics = (
  iteration: number,
  values: Record<string, number>,
  envSteps = (iteration + 1) * 100,
): RunEvent => ({
  type: 'metrics',
  record: { iteration, envSteps, seconds: (iteration + 1) * 0.5, metrics: values },
});

const sample = (iteration: number): TrajectorySample => ({
  kind: 'vector',
  nodeId: 'gae',
  iteration,
  index: 0,
  actions: [0, 1],
  rewards: [1, 1],
  values: [0.5, 0.4],
  advantages: [0.2, -0.1],
  returns: [2, 1],
});

/** A clock and timers that only move when told. */
function manualScheduler() {
  let now = 0;
  const timers: { at: number; callback: () => void; id: number }[] = [];
  let nextId = 1;
  const scheduler: Scheduler = {
    now: () => now,
    setTimeout(callback, ms) {
      const id = nextId++;
      timers.push({ at: now + ms, callback, id });
      return id;
    },
    clearTimeout(handle) {
      const i = timers.findIndex((t) => t.id === handle);
      if (i >= 0) timers.splice(i, 1);
    },
  };
  const advance = (ms: number) => {
    const until = now + ms;
    for (;;) {
      timers.sort((a, b) => a.at - b.at);
      const next = timers[0];
      if (!next || next.at > until) break;
      timers.shift();
      now = next.at;
      next.callback();
    }
    now = until;
  };
  return { scheduler, advance };
}

describe('RunState', () => {
  it('folds status, metrics, checkpoints, logs, errors and findings into the view', () => {
    const state = new RunState('r1', 'CartPole', 10);
    state.apply({ type: 'status', status: 'starting', iteration: 0 }, 0);
    state.apply({ type: 'status', status: 'running', iteration: 0, backend: 'wasm' }, 1);
    state.apply(metrics(0, { 'rollout/episode_return_mean': 20, 'ppo/approx_kl': 0.01 }), 2);
    state.apply(metrics(1, { 'rollout/episode_return_mean': 30, 'ppo/approx_kl': 0.02 }), 3);
    state.apply({ type: 'checkpoint', iteration: 2, path: '/x' }, 4);
    state.apply(
      { type: 'log', level: 'warn', message: 'safety: paused the run: too close', nodeId: 'safety' },
      5,
    );
    state.apply(
      {
        type: 'finding',
        finding: {
          nodeId: 'monitor',
          iteration: 1,
          severity: 'critical',
          title: 'Reward hack',
          evidence: { rate: 0.4 },
        },
      },
      6,
    );
    const view = state.snapshot();
    expect(view.status).toBe('running');
    expect(view.backend).toBe('wasm');
    expect(view.iteration).toBe(2);
    expect(view.metricPoints).toBe(2);
    expect(view.metrics['rollout/episode_return_mean']).toBe(30);
    expect(view.lastCheckpoint).toBe(2);
    expect(view.elapsedSeconds).toBe(1);
    // (200 - 100) steps over (1 - 0.5) s.
    expect(view.stepsPerSecond).toBe(200);
    expect(view.entries.map((e) => [e.kind, e.nodeId])).toEqual([
      ['pause', 'safety'],
      ['finding', 'monitor'],
    ]);
    expect(view.nodeStates.get('rollout')).toEqual({
      status: 'running',
      headline: { name: 'episode_return_mean', value: 30 },
    });
    expect(view.nodeStates.get('monitor')?.status).toBe('warning');

    state.apply({ type: 'error', message: 'ppo: loss is NaN', nodeId: 'ppo', field: 'loss' }, 7);
    state.apply({ type: 'status', status: 'paused', iteration: 2 }, 8);
    const paused = state.snapshot();
    expect(paused.nodeStates.get('ppo')).toMatchObject({ status: 'error', message: 'ppo: loss is NaN' });
    expect(paused.nodeStates.get('rollout')?.status).toBe('paused');
    expect(paused.entries.at(-1)).toMatchObject({ kind: 'error', nodeId: 'ppo', field: 'loss' });
    // Once the run finishes only warnings and errors stay on the canvas.
    state.apply({ type: 'status', status: 'finished', iteration: 2 }, 9);
    expect(state.snapshot().nodeStates.has('rollout')).toBe(false);
  });

  it('holds trajectory samples of at most SAMPLE_ITERATIONS iterations, skipping thinned ones', () => {
    const state = new RunState('r1', 'g', 1000);
    for (let i = 0; i < SAMPLE_ITERATIONS + 25; i++)
      state.apply({ type: 'samples', iteration: i, samples: [sample(i)] });
    state.apply({ type: 'samples', iteration: 999, samples: [] });
    const view = state.snapshot();
    expect(view.sampleIterations.length).toBe(SAMPLE_ITERATIONS);
    expect(view.sampleIterations[0]).toBe(25);
    expect(state.samples.has(999)).toBe(false);
  });
});

describe('RunStream batching', () => {
  it('tells the UI at most once per 100 ms however fast events arrive, and always the last state', () => {
    const { scheduler, advance } = manualScheduler();
    let listener: ((event: RunEvent, seq: number) => void) | undefined;
    const api = {
      subscribe: async (_id: string, l: (event: RunEvent, seq: number) => void) => {
        listener = l;
        return 's1';
      },
      unsubscribe: async () => {},
    } as unknown as StudioApi;
    const stream = new RunStream(api, 'r1', 'g', 10_000, scheduler);
    let updates = 0;
    stream.subscribe(() => updates++);
    void stream.open();
    // 1000 events over one simulated second (one per ms).
    for (let i = 0; i < 1000; i++) {
      listener!(metrics(i, { 'a/x': i }), i);
      advance(1);
    }
    advance(200);
    expect(updates).toBeGreaterThanOrEqual(9);
    expect(updates).toBeLessThanOrEqual(11);
    expect(stream.view.metricPoints).toBe(1000);
    expect(stream.view.metrics['a/x']).toBe(999);
    stream.close();
    listener!(metrics(1000, { 'a/x': 1 }), 1000);
    advance(500);
    expect(stream.view.metricPoints).toBe(1000);
  });

  it('Throttle flushes at once when idle, then no sooner than the interval', () => {
    const { scheduler, advance } = manualScheduler();
    const flushes: number[] = [];
    const throttle = new Throttle(() => flushes.push(scheduler.now()), 100, scheduler);
    throttle.request();
    advance(0);
    throttle.request();
    throttle.request();
    advance(250);
    throttle.request();
    advance(10);
    expect(flushes).toEqual([0, 100, 250]);
  });
});
