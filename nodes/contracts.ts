/**
 * What flows along the wires between the nodes of the library: the component interfaces (built once per
 * run, passed by reference) and the stream payloads (made each iteration). Host data is typed arrays.
 */
import type * as TF from '@tensorflow/tfjs';
import type { Intervention } from '../src-main/engine/events.ts';
import type { Rng } from '../src-main/engine/rng.ts';

/** N copies of an environment with vector observations and discrete actions, stepped together. */
export interface VectorEnv {
  readonly nodeId: string;
  readonly numEnvs: number;
  readonly observationSize: number;
  readonly numActions: number;
  /** Current observation of every copy, [numEnvs * observationSize]; overwritten by `step`. */
  observations(): Float32Array;
  /**
   * Step every copy; copies whose episode ended are reset at once (their entry in `observations()` is
   * the new episode's first observation and `finalObservations` holds the last one of the old episode).
   */
  step(actions: Int32Array): VectorStep;
  /**
   * Optional task scalars that rewards cannot show (e.g. `optimal_action_rate`: the share of decisions
   * that took the task's optimal action), over the steps since the last call. The rollout drains them
   * once per iteration and publishes them as its own metrics.
   */
  metrics?(): Record<string, number>;
  /**
   * Optional: 1 where an action is known to be unsafe in a copy's current state, [numEnvs * numActions]
   * (e.g. it would enter a forbidden cell). Safety gates read it to block actions before they happen.
   */
  unsafeActions?(): Uint8Array;
  /**
   * Optional: true for an environment simulated by a learned world model (Dyna). Its steps are not real
   * environment steps: rollouts count them apart from the run's `envSteps`.
   */
  readonly imagined?: boolean;
}

export interface VectorStep {
  rewards: Float32Array;
  /** The episode ended in a terminal state (no bootstrapping). */
  terminated: Uint8Array;
  /** The episode was cut by a time limit (bootstrap from the final observation). */
  truncated: Uint8Array;
  /** Last observation of episodes that ended this step, [numEnvs * observationSize]. */
  finalObservations: Float32Array;
  /** Optional safety cost of this step per copy (constrained RL: J_c = E[sum of costs]). */
  costs?: Float32Array;
  /** Optional reward under the task's true objective, where the training reward can be gamed. */
  trueRewards?: Float32Array;
}

/** A categorical policy over discrete actions. */
export interface DiscretePolicy {
  readonly nodeId: string;
  readonly observationSize: number;
  readonly numActions: number;
  readonly variables: TF.Variable[];
  /** Differentiable logits for a batch of observations. */
  logits(observations: TF.Tensor2D): TF.Tensor2D;
  /** Read the current weights for host-side acting (once per iteration). */
  syncHost(): Promise<void>;
  /** Sample one action per row on the host, with its log-probability. */
  sampleHost(
    observations: Float32Array,
    count: number,
    rng: Rng,
    actions: Int32Array,
    logProbs: Float32Array,
  ): void;
}

/** A state-value function V(s). */
export interface ValueFunction {
  readonly nodeId: string;
  readonly variables: TF.Variable[];
  /** Differentiable values, shape [batch]. */
  values(observations: TF.Tensor2D): TF.Tensor1D;
  syncHost(): Promise<void>;
  predictHost(observations: Float32Array, count: number, out: Float32Array, offset?: number): void;
  /**
   * What the critic reads: the acting agent's observation (default) or, for a centralised critic
   * (MAPPO's V(s)), the global state of a multi-agent batch (`VectorTrajectories.states`).
   */
  readonly input?: 'observation' | 'state';
}

/** Experience of one iteration from vectorised copies: time-major arrays, index t * numEnvs + env. */
export interface VectorTrajectories {
  kind: 'vector';
  numEnvs: number;
  numSteps: number;
  observationSize: number;
  numActions: number;
  observations: Float32Array;
  actions: Int32Array;
  logProbs: Float32Array;
  rewards: Float32Array;
  /** V(s_t) by the value function at collection time (zeros without one). */
  values: Float32Array;
  terminated: Uint8Array;
  truncated: Uint8Array;
  /** V(final observation) where an episode was truncated at step t; 0 elsewhere. */
  truncationValues: Float32Array;
  /** V(s_T) of the observation after the last step, per env. */
  lastValues: Float32Array;
  /**
   * Last observation of the episode that ended at step t, [numSteps * numEnvs * observationSize] (zeros
   * where no episode ended): the state an episode's final transition reached (hindsight credit needs it).
   */
  finalObservations?: Float32Array;
  /** s_T, the observation after the batch's last step, [numEnvs * observationSize]. */
  lastObservations?: Float32Array;
  /** Safety-gate interventions at step t of env copy `env` (the viewer marks them). */
  interventions?: VectorIntervention[];
  /** Per-step safety costs, where the env reports them (same layout as `rewards`). */
  costs?: Float32Array;
  /** Per-step rewards under the true objective, where the env reports them (same layout as `rewards`). */
  trueRewards?: Float32Array;
  /**
   * Multi-agent batches (rollout.multi-agent): rows are (copy, agent) pairs, row = copy * numAgents +
   * agent, so `numEnvs` = copies x agents and every per-row array above is per agent.
   */
  numAgents?: number;
  stateSize?: number;
  /** Global state of each row's copy before step t, [numSteps * numEnvs * stateSize] (one per agent row). */
  states?: Float32Array;
}

export type VectorIntervention = Omit<Intervention, 'step'> & { t: number; env: number };

/**
 * What a safety gate wrapped around a policy did to one row of the last `sampleHost` call (`env` is the
 * row). A 'penalised' action went through and `penalty` is subtracted from that step's reward; a
 * 'paused' one was blocked and asks the run to pause after the iteration.
 */
export type PolicyIntervention = Omit<VectorIntervention, 't'> & { penalty?: number };

/** A policy that intervenes on its own samples (a safety gate); the rollout drains the log each step. */
export interface GatedPolicy {
  /** Interventions since the last call, then cleared. */
  takeInterventions(): PolicyIntervention[];
}

/** What an update guard tells a trainer after a minibatch: go on, stop this update, or pause the run. */
export type GuardVerdict = { action: 'continue' } | { action: 'stop' | 'pause'; reason: string };

/** Watches a trainer's update (the KL to the old policy) and can cut it short (the Guard port). */
export interface UpdateGuard {
  readonly nodeId: string;
  /** Called after each minibatch update with the approx KL measured on that minibatch. */
  afterMinibatch(
    approxKl: number,
    where: { iteration: number; epoch: number; minibatch: number },
  ): GuardVerdict;
}

/** Per-step credit: advantages and the return targets of the value function. */
export interface Advantages {
  advantages: Float32Array;
  returns: Float32Array;
}

/**
 * A cooperative multi-agent environment, flattened as a VectorEnv over (copy, agent) rows: row = copy *
 * numAgents + agent, `numEnvs` = numCopies x numAgents, `observations()` and `step(actions)` are per
 * agent (each agent sees only its own observation), rewards and episode ends are repeated on every agent
 * row of a copy. The global state of each copy is there for centralised critics.
 */
export interface MultiAgentEnv extends VectorEnv {
  readonly numAgents: number;
  readonly numCopies: number;
  readonly stateSize: number;
  /** Global state of every copy, [numCopies * stateSize]; overwritten by `step`. */
  states(): Float32Array;
  /** Last global state of copies whose episode ended at the latest `step`, [numCopies * stateSize]. */
  finalStates(): Float32Array;
}

export function isMultiAgentEnv(env: VectorEnv): env is MultiAgentEnv {
  return typeof (env as Partial<MultiAgentEnv>).numAgents === 'number' && 'states' in env;
}

/**
 * A goal-conditioned environment (Hindsight Experience Replay): each observation holds the achieved goal
 * (what the state has reached) and the desired goal at fixed offsets, and the reward is a function of
 * the two, so a transition can be rewarded again under any other goal.
 */
export interface GoalConditionedEnv extends VectorEnv {
  readonly goalSpace: {
    /** Offset of the achieved goal in an observation. */
    achievedOffset: number;
    /** Offset of the desired goal in an observation. */
    goalOffset: number;
    /** Length of both. */
    size: number;
  };
  /** r(achieved, goal): the reward of a step that reaches `achieved` while the goal is `goal`. */
  goalReward(achieved: Float32Array, achievedAt: number, goal: Float32Array, goalAt: number): number;
  /** Whether reaching `achieved` ends the episode under `goal` (a terminal state, no bootstrap). */
  goalReached(achieved: Float32Array, achievedAt: number, goal: Float32Array, goalAt: number): boolean;
}

export function isGoalConditionedEnv(env: VectorEnv): env is GoalConditionedEnv {
  const candidate = env as Partial<GoalConditionedEnv>;
  return typeof candidate.goalReward === 'function' && typeof candidate.goalSpace === 'object';
}
