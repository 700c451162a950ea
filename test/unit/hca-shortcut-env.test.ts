import { describe, expect, it } from 'vitest';
import { ShortcutVector } from '../../nodes/environment/shortcut.ts';
import { Rng } from '../../src-main/engine/rng.ts';

describe('env.shortcut', () => {
  it('forward walks the chain at -1 per step and terminates after n steps', () => {
    const env = new ShortcutVector('sc', 1, 3, 0, new Rng(1));
    expect(Array.from(env.observations())).toEqual([1, 0, 0]);
    const forward = Int32Array.of(0);
    expect([env.step(forward).rewards[0], env.position[0]]).toEqual([-1, 1]);
    expect([env.step(forward).terminated[0], env.position[0]]).toEqual([0, 2]);
    const last = env.step(forward);
    expect([last.rewards[0], last.terminated[0], env.position[0]]).toEqual([-1, 1, 0]);
    expect(Array.from(last.finalObservations)).toEqual([0, 0, 1]);
    expect(env.metrics()).toEqual({ optimal_action_rate: 0 });
  });

  it('the shortcut ends the episode at once (eps 0) or moves one step (eps 1)', () => {
    const sure = new ShortcutVector('sc', 1, 5, 0, new Rng(1));
    const r = sure.step(Int32Array.of(1));
    expect([r.rewards[0], r.terminated[0]]).toEqual([-1, 1]);
    expect(sure.metrics()).toEqual({ optimal_action_rate: 1 });
    const failing = new ShortcutVector('sc', 1, 5, 1, new Rng(1));
    expect([failing.step(Int32Array.of(1)).terminated[0], failing.position[0]]).toEqual([0, 1]);
  });

  it('fails with eps = 0.3 about 30% of the time', () => {
    const env = new ShortcutVector('sc', 1000, 5, 0.3, new Rng(7));
    const r = env.step(new Int32Array(1000).fill(1));
    const ended = r.terminated.reduce((a, b) => a + b, 0);
    expect(ended).toBeGreaterThan(650);
    expect(ended).toBeLessThan(750);
  });
});
