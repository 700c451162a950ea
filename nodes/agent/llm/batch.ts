/**
 * Right-padded training batches of token sequences. Position t-1 of every per-target array describes the
 * prediction of token t from tokens < t: `mask` selects the targets that are the agent's tokens.
 */
import type * as TF from '@tensorflow/tfjs';
import type { Tf } from '../../../src-main/engine/node-api.ts';
import { BOS } from './tokenizer.ts';

export interface SequenceForTraining {
  tokens: Int32Array;
  /** 1 where the token is the agent's (gets gradient). */
  agentMask: Uint8Array;
  /** Per-token values aligned with `tokens` (e.g. sampling log-probs, advantages). */
  extras?: Float32Array[];
}

export interface PaddedBatch {
  batch: number;
  length: number;
  /** [B, T] token ids, right-padded with BOS. */
  tokens: Int32Array;
  /** [B, T-1]: 1 where target t is an agent token. */
  mask: Float32Array;
  /** [B, T-1] per extra: the value of target token t. */
  extras: Float32Array[];
  /** Agent tokens in the batch. */
  agentTokens: number;
}

export function padBatch(sequences: SequenceForTraining[], maxLength: number): PaddedBatch {
  const b = sequences.length;
  const length = Math.max(2, ...sequences.map((s) => s.tokens.length));
  if (length > maxLength)
    throw new Error(`a sequence of ${length} tokens exceeds the context length ${maxLength}`);
  const extraCount = sequences[0]?.extras?.length ?? 0;
  const tokens = new Int32Array(b * length).fill(BOS);
  const mask = new Float32Array(b * (length - 1));
  const extras = Array.from({ length: extraCount }, () => new Float32Array(b * (length - 1)));
  let agentTokens = 0;
  sequences.forEach((s, i) => {
    tokens.set(s.tokens, i * length);
    for (let t = 1; t < s.tokens.length; t++) {
      const at = i * (length - 1) + t - 1;
      if (s.agentMask[t]) {
        mask[at] = 1;
        agentTokens += 1;
      }
      for (let x = 0; x < extraCount; x++) extras[x][at] = s.extras![x][t];
    }
  });
  return { batch: b, length, tokens, mask, extras, agentTokens };
}

export function batchTensors(
  tf: Tf,
  p: PaddedBatch,
): { tokens: TF.Tensor2D; mask: TF.Tensor2D; extras: TF.Tensor2D[] } {
  const shape: [number, number] = [p.batch, p.length - 1];
  return {
    tokens: tf.tensor2d(p.tokens, [p.batch, p.length], 'int32'),
    mask: tf.tensor2d(p.mask, shape),
    extras: p.extras.map((e) => tf.tensor2d(e, shape)),
  };
}
