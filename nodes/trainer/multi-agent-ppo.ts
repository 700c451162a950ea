/**
 * What trainer.ppo needs to train on a multi-agent batch (rows = (copy, agent) pairs, row = copy *
 * numAgents + agent): one policy per agent (independent PPO) or one shared, and a critic fed either each
 * agent's observation or the global state (MAPPO's centralised V(s)). Single-agent batches pass through
 * unchanged: one policy, the critic on observations.
 */
import type * as TF from '@tensorflow/tfjs';
import { NodeError, type Tf } from '../../src-main/engine/node-api.ts';
import type { DiscretePolicy, ValueFunction, VectorTrajectories } from '../contracts.ts';

export class PpoBatchLayout {
  /** Rows of each agent in the minibatch last arranged (several policies only). */
  readonly agentCounts: number[];
  readonly centralised: boolean;
  /** Width of the critic's input: the observation, or the global state. */
  readonly criticWidth: number;
  private arranged = new Int32Array(0);

  constructor(
    private readonly batch: VectorTrajectories,
    private readonly numPolicies: number,
    value: ValueFunction | undefined,
    nodeId: string,
  ) {
    const agents = batch.numAgents ?? 1;
    if (numPolicies > 1 && numPolicies !== agents) {
      throw new NodeError(
        nodeId,
        `${numPolicies} policies are wired but the batch has ${agents} agent(s): wire one shared policy or one per agent`,
        'policy',
      );
    }
    this.centralised = value?.input === 'state';
    if (this.centralised && !batch.states) {
      throw new NodeError(
        nodeId,
        'a centralised critic needs global states: collect the batch with rollout.multi-agent',
        'value',
      );
    }
    this.criticWidth = this.centralised ? (batch.stateSize ?? 0) : batch.observationSize;
    this.agentCounts = new Array(Math.max(1, numPolicies)).fill(0);
  }

  /** The minibatch's rows order[start .. start+count), grouped by agent when agents have own policies. */
  arrange(order: Int32Array, start: number, count: number): Int32Array {
    const rows = order.subarray(start, start + count);
    if (this.numPolicies <= 1) return rows;
    const A = this.numPolicies;
    const agentOf = (i: number) => (i % this.batch.numEnvs) % A;
    if (this.arranged.length !== count) this.arranged = new Int32Array(count);
    this.agentCounts.fill(0);
    for (const i of rows) this.agentCounts[agentOf(i)] += 1;
    const next = new Int32Array(A);
    for (let a = 1; a < A; a++) next[a] = next[a - 1] + this.agentCounts[a - 1];
    for (const i of rows) this.arranged[next[agentOf(i)]++] = i;
    return this.arranged;
  }

  /** Copy row i's critic input (observation or global state) to slot k of `target`. */
  copyCriticInput(i: number, target: Float32Array, k: number): void {
    const w = this.criticWidth;
    const source = this.centralised ? (this.batch.states as Float32Array) : this.batch.observations;
    target.set(source.subarray(i * w, (i + 1) * w), k * w);
  }

  /** Logits of an arranged minibatch: each agent's rows through its own policy, in arranged order. */
  logits(tf: Tf, policies: DiscretePolicy[], observations: TF.Tensor2D): TF.Tensor2D {
    if (policies.length === 1) return policies[0].logits(observations);
    const parts = tf.split(observations, this.agentCounts, 0) as TF.Tensor2D[];
    return tf.concat(
      parts.map((part, a) => policies[a].logits(part)),
      0,
    );
  }
}
