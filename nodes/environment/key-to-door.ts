import { z } from 'zod';
import { defineNode, NodeError } from '../../src-main/engine/node-api.ts';
import type { Rng } from '../../src-main/engine/rng.ts';
import type { VectorEnv, VectorStep } from '../contracts.ts';
import {
  loadTypedState,
  ShareTally,
  type StateArray,
  saveTypedState,
  type TypedStateSpec,
  typedStateHooks,
} from './typed-state.ts';

const SIDE = 3;
const CELLS = SIDE * SIDE;
const CENTRE = 4;
const DOOR = 1; // top middle of the third room
const MOVES: Array<[number, number]> = [
  [-1, 0], // up
  [1, 0], // down
  [0, -1], // left
  [0, 1], // right
];

export interface KeyToDoorOptions {
  keySteps: number;
  appleSteps: number;
  doorSteps: number;
  apples: number;
  appleReward: number;
  doorReward: number;
  showKey: boolean;
}

/**
 * Key-to-door copies. Per copy: `phase` (0 key room, 1 apple room, 2 door room), `clock` (steps left in
 * the phase), `cell` (0..8 in a 3x3 room), `keyCell` (-1 once taken or absent), `hasKey`, `apples`
 * (bitmask of cells holding an apple).
 */
export class KeyToDoorVector implements VectorEnv {
  readonly numActions = 4;
  readonly observationSize: number;
  readonly phase: Int32Array;
  readonly clock: Int32Array;
  readonly cell: Int32Array;
  readonly keyCell: Int32Array;
  readonly hasKey: Int32Array;
  readonly apples: Int32Array;
  private readonly obs: Float32Array;
  private readonly result: VectorStep;
  /** Over the episodes ended since the last `metrics()` call: share that took the key, that opened the door. */
  private readonly keyTaken = new ShareTally();
  private readonly doorOpened = new ShareTally();

  constructor(
    readonly nodeId: string,
    readonly numEnvs: number,
    readonly options: KeyToDoorOptions,
    private readonly rng: Rng,
  ) {
    // [phase one-hot (3), agent cell (9), key cell (9), apple cells (9), has key (1)]
    this.observationSize = 3 + 3 * CELLS + 1;
    this.phase = new Int32Array(numEnvs);
    this.clock = new Int32Array(numEnvs);
    this.cell = new Int32Array(numEnvs);
    this.keyCell = new Int32Array(numEnvs);
    this.hasKey = new Int32Array(numEnvs);
    this.apples = new Int32Array(numEnvs);
    this.obs = new Float32Array(numEnvs * this.observationSize);
    this.result = {
      rewards: new Float32Array(numEnvs),
      terminated: new Uint8Array(numEnvs),
      truncated: new Uint8Array(numEnvs),
      finalObservations: new Float32Array(numEnvs * this.observationSize),
    };
    for (let e = 0; e < numEnvs; e++) this.reset(e);
  }

  /** A new episode: the agent at the centre of the key room, the key on one of the other 8 cells. */
  private reset(e: number): void {
    this.phase[e] = 0;
    this.clock[e] = this.options.keySteps;
    this.cell[e] = CENTRE;
    const k = this.rng.int(CELLS - 1);
    this.keyCell[e] = k >= CENTRE ? k + 1 : k;
    this.hasKey[e] = 0;
    this.apples[e] = 0;
  }

  /** Enter the next room at its centre; the apple room gets `apples` apples on distinct other cells. */
  private advance(e: number): void {
    this.phase[e] += 1;
    this.cell[e] = CENTRE;
    this.keyCell[e] = -1;
    if (this.phase[e] === 1) {
      this.clock[e] = this.options.appleSteps;
      let mask = 0;
      let placed = 0;
      while (placed < Math.min(this.options.apples, CELLS - 1)) {
        const c = this.rng.int(CELLS);
        if (c === CENTRE || mask & (1 << c)) continue;
        mask |= 1 << c;
        placed += 1;
      }
      this.apples[e] = mask;
    } else {
      this.clock[e] = this.options.doorSteps;
      this.apples[e] = 0;
    }
  }

  private write(target: Float32Array, e: number): void {
    const d = this.observationSize;
    const o = e * d;
    target.fill(0, o, o + d);
    target[o + this.phase[e]] = 1;
    target[o + 3 + this.cell[e]] = 1;
    if (this.keyCell[e] >= 0) target[o + 3 + CELLS + this.keyCell[e]] = 1;
    if (this.phase[e] === 2) target[o + 3 + CELLS + DOOR] = 1; // the door shows where the key was drawn
    for (let c = 0; c < CELLS; c++) if (this.apples[e] & (1 << c)) target[o + 3 + 2 * CELLS + c] = 1;
    if (this.options.showKey) target[o + 3 + 3 * CELLS] = this.hasKey[e];
  }

  observations(): Float32Array {
    for (let e = 0; e < this.numEnvs; e++) this.write(this.obs, e);
    return this.obs;
  }

  step(actions: Int32Array): VectorStep {
    const { rewards, terminated, truncated, finalObservations } = this.result;
    for (let e = 0; e < this.numEnvs; e++) {
      const a = actions[e];
      if (!Number.isInteger(a) || a < 0 || a > 3) {
        throw new NodeError(this.nodeId, `action ${a} is not 0..3 (up, down, left, right)`, 'actions');
      }
      const row = Math.floor(this.cell[e] / SIDE) + MOVES[a][0];
      const col = (this.cell[e] % SIDE) + MOVES[a][1];
      if (row >= 0 && row < SIDE && col >= 0 && col < SIDE) this.cell[e] = row * SIDE + col;
      rewards[e] = 0;
      terminated[e] = 0;
      truncated[e] = 0;
      const c = this.cell[e];
      this.clock[e] -= 1;
      let ended = false;
      let opened = false;
      if (this.phase[e] === 0 && c === this.keyCell[e]) {
        this.hasKey[e] = 1; // picking the key up pays nothing
        this.keyCell[e] = -1;
      } else if (this.phase[e] === 1 && this.apples[e] & (1 << c)) {
        rewards[e] = this.options.appleReward;
        this.apples[e] &= ~(1 << c);
      } else if (this.phase[e] === 2 && c === DOOR) {
        if (this.hasKey[e]) {
          rewards[e] = this.options.doorReward;
          opened = true;
        }
        ended = true;
      }
      if (!ended && this.clock[e] === 0) {
        if (this.phase[e] < 2) this.advance(e);
        else ended = true;
      }
      if (ended) {
        terminated[e] = 1;
        this.write(finalObservations, e);
        this.keyTaken.count(this.hasKey[e] === 1);
        this.doorOpened.count(opened);
        this.reset(e);
      }
    }
    return this.result;
  }

  /** Share of episodes (ended since the last call) that took the key, and that opened the door with it. */
  metrics(): Record<string, number> {
    return { key_rate: this.keyTaken.drain(), door_rate: this.doorOpened.drain() };
  }

  /** What a checkpoint keeps: every copy's room, clock, cell, key, apples, and the metrics' tallies. */
  checkpointState(): TypedStateSpec {
    const { phase, clock, cell, keyCell, hasKey, apples } = this;
    return {
      arrays: { phase, clock, cell, keyCell, hasKey, apples },
      numbers: { keyTaken: this.keyTaken.numbers, doorOpened: this.doorOpened.numbers },
      sizedBy: 'numEnvs',
    };
  }

  /** The copies' arrays alone (copies of them). */
  saveArrays(): Record<string, StateArray> {
    return saveTypedState({ arrays: this.checkpointState().arrays }).arrays ?? {};
  }

  /** Restores the copies' arrays, refusing (NodeError) a missing, mistyped or mis-sized one. */
  loadArrays(arrays: Record<string, StateArray>): void {
    const { arrays: live, sizedBy } = this.checkpointState();
    loadTypedState(this.nodeId, { arrays }, { arrays: live, sizedBy });
  }
}

export default defineNode({
  type: 'env.key-to-door',
  family: 'environment',
  title: 'Key to door',
  summary: 'Pick up a key (no reward), collect apples, then a door pays only if the key was taken.',
  doc: `The key-to-door task of long-delay credit assignment (Hung et al. 2019, "Optimizing agent
behavior over long time scales by transporting value", Nature Communications; also in Ni et al. 2022's
POMDP baselines and Mesnard et al. 2021's counterfactual credit). Three 3x3 rooms visited in turn,
4 actions (up, down, left, right; walls block), the agent entering each room at its centre:

1. **Key room** (\`keySteps\` steps): the key lies on a random cell; stepping on it takes it. No reward.
2. **Apple room** (\`appleSteps\` steps): \`apples\` apples on random cells, each paying \`appleReward\`
   when eaten: rewards that have nothing to do with the key and drown its signal in variance.
3. **Door room** (up to \`doorSteps\` steps): the door is the top-middle cell. Reaching it ends the episode
   and pays \`doorReward\` only if the key was taken; the room's time running out also ends it (no pay).

The episode always **terminates** (no truncation), after at most keySteps + appleSteps + doorSteps steps.
Observation (31 values): phase one-hot (3), agent cell (9), key cell (9; the door cell in room 3), apple
cells (9), and whether the key is held (\`showKey\`, an inventory bit; off makes room 3 aliased).
Metrics (published by the rollout): \`key_rate\` (share of episodes that took the key) and \`door_rate\`
(share that opened the door with it), over the episodes ended since the last iteration.`,
  version: 1,
  inputs: [],
  outputs: [
    {
      name: 'env',
      type: 'Env',
      title: 'Environment',
      provides: { observation: 'vector', action: 'discrete' },
    },
  ],
  params: z.object({
    numEnvs: z.number().int().min(1).max(4096).default(8).describe('Copies stepped together'),
    keySteps: z.number().int().min(1).max(100).default(4).describe('Steps spent in the key room'),
    appleSteps: z.number().int().min(1).max(1000).default(10).describe('Steps spent in the apple room'),
    doorSteps: z.number().int().min(1).max(100).default(4).describe('Steps allowed in the door room'),
    apples: z.number().int().min(0).max(8).default(4).describe('Apples placed in the apple room'),
    appleReward: z.number().min(0).max(100).default(1).describe('Reward per apple'),
    doorReward: z.number().min(0).max(1000).default(5).describe('Reward for the door, with the key'),
    showKey: z.boolean().default(true).describe('Observe whether the key is held (inventory bit)'),
  }),
  keyParams: ['appleSteps', 'doorReward'],
  create(params, ctx) {
    const env = new KeyToDoorVector(ctx.nodeId, params.numEnvs, params, ctx.rng);
    return {
      components: { env },
      ...typedStateHooks(ctx.nodeId, env.checkpointState()),
    };
  },
});
