/**
 * A Hugging Face checkpoint as a trainable text policy: loading a model folder, batched cached generation,
 * differentiable per-token log-probabilities of the LoRA-adapted model, and the frozen reference copy.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type * as TF from '@tensorflow/tfjs';
import type { Tf } from '../../../src-main/engine/node-api.ts';
import type { Rng } from '../../../src-main/engine/rng.ts';
import type { GenerationOptions, TextCompletion, TrainableTextPolicy } from '../../text-contracts.ts';
import { type SamplingOptions, TokenSampler } from '../llm/generate.ts';
import { type HfModelConfig, parseConfig } from './config.ts';
import type { MemoryEstimate } from './memory.ts';
import { type AdapterSet, disposeKvCache, HfModel, type LoraOptions } from './model.ts';
import { CheckpointError, readCheckpointTensors, writeSafetensors } from './safetensors.ts';
import { HfTokenizer } from './tokenizer.ts';
import { GPT2_MODULES, type HostWeights, hostWeights, LLAMA_MODULES } from './weights.ts';

export interface HfCheckpoint {
  config: HfModelConfig;
  weights: HostWeights;
  tokenizer: HfTokenizer;
  /** The raw JSON files, kept for exporting a merged copy. */
  files: Record<string, string>;
}

async function readJson(
  folder: string,
  file: string,
  optional: boolean,
): Promise<[unknown, string] | undefined> {
  let text: string;
  try {
    text = await readFile(join(folder, file), 'utf8');
  } catch (error) {
    if (optional && (error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    const code = (error as NodeJS.ErrnoException).code;
    throw new CheckpointError(
      file,
      code === 'ENOENT' ? `not found in ${folder}` : `cannot be read (${code})`,
    );
  }
  try {
    return [JSON.parse(text), text];
  } catch (error) {
    throw new CheckpointError(file, `is not valid JSON (${(error as Error).message})`);
  }
}

/** Read and validate a whole model folder on the host; nothing is created on the backend yet. */
export async function readHfCheckpoint(folder: string): Promise<HfCheckpoint> {
  const [rawConfig, configText] = (await readJson(folder, 'config.json', false)) as [unknown, string];
  const config = parseConfig(rawConfig);
  const [tokenizerJson, tokenizerText] = (await readJson(folder, 'tokenizer.json', false)) as [
    unknown,
    string,
  ];
  const tokenizerConfig = await readJson(folder, 'tokenizer_config.json', true);
  const tokenizer = new HfTokenizer(
    tokenizerJson,
    (tokenizerConfig?.[0] ?? {}) as Record<string, unknown>,
    config.bosTokenId,
    config.eosTokenIds,
  );
  if (tokenizer.vocabSize > config.vocab) {
    throw new CheckpointError(
      'tokenizer.json',
      `has ${tokenizer.vocabSize} tokens but config.json field vocab_size is ${config.vocab}`,
    );
  }
  const tensors = await readCheckpointTensors(folder);
  const weights = hostWeights(config, tensors, 'model.safetensors');
  const files: Record<string, string> = { 'config.json': configText, 'tokenizer.json': tokenizerText };
  if (tokenizerConfig) files['tokenizer_config.json'] = tokenizerConfig[1];
  return { config, weights, tokenizer, files };
}

/** The short module names an architecture has, for LoRA targets. Llama names are accepted for GPT-2 too. */
export function resolveLoraTargets(config: HfModelConfig, requested: string[]): string[] {
  if (config.architecture === 'llama') {
    for (const t of requested) {
      if (!(LLAMA_MODULES as readonly string[]).includes(t)) {
        throw new Error(
          `unknown LoRA target "${t}" for ${config.declared}; choose from ${LLAMA_MODULES.join(', ')}`,
        );
      }
    }
    return [...new Set(requested)];
  }
  const alias: Record<string, string> = {
    q_proj: 'c_attn',
    k_proj: 'c_attn',
    v_proj: 'c_attn',
    o_proj: 'attn.c_proj',
    up_proj: 'c_fc',
    gate_proj: 'c_fc',
    down_proj: 'mlp.c_proj',
    c_proj: 'attn.c_proj',
  };
  const out = requested.map((t) => alias[t] ?? t);
  for (const t of out) {
    if (!(GPT2_MODULES as readonly string[]).includes(t)) {
      throw new Error(`unknown LoRA target "${t}" for GPT-2; choose from ${GPT2_MODULES.join(', ')}`);
    }
  }
  return [...new Set(out)];
}

export interface HfPolicyOptions {
  lora: LoraOptions;
  /** Tokens the model reads at most (clipped to the checkpoint's max_position_embeddings). */
  context: number;
  /** Wrap an episode's first text (its prompt) in the chat template as the user's message. */
  chatTemplate: boolean;
  systemPrompt?: string;
}

const MEMO_LIMIT = 4096;

export class HfPolicy implements TrainableTextPolicy {
  readonly trainable = true as const;
  readonly model: HfModel;
  readonly tokenizer: HfTokenizer;
  readonly contextLength: number;
  /** Filled in by the node when it is created. */
  memoryEstimate?: MemoryEstimate;
  /**
   * Token sequences of texts this policy produced (context + completion): the next turn's context starts
   * with one of them, and re-tokenising the whole text could merge tokens across the boundary, so the
   * known prefix keeps its tokens and only the rest (the environment's reply) is encoded, exactly as the
   * rollout records it.
   */
  private readonly known = new Map<string, Int32Array>();

  constructor(
    private readonly tf: Tf,
    readonly nodeId: string,
    readonly checkpoint: HfCheckpoint,
    readonly options: HfPolicyOptions,
    rng: Rng,
  ) {
    this.tokenizer = checkpoint.tokenizer;
    this.contextLength = Math.min(options.context, checkpoint.config.maxPositions);
    const lora = { ...options.lora, targets: resolveLoraTargets(checkpoint.config, options.lora.targets) };
    this.model = new HfModel(tf, checkpoint.config, checkpoint.weights, lora, rng, nodeId);
  }

  get variables(): TF.Variable[] {
    return this.model.variables;
  }

  encode(text: string, bos = true): Int32Array {
    if (!bos) return Int32Array.from(this.tokenizer.encode(text));
    if (this.options.chatTemplate && this.tokenizer.hasChatTemplate) {
      const messages = [
        ...(this.options.systemPrompt
          ? [{ role: 'system' as const, content: this.options.systemPrompt }]
          : []),
        { role: 'user' as const, content: text },
      ];
      const rendered = this.tokenizer.applyChatTemplate(messages);
      return Int32Array.from(this.tokenizer.encode(rendered));
    }
    const ids = this.tokenizer.encode(text);
    return Int32Array.from(this.tokenizer.bosId !== undefined ? [this.tokenizer.bosId, ...ids] : ids);
  }

  tokenText(id: number): string {
    return this.tokenizer.tokenText(id);
  }

  /** Tokens of a context: the longest known prefix keeps its tokens, the rest is encoded on its own. */
  contextTokens(context: string): Int32Array {
    let best = '';
    for (const key of this.known.keys()) if (key.length > best.length && context.startsWith(key)) best = key;
    if (!best) return this.encode(context, true);
    const prefix = this.known.get(best) as Int32Array;
    const rest = context.slice(best.length);
    if (!rest) return prefix;
    const tail = this.encode(rest, false);
    const out = new Int32Array(prefix.length + tail.length);
    out.set(prefix);
    out.set(tail, prefix.length);
    return out;
  }

  private remember(text: string, tokens: Int32Array): void {
    this.known.delete(text);
    this.known.set(text, tokens);
    if (this.known.size > MEMO_LIMIT) this.known.delete(this.known.keys().next().value as string);
  }

  async generate(contexts: string[], options: GenerationOptions, rng: Rng): Promise<TextCompletion[]> {
    const tokenised = contexts.map((c) => this.contextTokens(c));
    const completions = await this.generateTokens(tokenised, options, rng);
    completions.forEach((completion, i) => {
      const all = new Int32Array(tokenised[i].length + (completion.tokens as Int32Array).length);
      all.set(tokenised[i]);
      all.set(completion.tokens as Int32Array, tokenised[i].length);
      this.remember(contexts[i] + completion.text, all);
    });
    return completions;
  }

  /**
   * Sample continuations of token contexts as one batch (left-padded, one prefill, then one cached step
   * per token). A row ends at an end-of-sequence token or a stop string (its text is cut just after the
   * stop string), or when its budget or the context is used up.
   */
  async generateTokens(
    contexts: Int32Array[],
    options: SamplingOptions,
    rng: Rng,
    set: AdapterSet = 'policy',
    useCache = true,
  ): Promise<TextCompletion[]> {
    const tf = this.tf;
    const b = contexts.length;
    if (b === 0) return [];
    const context = this.contextLength;
    const lengths = contexts.map((c) => c.length);
    const padded = Math.max(...lengths);
    if (Math.min(...lengths) < 1) throw new Error(`${this.nodeId}: every context needs at least one token`);
    if (padded > context) {
      throw new Error(`${this.nodeId}: a context of ${padded} tokens exceeds the context length ${context}`);
    }
    const budget = lengths.map((n) => Math.max(0, Math.min(options.maxNewTokens, context - n)));
    const rows = contexts.map((_, i) => ({
      tokens: [] as number[],
      logProbs: [] as number[],
      text: '',
      done: budget[i] === 0,
      finish: 'length' as 'stop' | 'length',
    }));
    const vocab = this.model.config.vocab;
    const sampler = new TokenSampler(vocab);
    const eos = new Set(this.tokenizer.eosIds);
    const pad = this.tokenizer.eosIds[0] ?? 0;
    // Every row's sequence, growing by one column per step (the no-cache path re-reads it whole).
    const seqs = contexts.map((c) => Array.from(c));
    const cache = useCache ? this.model.emptyCache(b) : undefined;
    const batch = (width: number, fromColumn: number) => {
      const ids = new Int32Array(b * width);
      const pos = new Int32Array(b * width);
      const bias = new Float32Array(b * width);
      for (let i = 0; i < b; i++) {
        const shift = padded - lengths[i];
        for (let j = 0; j < width; j++) {
          const column = fromColumn + j;
          const source = column - shift;
          ids[i * width + j] = source >= 0 ? seqs[i][source] : pad;
          pos[i * width + j] = Math.max(0, source);
          if (source < 0) bias[i * width + j] = -1e9;
        }
      }
      return { ids, pos, bias };
    };
    let logits: TF.Tensor2D;
    {
      const { ids, pos, bias } = batch(padded, 0);
      logits = tf.tidy(() =>
        this.model.lastLogits(tf.tensor2d(ids, [b, padded], 'int32'), pos, bias, set, cache),
      );
    }
    try {
      for (let step = 0; ; step++) {
        const host = (await logits.data()) as Float32Array;
        logits.dispose();
        let active = 0;
        for (let i = 0; i < b; i++) {
          const row = rows[i];
          if (row.done) {
            seqs[i].push(pad);
            continue;
          }
          const { token, logProb } = sampler.sample(host, i, options, rng);
          row.tokens.push(token);
          row.logProbs.push(logProb);
          seqs[i].push(token);
          if (eos.has(token)) {
            row.done = true;
            row.finish = 'stop';
            continue;
          }
          const before = row.text.length;
          row.text = this.tokenizer.decode(row.tokens);
          // A stop string may end inside the last token's text: look from just before the new text.
          const from = Math.max(0, before - Math.max(0, ...options.stop.map((s) => s.length)));
          let cut = -1;
          for (const s of options.stop) {
            if (!s) continue;
            const at = row.text.indexOf(s, from);
            if (at >= 0 && (cut < 0 || at + s.length < cut)) cut = at + s.length;
          }
          if (cut >= 0) {
            row.text = row.text.slice(0, cut);
            row.done = true;
            row.finish = 'stop';
          } else if (row.tokens.length >= budget[i]) {
            row.done = true;
          } else {
            active += 1;
          }
        }
        if (active === 0) break;
        const width = useCache ? 1 : padded + step + 1;
        const { ids, pos, bias } = batch(width, padded + step + 1 - width);
        logits = tf.tidy(() =>
          this.model.lastLogits(tf.tensor2d(ids, [b, width], 'int32'), pos, bias, set, cache),
        );
      }
    } finally {
      if (cache) disposeKvCache(cache);
    }
    return rows.map((row) => ({
      text: row.text,
      tokens: Int32Array.from(row.tokens),
      logProbs: Float32Array.from(row.logProbs),
      finish: row.finish,
    }));
  }

  private sequenceLogProbs(tokens: TF.Tensor2D, set: AdapterSet, withEntropy: boolean) {
    const tf = this.tf;
    const [b, t] = tokens.shape;
    const v = this.model.config.vocab;
    const positions = new Int32Array(b * (t - 1));
    for (let i = 0; i < b; i++) for (let j = 0; j < t - 1; j++) positions[i * (t - 1) + j] = j;
    const inputs = tf.slice(tokens, [0, 0], [b, t - 1]);
    const targets = tf.reshape(tf.slice(tokens, [0, 1], [b, t - 1]), [-1]) as TF.Tensor1D;
    const logits = tf.reshape(this.model.logits(inputs, positions, undefined, set), [b * (t - 1), v]);
    const logAll = tf.logSoftmax(logits);
    // oneHot(..., 'float32') writes integer bits on WebAssembly: build it as int32 and cast.
    const picked = tf.sum(tf.mul(logAll, tf.cast(tf.oneHot(targets, v), 'float32')), 1);
    const logProbs = tf.reshape(picked, [b, t - 1]) as TF.Tensor2D;
    const entropy = withEntropy
      ? (tf.reshape(tf.neg(tf.sum(tf.mul(tf.exp(logAll), logAll), 1)), [b, t - 1]) as TF.Tensor2D)
      : (tf.zeros([b, t - 1]) as TF.Tensor2D);
    return { logProbs, entropy };
  }

  tokenLogProbs(tokens: TF.Tensor2D): { logProbs: TF.Tensor2D; entropy: TF.Tensor2D } {
    return this.sequenceLogProbs(tokens, 'policy', true);
  }

  referenceLogProbs(tokens: TF.Tensor2D): TF.Tensor2D {
    return this.tf.tidy(() => this.sequenceLogProbs(tokens, 'reference', false).logProbs);
  }

  get hiddenSize(): number {
    return this.model.config.hidden;
  }

  /** Final hidden states [B, T-1, d] at positions 0..T-2 (the states that predict tokens 1..T-1). */
  hiddenStates(tokens: TF.Tensor2D): TF.Tensor3D {
    const tf = this.tf;
    return tf.tidy(() => {
      const [b, t] = tokens.shape;
      const positions = new Int32Array(b * (t - 1));
      for (let i = 0; i < b; i++) for (let j = 0; j < t - 1; j++) positions[i * (t - 1) + j] = j;
      const inputs = tf.slice(tokens, [0, 0], [b, t - 1]) as TF.Tensor2D;
      return this.model.hidden(inputs, positions, undefined, 'policy');
    });
  }

  resetReference(): void {
    this.model.resetReference();
  }

  /**
   * Write the model with the adapters merged in (W + alpha/r B A in the checkpoint's layout) as a Hugging
   * Face folder: `model.safetensors` (F32) and the original config and tokenizer files.
   */
  async exportMerged(folder: string): Promise<void> {
    await mkdir(folder, { recursive: true });
    await writeSafetensors(join(folder, 'model.safetensors'), await this.model.mergedTensors());
    for (const [file, text] of Object.entries(this.checkpoint.files))
      await writeFile(join(folder, file), text);
  }

  dispose(): void {
    this.model.dispose();
  }
}
