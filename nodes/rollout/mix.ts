import { z } from 'zod';
import { defineNode, NodeError } from '../../src-main/engine/node-api.ts';
import type { Advantages, VectorTrajectories } from '../contracts.ts';

/**
 * Two time-major batches with the same number of steps side by side: env copies 0..nA-1 from `a`, then
 * nA..nA+nB-1 from `b` (index t * (nA + nB) + env), with their advantages in the same layout.
 */
export function concatenateBatches(
  a: VectorTrajectories,
  creditA: Advantages,
  b: VectorTrajectories,
  creditB: Advantages,
): { trajectories: VectorTrajectories; advantages: Advantages } {
  const steps = a.numSteps;
  const na = a.numEnvs;
  const nb = b.numEnvs;
  const n = na + nb;
  const d = a.observationSize;
  const perStep = <T extends Float32Array | Int32Array | Uint8Array>(
    make: (size: number) => T,
    x: T,
    y: T,
    width = 1,
  ): T => {
    const out = make(steps * n * width);
    for (let t = 0; t < steps; t++) {
      out.set(x.subarray(t * na * width, (t + 1) * na * width), t * n * width);
      out.set(y.subarray(t * nb * width, (t + 1) * nb * width), (t * n + na) * width);
    }
    return out;
  };
  const f32 = (size: number) => new Float32Array(size);
  const both = <T>(x: T | undefined, y: T | undefined) => x !== undefined && y !== undefined;
  const trajectories: VectorTrajectories = {
    kind: 'vector',
    numEnvs: n,
    numSteps: steps,
    observationSize: d,
    numActions: a.numActions,
    observations: perStep(f32, a.observations, b.observations, d),
    actions: perStep((s) => new Int32Array(s), a.actions, b.actions),
    logProbs: perStep(f32, a.logProbs, b.logProbs),
    rewards: perStep(f32, a.rewards, b.rewards),
    values: perStep(f32, a.values, b.values),
    terminated: perStep((s) => new Uint8Array(s), a.terminated, b.terminated),
    truncated: perStep((s) => new Uint8Array(s), a.truncated, b.truncated),
    truncationValues: perStep(f32, a.truncationValues, b.truncationValues),
    lastValues: Float32Array.from([...a.lastValues, ...b.lastValues]),
  };
  if (both(a.finalObservations, b.finalObservations)) {
    trajectories.finalObservations = perStep(f32, a.finalObservations!, b.finalObservations!, d);
  }
  if (both(a.lastObservations, b.lastObservations)) {
    trajectories.lastObservations = Float32Array.from([...a.lastObservations!, ...b.lastObservations!]);
  }
  if (both(a.costs, b.costs)) trajectories.costs = perStep(f32, a.costs!, b.costs!);
  if (both(a.trueRewards, b.trueRewards))
    trajectories.trueRewards = perStep(f32, a.trueRewards!, b.trueRewards!);
  if (a.interventions || b.interventions) {
    trajectories.interventions = [
      ...(a.interventions ?? []),
      ...(b.interventions ?? []).map((x) => ({ ...x, env: x.env + na })),
    ];
  }
  return {
    trajectories,
    advantages: {
      advantages: perStep(f32, creditA.advantages, creditB.advantages),
      returns: perStep(f32, creditA.returns, creditB.returns),
    },
  };
}

export default defineNode({
  type: 'rollout.mix',
  family: 'rollout',
  title: 'Mix experience',
  summary: 'Puts two batches (e.g. real and imagined) with their advantages side by side for one trainer.',
  doc: `Concatenates two batches of experience, each with the advantages computed on it, into one batch for
a trainer: the env copies of \`b\` are appended after those of \`a\` at every time step, so the result is
again a time-major batch (numEnvs = nA + nB, the same number of steps). Credit must be assigned on
each batch separately first (GAE on real experience, GAE on imagined experience), because episodes do
not cross from one batch into the other.

This is how Dyna (Sutton 1991) trains one learner on real and model-generated experience together; MBPO
(Janner et al. 2019) likewise mixes real and imagined data in each policy update. Both batches must have
the same number of steps per env and the same observation size and actions.

Metrics: \`fraction_b\`, the share of the mixed batch that came from \`b\`.`,
  version: 1,
  inputs: [
    { name: 'a', type: 'Trajectories', title: 'Trajectories A', accepts: { observation: ['vector'] } },
    { name: 'advantagesA', type: 'Advantages', title: 'Advantages of A' },
    { name: 'b', type: 'Trajectories', title: 'Trajectories B', accepts: { observation: ['vector'] } },
    { name: 'advantagesB', type: 'Advantages', title: 'Advantages of B' },
  ],
  outputs: [
    {
      name: 'trajectories',
      type: 'Trajectories',
      title: 'Trajectories',
      provides: { observation: 'vector' },
    },
    { name: 'advantages', type: 'Advantages', title: 'Advantages' },
  ],
  params: z.object({}),
  create(_params, ctx) {
    return {
      async step(streams) {
        const a = streams.a as VectorTrajectories;
        const b = streams.b as VectorTrajectories;
        const creditA = streams.advantagesA as Advantages;
        const creditB = streams.advantagesB as Advantages;
        if (a.numSteps !== b.numSteps) {
          throw new NodeError(
            ctx.nodeId,
            `batch b has ${b.numSteps} steps per env and batch a ${a.numSteps}: give both rollouts the same stepsPerEnv`,
            'b',
          );
        }
        if (a.observationSize !== b.observationSize || a.numActions !== b.numActions) {
          throw new NodeError(ctx.nodeId, 'the two batches come from environments of different shapes', 'b');
        }
        if (a.numAgents !== undefined || b.numAgents !== undefined) {
          throw new NodeError(ctx.nodeId, 'multi-agent batches cannot be mixed', 'a');
        }
        const sizeA = a.numSteps * a.numEnvs;
        const sizeB = b.numSteps * b.numEnvs;
        if (creditA.advantages.length !== sizeA || creditB.advantages.length !== sizeB) {
          throw new NodeError(ctx.nodeId, 'advantages do not match their trajectories', 'advantagesB');
        }
        const mixed = concatenateBatches(a, creditA, b, creditB);
        return {
          outputs: { trajectories: mixed.trajectories, advantages: mixed.advantages },
          metrics: { fraction_b: sizeB / (sizeA + sizeB) },
        };
      },
    };
  },
});
