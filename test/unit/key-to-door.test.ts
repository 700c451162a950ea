import { describe, expect, it } from 'vitest';
import { KeyToDoorVector } from '../../nodes/environment/key-to-door.ts';
import { Rng } from '../../src-main/engine/rng.ts';

const options = {
  keySteps: 2,
  appleSteps: 2,
  doorSteps: 2,
  apples: 1,
  appleReward: 1,
  doorReward: 5,
  showKey: true,
};
const UP = 0;
const DOWN = 1;
const LEFT = 2;
const RIGHT = 3;

/** A copy whose key lies right of the centre (cell 5) and whose apple lies above it (cell 1). */
function env() {
  const e = new KeyToDoorVector('k2d', 1, options, new Rng(1));
  e.keyCell[0] = 5;
  return e;
}

describe('env.key-to-door transitions', () => {
  it('key (no reward) -> apple room -> door pays 5 with the key', () => {
    const e = env();
    const obs = e.observations();
    expect(obs.length).toBe(31);
    expect([obs[0], obs[3 + 4], obs[3 + 9 + 5]]).toEqual([1, 1, 1]); // phase 0, at centre, key at 5
    let r = e.step(Int32Array.of(RIGHT)); // onto the key
    expect([r.rewards[0], e.hasKey[0], e.keyCell[0]]).toEqual([0, 1, -1]);
    expect(e.observations()[30]).toBe(1); // inventory bit
    r = e.step(Int32Array.of(LEFT)); // key room time is up -> apple room, at the centre
    expect([e.phase[0], e.cell[0], r.rewards[0]]).toEqual([1, 4, 0]);
    e.apples[0] = 1 << 1;
    r = e.step(Int32Array.of(UP)); // eat the apple at cell 1
    expect([r.rewards[0], e.apples[0]]).toEqual([1, 0]);
    r = e.step(Int32Array.of(DOWN)); // apple room time is up -> door room
    expect(e.phase[0]).toBe(2);
    r = e.step(Int32Array.of(UP)); // the door (cell 1)
    expect([r.rewards[0], r.terminated[0]]).toEqual([5, 1]);
    expect(r.finalObservations[2]).toBe(1); // ended in the door room
    expect(e.phase[0]).toBe(0); // reset
    expect(e.metrics()).toEqual({ key_rate: 1, door_rate: 1 });
  });

  it('the door pays nothing without the key; walls block; the door room times out', () => {
    const e = env();
    e.step(Int32Array.of(LEFT));
    e.step(Int32Array.of(LEFT)); // cell 3 then wall: still 3 -> apple room
    expect([e.phase[0], e.hasKey[0]]).toEqual([1, 0]);
    e.apples[0] = 0;
    e.step(Int32Array.of(DOWN));
    e.step(Int32Array.of(DOWN));
    let r = e.step(Int32Array.of(UP));
    expect([r.rewards[0], r.terminated[0]]).toEqual([0, 1]); // door without key: ends, pays 0
    expect(e.metrics()).toEqual({ key_rate: 0, door_rate: 0 });
    e.keyCell[0] = 8;
    e.step(Int32Array.of(UP));
    e.step(Int32Array.of(UP));
    e.apples[0] = 0;
    e.step(Int32Array.of(UP));
    e.step(Int32Array.of(UP));
    r = e.step(Int32Array.of(DOWN));
    expect(r.terminated[0]).toBe(0);
    r = e.step(Int32Array.of(DOWN)); // door room time is up
    expect([r.rewards[0], r.terminated[0]]).toEqual([0, 1]);
  });

  it('saves and restores its state', () => {
    const a = env();
    a.step(Int32Array.of(RIGHT));
    const b = new KeyToDoorVector('k2d', 1, options, new Rng(2));
    b.loadArrays(a.saveArrays());
    expect(Array.from(b.observations())).toEqual(Array.from(a.observations()));
    expect(() => new KeyToDoorVector('k2d', 2, options, new Rng(2)).loadArrays(a.saveArrays())).toThrow(
      /k2d.numEnvs/,
    );
  });
});
