/**
 * What the world-model nodes share: a replay buffer of real transitions and an imagined `VectorEnv` that
 * steps a learned model instead of the real environment (Dyna, Sutton 1991; MBPO, Janner et al. 2019).
 * Imagined episodes start from real states drawn from the buffer and end at the horizon, at a predicted
 * termination, or when the model's disagreement passes the cut-off (a truncation: the learner bootstraps
 * from V there instead of trusting the model further).
 */
import { type JsonValue, NodeError, type NodeState } from '../../src-main/engine/node-api.ts';
import type { Rng } from '../../src-main/engine/rng.ts';
import type { VectorEnv, VectorStep, VectorTrajectories } from '../contracts.ts';

/** A ring buffer of real (s, a, r, s', terminated) transitions, kept across iterations and checkpoints. */
export class TransitionBuffer {
  readonly observations: Float32Array;
  readonly nextObservations: Float32Array;
  readonly actions: Int32Array;
  readonly rewards: Float32Array;
  readonly terminated: Uint8Array;
  /** 1 where s' is known (a batch without final or last observations leaves some unknown). */
  readonly hasNext: Uint8Array;
  size = 0;
  /** Where the next transition is written (the oldest is overwritten once full). */
  cursor = 0;

  constructor(
    readonly capacity: number,
    readonly observationSize: number,
  ) {
    this.observations = new Float32Array(capacity * observationSize);
    this.nextObservations = new Float32Array(capacity * observationSize);
    this.actions = new Int32Array(capacity);
    this.rewards = new Float32Array(capacity);
    this.terminated = new Uint8Array(capacity);
    this.hasNext = new Uint8Array(capacity);
  }

  /** Adds every transition of a time-major batch; returns the buffer indices written, in order. */
  addBatch(batch: VectorTrajectories): Int32Array {
    const n = batch.numEnvs;
    const d = this.observationSize;
    const written = new Int32Array(batch.numSteps * n);
    for (let t = 0; t < batch.numSteps; t++) {
      for (let e = 0; e < n; e++) {
        const i = t * n + e;
        const slot = this.cursor;
        const ended = batch.terminated[i] || batch.truncated[i];
        // s' of an episode's last step is its final observation (the next row is a reset), and s' of the
        // batch's last step is the observation after it; older producers may not record either.
        const next = ended
          ? batch.finalObservations?.subarray(i * d, (i + 1) * d)
          : t + 1 < batch.numSteps
            ? batch.observations.subarray((i + n) * d, (i + n + 1) * d)
            : batch.lastObservations?.subarray(e * d, (e + 1) * d);
        const known = next !== undefined;
        this.observations.set(batch.observations.subarray(i * d, (i + 1) * d), slot * d);
        if (next) this.nextObservations.set(next, slot * d);
        else this.nextObservations.fill(0, slot * d, (slot + 1) * d);
        this.actions[slot] = batch.actions[i];
        this.rewards[slot] = batch.rewards[i];
        this.terminated[slot] = batch.terminated[i] ? 1 : 0;
        this.hasNext[slot] = known ? 1 : 0;
        written[i] = slot;
        this.cursor = (this.cursor + 1) % this.capacity;
        this.size = Math.min(this.size + 1, this.capacity);
      }
    }
    return written;
  }

  saveArrays(): Record<string, Float32Array | Int32Array | Uint8Array> {
    const used = this.size;
    const d = this.observationSize;
    return {
      bufferObservations: this.observations.slice(0, used * d),
      bufferNextObservations: this.nextObservations.slice(0, used * d),
      bufferActions: this.actions.slice(0, used),
      bufferRewards: this.rewards.slice(0, used),
      bufferTerminated: this.terminated.slice(0, used),
      bufferHasNext: this.hasNext.slice(0, used),
    };
  }

  loadArrays(arrays: Record<string, ArrayLike<number>>, size: number, cursor: number): void {
    const d = this.observationSize;
    if (size > this.capacity)
      throw new Error(`replay buffer holds ${size} transitions, capacity ${this.capacity}`);
    const put = (target: Float32Array | Int32Array | Uint8Array, name: string, width: number) => {
      const a = arrays[name];
      if (!a || a.length !== size * width)
        throw new Error(`replay buffer ${name}: expected ${size * width} values`);
      target.set(a);
    };
    put(this.observations, 'bufferObservations', d);
    put(this.nextObservations, 'bufferNextObservations', d);
    put(this.actions, 'bufferActions', 1);
    put(this.rewards, 'bufferRewards', 1);
    put(this.terminated, 'bufferTerminated', 1);
    put(this.hasNext, 'bufferHasNext', 1);
    this.size = size;
    this.cursor = cursor;
  }
}

/** Per-dimension mean and standard deviation (floored, so a constant feature does not divide by 0). */
export interface Normaliser {
  mean: Float32Array;
  std: Float32Array;
}

export const STD_FLOOR = 1e-3;

/** Mean and std of `width`-wide rows `rows` of `data` (all rows when omitted). */
export function fitNormaliser(
  data: Float32Array,
  width: number,
  count: number,
  keep?: (row: number) => boolean,
): Normaliser {
  const mean = new Float64Array(width);
  const sq = new Float64Array(width);
  let used = 0;
  for (let r = 0; r < count; r++) {
    if (keep && !keep(r)) continue;
    used += 1;
    for (let j = 0; j < width; j++) mean[j] += data[r * width + j];
  }
  for (let j = 0; j < width; j++) mean[j] /= Math.max(1, used);
  for (let r = 0; r < count; r++) {
    if (keep && !keep(r)) continue;
    for (let j = 0; j < width; j++) sq[j] += (data[r * width + j] - mean[j]) ** 2;
  }
  const std = new Float32Array(width);
  for (let j = 0; j < width; j++) std[j] = Math.max(STD_FLOOR, Math.sqrt(sq[j] / Math.max(1, used)));
  return { mean: Float32Array.from(mean), std };
}

/** A learned model as the imagined environment steps it; `state` is the model's own (an observation, a latent). */
export interface ImaginationModel {
  readonly stateSize: number;
  /** Model states for `count` real observations. */
  encode(observations: Float32Array, count: number, states: Float32Array): void;
  /** Observations the policy sees for `count` model states. */
  decode(states: Float32Array, count: number, observations: Float32Array): void;
  /**
   * One imagined step of `count` copies: next states, rewards, termination probabilities and the
   * ensemble's disagreement about the step (the uncertainty compared with the cut-off).
   */
  predict(
    states: Float32Array,
    actions: Int32Array,
    count: number,
    out: {
      nextStates: Float32Array;
      rewards: Float32Array;
      doneProbs: Float32Array;
      disagreement: Float32Array;
    },
  ): void;
}

export interface ImaginationOptions {
  numEnvs: number;
  horizon: number;
  /** Disagreement above which an imagined episode is truncated. */
  uncertaintyCutoff: number;
  /** Termination when the predicted probability reaches this. */
  terminationThreshold: number;
}

/** Counts since the last `takeCounters`, reported as the world model's metrics. */
export interface ImaginationCounters {
  steps: number;
  episodes: number;
  terminations: number;
  horizonCuts: number;
  uncertaintyCuts: number;
  disagreementSum: number;
}

const zeroCounters = (): ImaginationCounters => ({
  steps: 0,
  episodes: 0,
  terminations: 0,
  horizonCuts: 0,
  uncertaintyCuts: 0,
  disagreementSum: 0,
});

/** A `VectorEnv` whose steps are predicted by a learned model; episodes start from real buffer states. */
export class ImaginedVectorEnv implements VectorEnv {
  readonly imagined = true;
  readonly states: Float32Array;
  readonly elapsed: Int32Array;
  /** Whether the copies have been given a start state (they can only be once real data exists). */
  started = false;
  counters = zeroCounters();
  private readonly obs: Float32Array;
  private readonly next: {
    nextStates: Float32Array;
    rewards: Float32Array;
    doneProbs: Float32Array;
    disagreement: Float32Array;
  };
  private readonly result: VectorStep;
  private readonly startObs: Float32Array;

  constructor(
    readonly nodeId: string,
    readonly observationSize: number,
    readonly numActions: number,
    private readonly model: ImaginationModel,
    private readonly buffer: TransitionBuffer,
    private readonly options: ImaginationOptions,
    private readonly rng: Rng,
  ) {
    const n = options.numEnvs;
    this.states = new Float32Array(n * model.stateSize);
    this.elapsed = new Int32Array(n);
    this.obs = new Float32Array(n * observationSize);
    this.next = {
      nextStates: new Float32Array(n * model.stateSize),
      rewards: new Float32Array(n),
      doneProbs: new Float32Array(n),
      disagreement: new Float32Array(n),
    };
    this.result = {
      rewards: new Float32Array(n),
      terminated: new Uint8Array(n),
      truncated: new Uint8Array(n),
      finalObservations: new Float32Array(n * observationSize),
    };
    this.startObs = new Float32Array(observationSize);
  }

  get numEnvs(): number {
    return this.options.numEnvs;
  }

  /** Gives every copy a real start state, once the buffer holds transitions. */
  start(): void {
    for (let e = 0; e < this.numEnvs; e++) this.reset(e);
    this.started = true;
  }

  private reset(e: number): void {
    if (this.buffer.size === 0) {
      throw new NodeError(
        this.nodeId,
        'the world model has no real transitions yet: wire the real rollout into its trajectories input so it trains before the imagined rollout runs',
        'env',
      );
    }
    const d = this.observationSize;
    const row = this.rng.int(this.buffer.size);
    this.startObs.set(this.buffer.observations.subarray(row * d, (row + 1) * d));
    const s = this.model.stateSize;
    this.model.encode(this.startObs, 1, this.states.subarray(e * s, (e + 1) * s));
    this.elapsed[e] = 0;
  }

  observations(): Float32Array {
    if (!this.started) this.start();
    this.model.decode(this.states, this.numEnvs, this.obs);
    return this.obs;
  }

  step(actions: Int32Array): VectorStep {
    if (!this.started) this.start();
    const n = this.numEnvs;
    const s = this.model.stateSize;
    const d = this.observationSize;
    const { rewards, terminated, truncated, finalObservations } = this.result;
    this.model.predict(this.states, actions, n, this.next);
    this.states.set(this.next.nextStates);
    const c = this.counters;
    for (let e = 0; e < n; e++) {
      this.elapsed[e] += 1;
      rewards[e] = this.next.rewards[e];
      const u = this.next.disagreement[e];
      c.steps += 1;
      c.disagreementSum += u;
      const done = this.next.doneProbs[e] >= this.options.terminationThreshold;
      const uncertain = !done && u > this.options.uncertaintyCutoff;
      const timeUp = !done && !uncertain && this.elapsed[e] >= this.options.horizon;
      terminated[e] = done ? 1 : 0;
      truncated[e] = uncertain || timeUp ? 1 : 0;
      if (done || uncertain || timeUp) {
        c.episodes += 1;
        if (done) c.terminations += 1;
        if (uncertain) c.uncertaintyCuts += 1;
        if (timeUp) c.horizonCuts += 1;
        this.model.decode(
          this.states.subarray(e * s, (e + 1) * s),
          1,
          finalObservations.subarray(e * d, (e + 1) * d),
        );
        this.reset(e);
      }
    }
    return this.result;
  }

  takeCounters(): ImaginationCounters {
    const c = this.counters;
    this.counters = zeroCounters();
    return c;
  }

  saveArrays(): Record<string, Float32Array | Int32Array> {
    return { imaginedStates: this.states.slice(), imaginedElapsed: this.elapsed.slice() };
  }

  loadArrays(arrays: Record<string, ArrayLike<number>>, started: boolean): void {
    const states = arrays.imaginedStates;
    const elapsed = arrays.imaginedElapsed;
    if (
      !states ||
      states.length !== this.states.length ||
      !elapsed ||
      elapsed.length !== this.elapsed.length
    ) {
      throw new Error('imagined environment state does not match numEnvs');
    }
    this.states.set(states);
    this.elapsed.set(elapsed);
    this.started = started;
  }
}

/** The world model's imagination metrics since the last call (nothing when no imagined step was taken). */
export function imaginationMetrics(imagined: ImaginedVectorEnv): Record<string, number> {
  const c = imagined.takeCounters();
  if (c.steps === 0) return {};
  const episodes = Math.max(1, c.episodes);
  return {
    imagined_uncertainty: c.disagreementSum / c.steps,
    imagined_episode_length: c.steps / episodes,
    uncertainty_cut_fraction: c.uncertaintyCuts / episodes,
    termination_fraction: c.terminations / episodes,
  };
}

/** The checkpoint arrays whose names start with `prefix`, with the prefix taken off (one network's). */
export function arraysWithPrefix(
  arrays: Record<string, ArrayLike<number>>,
  prefix: string,
): Record<string, ArrayLike<number>> {
  return Object.fromEntries(
    Object.entries(arrays)
      .filter(([name]) => name.startsWith(prefix))
      .map(([name, a]) => [name.slice(prefix.length), a]),
  );
}

/** A copy of the checkpoint array `name`, which must hold exactly `width` values. */
export function checkpointArray(
  arrays: Record<string, ArrayLike<number>>,
  name: string,
  width: number,
): Float32Array {
  const a = arrays[name];
  if (!a || a.length !== width) throw new Error(`world model ${name}: expected ${width} values`);
  return Float32Array.from(a);
}

/** What a world-model node's learned part offers its checkpoint. */
export interface CheckpointedModel {
  readonly optimiserStep: number;
  saveArrays(): Promise<Record<string, Float32Array>>;
  loadArrays(arrays: Record<string, ArrayLike<number>>, optimiserStep: number): void;
  syncHost(): Promise<void>;
}

interface WorldState {
  size: number;
  cursor: number;
  trained: boolean;
  started: boolean;
  optimiserStep: number;
  counters: ImaginationCounters;
}

/** A world-model node's checkpoint: the model and its optimiser, the replay buffer, the imagined copies. */
export async function saveWorldState(
  model: CheckpointedModel,
  buffer: TransitionBuffer,
  imagined: ImaginedVectorEnv,
  trained: boolean,
): Promise<NodeState> {
  const json: WorldState = {
    size: buffer.size,
    cursor: buffer.cursor,
    trained,
    started: imagined.started,
    optimiserStep: model.optimiserStep,
    counters: { ...imagined.counters },
  };
  return {
    json: json as unknown as JsonValue,
    arrays: { ...(await model.saveArrays()), ...buffer.saveArrays(), ...imagined.saveArrays() },
  };
}

/** Restores what `saveWorldState` wrote; returns whether the model had been trained. */
export async function loadWorldState(
  state: NodeState,
  model: CheckpointedModel,
  buffer: TransitionBuffer,
  imagined: ImaginedVectorEnv,
): Promise<boolean> {
  const json = state.json as unknown as WorldState;
  const arrays = state.arrays ?? {};
  model.loadArrays(arrays, json.optimiserStep);
  await model.syncHost();
  buffer.loadArrays(arrays, json.size, json.cursor);
  imagined.loadArrays(arrays, json.started);
  imagined.counters = { ...json.counters };
  return json.trained;
}
