/**
 * The trainable text policy behind `agent.llm`: a transformer, its character tokenizer, batched cached
 * generation, differentiable per-token log-probabilities for trainers, and a frozen reference copy for KL
 * penalties.
 */
import type * as TF from '@tensorflow/tfjs';
import type { Tf } from '../../../src-main/engine/node-api.ts';
import type { Rng } from '../../../src-main/engine/rng.ts';
import type { GenerationOptions, TextCompletion, TrainableTextPolicy } from '../../text-contracts.ts';
import { generateBatch } from './generate.ts';
import { oneHotFloat, Transformer, type TransformerShape } from './model.ts';
import { CharTokenizer } from './tokenizer.ts';

export class LlmPolicy implements TrainableTextPolicy {
  readonly trainable = true as const;
  readonly tokenizer = new CharTokenizer();
  readonly model: Transformer;
  readonly reference: Transformer;

  constructor(
    private readonly tf: Tf,
    readonly nodeId: string,
    shape: Omit<TransformerShape, 'vocab'>,
    rng: Rng,
    /** Generation recomputes the whole prefix per token when false (for comparison only). */
    readonly useCache = true,
  ) {
    const full = { ...shape, vocab: this.tokenizer.vocabSize };
    this.model = new Transformer(tf, full, rng, `${nodeId}/model`);
    // The reference is a frozen copy (not trainable); it starts equal to the initial weights.
    this.reference = new Transformer(tf, full, rng.fork('reference'), `${nodeId}/reference`, false);
    this.reference.copyFrom(this.model);
  }

  get variables(): TF.Variable[] {
    return this.model.variables;
  }

  get contextLength(): number {
    return this.model.shape.context;
  }

  encode(text: string, bos = true): Int32Array {
    try {
      return this.tokenizer.encode(text, bos);
    } catch (error) {
      throw new Error(`${this.nodeId}: ${(error as Error).message}`);
    }
  }

  tokenText(id: number): string {
    return this.tokenizer.tokenText(id);
  }

  async generate(contexts: string[], options: GenerationOptions, rng: Rng): Promise<TextCompletion[]> {
    return this.generateTokens(
      contexts.map((c) => this.encode(c)),
      options,
      rng,
    );
  }

  /** `generate` from token ids (BOS first), skipping the re-encoding of contexts held as tokens. */
  async generateTokens(
    contexts: Int32Array[],
    options: GenerationOptions,
    rng: Rng,
  ): Promise<TextCompletion[]> {
    const decode = (t: ArrayLike<number>) => this.tokenizer.decode(t);
    const path = this.useCache ? undefined : 'full';
    const sequences = await generateBatch(this.tf, this.model, contexts, options, rng, decode, path);
    return sequences.map((s) => ({
      text: decode(s.tokens),
      tokens: s.tokens,
      logProbs: s.logProbs,
      finish: s.finish,
    }));
  }

  tokenLogProbs(
    tokens: TF.Tensor2D,
    withHidden = false,
    withEntropy = true,
  ): { logProbs: TF.Tensor2D; entropy: TF.Tensor2D; hidden?: TF.Tensor3D } {
    return sequenceLogProbs(this.tf, this.model, tokens, withEntropy, withHidden);
  }

  get hiddenSize(): number {
    return this.model.shape.width;
  }

  hiddenStates(tokens: TF.Tensor2D): TF.Tensor3D {
    const tf = this.tf;
    return tf.tidy(() => {
      const [b, t] = tokens.shape;
      const { hidden, logits } = this.model.forwardWithHidden(tf.slice(tokens, [0, 0], [b, t - 1]));
      logits.dispose();
      return hidden;
    });
  }

  referenceLogProbs(tokens: TF.Tensor2D): TF.Tensor2D {
    return this.tf.tidy(() => sequenceLogProbs(this.tf, this.reference, tokens, false).logProbs);
  }

  resetReference(): void {
    this.reference.copyFrom(this.model);
  }

  dispose(): void {
    this.model.dispose();
    this.reference.dispose();
  }
}

/**
 * log pi(x_t | x_<t) for t = 1..T-1 of right-padded sequences [B, T], from one forward pass over x_0..x_{T-2}:
 * log_softmax(logits)[x_t], and (optionally) the entropy -sum_v p_v log p_v of each next-token distribution
 * and the final hidden states [B, T-1, d] that predicted each target (for a value head).
 */
export function sequenceLogProbs(
  tf: Tf,
  model: Transformer,
  tokens: TF.Tensor2D,
  withEntropy: boolean,
  withHidden = false,
): { logProbs: TF.Tensor2D; entropy: TF.Tensor2D; hidden?: TF.Tensor3D } {
  const [b, t] = tokens.shape;
  const v = model.shape.vocab;
  const inputs = tf.slice(tokens, [0, 0], [b, t - 1]);
  const next = tf.slice(tokens, [0, 1], [b, t - 1]);
  // On the CPU backends: trunk, head and log-softmax in one host op.
  const host = model.hostLogProbs(inputs, next, withHidden);
  if (host) {
    const column = (c: number) => tf.reshape(tf.slice(host, [0, c], [-1, 1]), [b, t - 1]) as TF.Tensor2D;
    const logProbs = column(0);
    const entropy = withEntropy ? column(1) : (tf.zeros([b, t - 1]) as TF.Tensor2D);
    if (!withHidden) return { logProbs, entropy };
    const d = model.shape.width;
    return {
      logProbs,
      entropy,
      hidden: tf.reshape(tf.slice(host, [0, 2], [-1, d]), [b, t - 1, d]) as TF.Tensor3D,
    };
  }
  const targets = tf.reshape(next, [-1]) as TF.Tensor1D;
  let hidden: TF.Tensor3D | undefined;
  let forward: TF.Tensor3D;
  if (withHidden) {
    const out = model.forwardWithHidden(inputs);
    forward = out.logits;
    hidden = out.hidden;
  } else {
    forward = model.forward(inputs);
  }
  const logits = tf.reshape(forward, [b * (t - 1), v]);
  const logAll = tf.logSoftmax(logits);
  const picked = tf.sum(tf.mul(logAll, oneHotFloat(tf, targets, v)), 1);
  const logProbs = tf.reshape(picked, [b, t - 1]) as TF.Tensor2D;
  const entropy = withEntropy
    ? (tf.reshape(tf.neg(tf.sum(tf.mul(tf.exp(logAll), logAll), 1)), [b, t - 1]) as TF.Tensor2D)
    : (tf.zeros([b, t - 1]) as TF.Tensor2D);
  return hidden ? { logProbs, entropy, hidden } : { logProbs, entropy };
}
