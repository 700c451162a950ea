import { z } from 'zod';
import { defineNode, NodeError } from '../../src-main/engine/node-api.ts';
import type { MultiAgentEnv, VectorStep } from '../contracts.ts';
import { type TypedStateSpec, typedStateHooks } from './typed-state.ts';

export type MatrixGameName = 'climbing' | 'penalty';

/**
 * Payoff tables of Claus & Boutilier 1998, row = agent 0's action, column = agent 1's action, actions
 * (a, b, c). Climbing: optimum (a, a) = 11 guarded by -30 miscoordination; (b, b) = 7 and (c, c) = 5 are
 * the "safe" equilibria independent learners drift to. Penalty: optima (a, a) = (c, c) = 10, the safe
 * (b, b) = 2, miscoordinating between the optima costs k <= 0.
 */
export function payoffTable(game: MatrixGameName, k = -10): number[][] {
  if (game === 'climbing') {
    return [
      [11, -30, 0],
      [-30, 7, 6],
      [0, 0, 5],
    ];
  }
  return [
    [10, 0, k],
    [0, 2, 0],
    [k, 0, 10],
  ];
}

/** Copies of a repeated one-shot two-agent matrix game: every step is a whole (terminal) episode. */
export class MatrixGameEnv implements MultiAgentEnv {
  readonly numAgents: number;
  readonly numActions: number;
  readonly stateSize = 1;
  readonly numEnvs: number;
  readonly observationSize: number;
  readonly payoff: number[][];
  readonly best: number;
  private readonly obs: Float32Array;
  private readonly stateBuffer: Float32Array;
  private readonly result: VectorStep;
  /** Since the last metrics() call: one-shot games played, how many hit an optimal joint action, payoffs. */
  private readonly tally = { played: 0, optimal: 0, payoffSum: 0 };

  constructor(
    readonly nodeId: string,
    readonly numCopies: number,
    game: MatrixGameName,
    penalty: number,
    readonly agentId: boolean,
    /** 'joint': one centralised controller picks the joint action (u_0, u_1) = (j div 3, j mod 3). */
    readonly control: 'independent' | 'joint' = 'independent',
  ) {
    this.numAgents = control === 'joint' ? 1 : 2;
    this.numActions = control === 'joint' ? 9 : 3;
    this.payoff = payoffTable(game, penalty);
    this.best = Math.max(...this.payoff.flat());
    const A = this.numAgents;
    this.numEnvs = numCopies * A;
    this.observationSize = 1 + (agentId ? A : 0);
    this.obs = new Float32Array(this.numEnvs * this.observationSize);
    for (let row = 0; row < this.numEnvs; row++) {
      const o = row * this.observationSize;
      this.obs[o] = 1;
      if (agentId) this.obs[o + 1 + (row % A)] = 1;
    }
    this.stateBuffer = new Float32Array(numCopies).fill(1);
    this.result = {
      rewards: new Float32Array(this.numEnvs),
      terminated: new Uint8Array(this.numEnvs).fill(1),
      truncated: new Uint8Array(this.numEnvs),
      finalObservations: this.obs.slice(),
    };
  }

  /** Agent i observes a constant bias [1] and, with `agentId`, its one-hot index: no state to see. */
  observations(): Float32Array {
    return this.obs;
  }

  states(): Float32Array {
    return this.stateBuffer;
  }

  finalStates(): Float32Array {
    return this.stateBuffer;
  }

  step(actions: Int32Array): VectorStep {
    const { rewards } = this.result;
    for (let c = 0; c < this.numCopies; c++) {
      const joint = this.numAgents === 1;
      const u0 = joint ? Math.floor(actions[c] / 3) : actions[2 * c];
      const u1 = joint ? actions[c] % 3 : actions[2 * c + 1];
      if (!(u0 >= 0 && u0 < 3 && u1 >= 0 && u1 < 3) || (joint && !(actions[c] >= 0 && actions[c] < 9))) {
        throw new NodeError(this.nodeId, `actions of copy ${c} are out of range (each agent picks 0..2)`);
      }
      const r = this.payoff[u0][u1];
      for (let a = 0; a < this.numAgents; a++) rewards[c * this.numAgents + a] = r;
      this.tally.played += 1;
      this.tally.payoffSum += r;
      if (r === this.best) this.tally.optimal += 1;
    }
    return this.result;
  }

  metrics(): Record<string, number> {
    const t = this.tally;
    const n = Math.max(1, t.played);
    const out = { optimal_joint_rate: t.optimal / n, payoff_mean: t.payoffSum / n };
    t.played = t.optimal = t.payoffSum = 0;
    return out;
  }

  /** What a checkpoint keeps: the metric tally (the games themselves keep nothing between steps). */
  checkpointState(): TypedStateSpec {
    return { numbers: { tally: this.tally } };
  }
}

export default defineNode({
  type: 'env.matrix-game',
  family: 'environment',
  title: 'Matrix game',
  summary: 'Climbing or penalty game (Claus & Boutilier 1998), repeated one-shot, two agents.',
  doc: `The cooperative matrix games of Claus & Boutilier, AAAI 1998 ("The Dynamics of Reinforcement
Learning in Cooperative Multiagent Systems"), the standard test of miscoordination for independent
learners. Two agents each pick a, b or c; both receive the same payoff R(u_0, u_1):

Climbing game:           Penalty game (k <= 0):
      a    b    c              a   b   c
  a  11  -30    0          a  10   0   k
  b -30    7    6          b   0   2   0
  c   0    0    5          c   k   0  10

Each step is one whole game (every episode is one step long and terminates). An agent observes only a
constant 1 (and its one-hot index with \`agentId\`), so a policy is a distribution over its own three
actions; the global state is the constant 1. Independent learners estimate the value of their own action
averaged over the partner's exploration, E_{u'}[R(u, u')]; early on the -30 (or k) penalties make the
optimum look worst, so they tend to settle on the safe (c, c) = 5 / (b, b) = 7 (climbing) or (b, b) = 2
(penalty) instead of the optimum 11 / 10.

With \`control: 'joint'\` the same game is played by one centralised controller choosing the joint
action among 9 (u_0 = j div 3, u_1 = j mod 3): the fully centralised baseline, for which the game is a
9-armed bandit whose best arm is the optimum.

Metrics reported through the rollout: \`optimal_joint_rate\` (share of games that hit an optimal joint
action) and \`payoff_mean\`.`,
  version: 1,
  inputs: [],
  outputs: [
    {
      name: 'env',
      type: 'Env',
      title: 'Environment',
      provides: { observation: 'vector', action: 'discrete', agents: 'multi' },
    },
  ],
  params: z.object({
    numEnvs: z.number().int().min(1).max(4096).default(64).describe('Games played in parallel each step'),
    game: z.enum(['climbing', 'penalty']).default('climbing').describe('Payoff table'),
    penalty: z
      .number()
      .min(-1000)
      .max(0)
      .default(-10)
      .describe('Penalty game: payoff k of miscoordinating between the two optima'),
    agentId: z.boolean().default(true).describe("Append a one-hot agent index to each agent's observation"),
    control: z
      .enum(['independent', 'joint'])
      .default('independent')
      .describe(
        'independent: two agents, 3 actions each; joint: one centralised controller, 9 joint actions',
      ),
  }),
  keyParams: ['game', 'penalty'],
  create(params, ctx) {
    const env = new MatrixGameEnv(
      ctx.nodeId,
      params.numEnvs,
      params.game,
      params.penalty,
      params.agentId,
      params.control,
    );
    return { components: { env }, ...typedStateHooks(ctx.nodeId, env.checkpointState()) };
  },
});
