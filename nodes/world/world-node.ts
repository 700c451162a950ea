/**
 * What every world-model node (ensemble.ts, latent.ts) has in common: the real-environment and
 * trajectory inputs, the imagined-environment output, the replay buffer and imagination parameters, and
 * the per-iteration work (buffer the fresh real transitions, measure the model on them before training
 * on them, train, report), with its checkpoint.
 */
import { z } from 'zod';
import type { NodeContext, NodeDefinition, NodeInstance } from '../../src-main/engine/node-api.ts';
import { NodeError } from '../../src-main/engine/node-api.ts';
import type { Rng } from '../../src-main/engine/rng.ts';
import type { VectorEnv, VectorTrajectories } from '../contracts.ts';
import {
  type CheckpointedModel,
  type ImaginationModel,
  ImaginedVectorEnv,
  imaginationMetrics,
  loadWorldState,
  saveWorldState,
  TransitionBuffer,
} from './imagination.ts';

/** The buffer and imagination parameters (spread last into a node's parameter object). */
export const imaginationParams = {
  bufferSize: z
    .number()
    .int()
    .min(1)
    .max(1_000_000)
    .default(50_000)
    .describe('Real transitions kept (the oldest are dropped)'),
  imaginedEnvs: z.number().int().min(1).max(4096).default(16).describe('Imagined copies stepped together'),
  horizon: z.number().int().min(1).max(10_000).default(20).describe('Longest imagined episode'),
  uncertaintyCutoff: z
    .number()
    .positive()
    .max(1e6)
    .default(0.5)
    .describe('Truncate an imagined episode when the disagreement passes this'),
  terminationThreshold: z
    .number()
    .min(0)
    .max(1)
    .default(0.5)
    .describe('Predicted termination probability that ends an imagined episode'),
};

/** The ports of a world-model node. */
export const worldModelPorts: Pick<NodeDefinition, 'inputs' | 'outputs'> = {
  inputs: [
    {
      name: 'env',
      type: 'Env',
      title: 'Real environment',
      doc: 'Gives the observation size and actions of the model.',
      accepts: { observation: ['vector'], action: ['discrete'] },
    },
    {
      name: 'trajectories',
      type: 'Trajectories',
      title: 'Real trajectories',
      accepts: { observation: ['vector'] },
    },
  ],
  outputs: [
    {
      name: 'imagined',
      type: 'Env',
      title: 'Imagined environment',
      provides: { observation: 'vector', action: 'discrete', imagined: 'true' },
    },
  ],
};

/** The learned part of a world-model node, as the shared node code uses it. */
export interface WorldModel extends ImaginationModel, CheckpointedModel {
  /** Refits the input and target normalisers to the buffer (each iteration, before training). */
  fitNormalisers(buffer: TransitionBuffer): void;
  /** `steps` updates on minibatches from the buffer; returns the mean loss. */
  train(buffer: TransitionBuffer, steps: number, rng: Rng): Promise<number>;
  dispose(): void;
}

interface Options<M extends WorldModel> {
  /** Mean disagreement and normalised one-step error of the model on these buffer rows. */
  evaluate(model: M, buffer: TransitionBuffer, rows: Int32Array): { disagreement: number; error: number };
  /**
   * Called before each training round; the function it returns runs after it (the latent model moves
   * imagined copies that are mid-episode over to its new latents).
   */
  aroundTraining?(imagined: ImaginedVectorEnv): () => void;
}

/** The node instance: `model` trained on the wired real trajectories, offered as an imagined Env. */
export function worldModelInstance<M extends WorldModel>(
  ctx: NodeContext,
  p: z.infer<z.ZodObject<typeof imaginationParams>> & { trainSteps: number },
  model: M,
  options: Options<M>,
): NodeInstance {
  const real = ctx.inputs.env as VectorEnv;
  const d = real.observationSize;
  const buffer = new TransitionBuffer(p.bufferSize, d);
  const imagined = new ImaginedVectorEnv(
    ctx.nodeId,
    d,
    real.numActions,
    model,
    buffer,
    {
      numEnvs: p.imaginedEnvs,
      horizon: p.horizon,
      uncertaintyCutoff: p.uncertaintyCutoff,
      terminationThreshold: p.terminationThreshold,
    },
    // The node's own stream, which the runtime saves with checkpoints (a fork would not be).
    ctx.rng,
  );
  let trained = false;
  return {
    components: { imagined },
    async step(streams) {
      const batch = streams.trajectories as VectorTrajectories;
      if (batch.observationSize !== d) {
        throw new NodeError(
          ctx.nodeId,
          `trajectories have observations of size ${batch.observationSize}, the environment gives ${d}`,
          'trajectories',
        );
      }
      const fresh = buffer.addBatch(batch);
      const before = trained ? options.evaluate(model, buffer, fresh) : undefined;
      const afterTraining = options.aroundTraining?.(imagined);
      model.fitNormalisers(buffer);
      const loss = await model.train(buffer, p.trainSteps, ctx.rng);
      trained = true;
      afterTraining?.();
      return {
        metrics: {
          loss,
          buffer_size: buffer.size,
          ...(before ? { uncertainty: before.disagreement, model_error: before.error } : {}),
          ...imaginationMetrics(imagined),
        },
      };
    },
    saveState: () => saveWorldState(model, buffer, imagined, trained),
    async loadState(state) {
      trained = await loadWorldState(state, model, buffer, imagined);
    },
    dispose: () => model.dispose(),
  };
}
