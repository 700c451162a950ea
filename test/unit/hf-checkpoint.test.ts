/**
 * Reading Hugging Face model folders: safetensors dtypes and shards, the byte-level BPE tokenizer through
 * @huggingface/tokenizers against an independent BPE encoder, the chat template, and the node's clear
 * refusals (missing or corrupt files, unsupported architectures, shapes, memory) that leave no tensor behind.
 */
import { copyFile, mkdir, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../nodes/agent/hf/config.ts';
import { estimateMemory } from '../../nodes/agent/hf/memory.ts';
import { readHfCheckpoint } from '../../nodes/agent/hf/policy.ts';
import {
  encodeSafetensors,
  floatToHalf,
  halfToFloat,
  parseSafetensors,
} from '../../nodes/agent/hf/safetensors.ts';
import hfLlm from '../../nodes/agent/hf-llm.ts';
import { startBackend } from '../../src-main/engine/backend.ts';
import type { NodeContext, Tf } from '../../src-main/engine/node-api.ts';
import { Rng } from '../../src-main/engine/rng.ts';
import {
  type BpeModel,
  bpeEncode,
  FIXTURES,
  fixtureCorpus,
  writeFixture,
} from '../fixtures/hf/make-fixtures.ts';

let tf: Tf;
let root: string;
let bpe: BpeModel;

beforeAll(async () => {
  tf = (await startBackend('wasm')).tf;
  root = await mkdtemp(join(tmpdir(), 'hf-checkpoint-'));
  for (const [name, spec] of Object.entries(FIXTURES)) bpe = await writeFixture(join(root, name), spec);
});

afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

function context(logs: string[] = []): NodeContext {
  return {
    nodeId: 'hf',
    label: 'hf',
    tf,
    rng: new Rng(3),
    inputs: {},
    run: { seed: 1, totalIterations: 1, backend: 'wasm' },
    control: { point: async () => {} },
    log: (_level, message) => logs.push(message),
  };
}

async function create(params: Record<string, unknown>, logs: string[] = []) {
  return hfLlm.create(hfLlm.params.parse(params), context(logs));
}

/** A copy of a fixture folder, to break. */
async function copyFixture(name: string, to: string): Promise<string> {
  const target = join(root, to);
  await mkdir(target, { recursive: true });
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors']) {
    await copyFile(join(root, name, f), join(target, f));
  }
  return target;
}

describe('safetensors', () => {
  it('round-trips F32 exactly and F16 / BF16 to their precision, with hand-checked bit patterns', () => {
    const data = Float32Array.from([0, 1, -2.5, 0.1, 65504, 1e-6]);
    const tensors = { w: { shape: [2, 3], data } };
    expect(Array.from(parseSafetensors(encodeSafetensors(tensors, 'F32'), 'f').get('w')?.data ?? [])).toEqual(
      Array.from(data),
    );
    // Half: 1 = 0x3c00, -2.5 = 0xc100, 65504 = 0x7bff (largest finite).
    expect([1, -2.5, 65504].map(floatToHalf)).toEqual([0x3c00, 0xc100, 0x7bff]);
    expect(halfToFloat(0x3555)).toBeCloseTo(0.333251953125, 12);
    const half = parseSafetensors(encodeSafetensors(tensors, 'F16'), 'f').get('w');
    expect(half?.shape).toEqual([2, 3]);
    expect(half?.data[3]).toBeCloseTo(0.0999755859375, 12);
    // bfloat16 keeps 8 mantissa bits: 0.1 -> 0x3dcd -> 0.10009765625.
    const bf = parseSafetensors(encodeSafetensors(tensors, 'BF16'), 'f').get('w');
    expect(bf?.data[3]).toBe(0.10009765625);
    expect(bf?.data[2]).toBe(-2.5);
  });

  it('refuses a truncated file, naming the file and the tensor', () => {
    const bytes = encodeSafetensors({ 'a.weight': { shape: [4], data: new Float32Array(4) } });
    expect(() => parseSafetensors(bytes.subarray(0, bytes.length - 2), 'model.safetensors')).toThrow(
      /model\.safetensors: tensor a\.weight .*truncated/,
    );
    expect(() => parseSafetensors(new Uint8Array(4), 'x.safetensors')).toThrow(/x\.safetensors: too short/);
  });
});

describe('tokenizer', () => {
  it('matches an independent BPE encoder, round-trips text, and keeps special tokens whole', async () => {
    const { tokenizer } = await readHfCheckpoint(join(root, 'gpt2'));
    const samples = [...fixtureCorpus().slice(0, 6), 'Hello, wörld! 123 <calc>7*8</calc>\n  spaced'];
    for (const text of samples) {
      const ids = tokenizer.encode(text);
      expect(ids).toEqual(bpeEncode(bpe, text));
      expect(tokenizer.decode(ids)).toBe(text);
    }
    // The trained merges made the calculator's digits-and-tags text shorter than its bytes.
    const text = 'What is 347*28? <calc>347*28</calc>';
    expect(tokenizer.encode(text).length).toBeLessThan(new TextEncoder().encode(text).length * 0.8);
    const base = Object.keys(bpe.vocab).length;
    expect(tokenizer.encode('a<|im_end|>')).toEqual([...bpeEncode(bpe, 'a'), base + 2]);
    expect(tokenizer.eosIds).toEqual([base]);
  });

  it('renders the ChatML chat template around the prompt', async () => {
    const { tokenizer } = await readHfCheckpoint(join(root, 'qwen2'));
    expect(tokenizer.hasChatTemplate).toBe(true);
    expect(tokenizer.applyChatTemplate([{ role: 'user', content: 'What is 2*3?' }])).toBe(
      '<|im_start|>user\nWhat is 2*3?<|im_end|>\n<|im_start|>assistant\n',
    );
  });
});

describe('agent.hf-llm node', () => {
  it('loads each fixture (single file, shards with an index), logs its memory estimate, frees everything', async () => {
    for (const name of Object.keys(FIXTURES)) {
      const before = tf.memory().numTensors;
      const logs: string[] = [];
      const node = await create(
        { modelPath: join(root, name), loraRank: 2, context: 64, memoryBatch: 4 },
        logs,
      );
      expect(logs.some((l) => /memory estimate .*weights .*KV cache/.test(l))).toBe(true);
      expect(node.components?.policy).toBeDefined();
      node.dispose?.();
      expect(tf.memory().numTensors).toBe(before);
    }
  });

  it('refuses missing files, corrupt files, unsupported architectures and wrong shapes, naming them', async () => {
    const before = tf.memory().numTensors;
    await expect(create({ modelPath: join(root, 'nowhere') })).rejects.toThrow(
      /hf\.modelPath: .*config\.json: not found/,
    );

    const noWeights = await copyFixture('gpt2', 'no-weights');
    await rm(join(noWeights, 'model.safetensors'));
    await expect(create({ modelPath: noWeights })).rejects.toThrow(
      /hf\.modelPath: .*model\.safetensors: file not found/,
    );

    const truncated = await copyFixture('gpt2', 'truncated');
    await truncate(join(truncated, 'model.safetensors'), 3000);
    await expect(create({ modelPath: truncated })).rejects.toThrow(/model\.safetensors: tensor .*truncated/);

    const mistral = await copyFixture('gpt2', 'mistral');
    await writeFile(
      join(mistral, 'config.json'),
      JSON.stringify({ architectures: ['MistralForCausalLM'], model_type: 'mistral' }),
    );
    await expect(create({ modelPath: mistral })).rejects.toThrow(
      /config\.json: architecture "MistralForCausalLM"/,
    );

    const wrongShape = await copyFixture('gpt2', 'wrong-shape');
    const config = JSON.parse(await readFile(join(wrongShape, 'config.json'), 'utf8'));
    await writeFile(join(wrongShape, 'config.json'), JSON.stringify({ ...config, n_embd: 64 }));
    await expect(create({ modelPath: wrongShape })).rejects.toThrow(
      /tensor transformer\.(wte|h\.0)\S* has shape/,
    );

    const badJson = await copyFixture('gpt2', 'bad-tokenizer');
    await writeFile(join(badJson, 'tokenizer.json'), '{"model": ');
    await expect(create({ modelPath: badJson })).rejects.toThrow(/tokenizer\.json: is not valid JSON/);

    await expect(create({ modelPath: join(root, 'qwen2'), loraTargets: 'q_proj,w_in' })).rejects.toThrow(
      /hf\.loraTargets: unknown LoRA target "w_in"/,
    );
    expect(tf.memory().numTensors).toBe(before);
  });

  it('estimates memory by hand-checked parts and refuses a model above the budget', async () => {
    const c = parseConfig({
      architectures: ['LlamaForCausalLM'],
      model_type: 'llama',
      vocab_size: 49152,
      hidden_size: 576,
      intermediate_size: 1536,
      num_hidden_layers: 30,
      num_attention_heads: 9,
      num_key_value_heads: 3,
      tie_word_embeddings: true,
    });
    const m = estimateMemory(c, 8, ['q_proj', 'v_proj'], 8, 512);
    // SmolLM-135M: 134,515,008 parameters.
    expect(m.weights).toBe(134_515_008 * 4);
    // q: 8 (576 + 576), v: 8 (576 + 192) per layer, 30 layers; values and reference copy.
    expect(m.adapters).toBe(2 * 30 * (8 * 1152 + 8 * 768) * 4);
    // keys and values: 2 x 30 layers x 3 heads x 64 x 8 sequences x 512 tokens x 4 bytes.
    expect(m.kvCache).toBe(2 * 30 * 3 * 64 * 8 * 512 * 4);
    const before = tf.memory().numTensors;
    await expect(create({ modelPath: join(root, 'llama-gqa'), memoryBudgetMB: 0.1 })).rejects.toThrow(
      /hf\.memoryBudgetMB: needs about .* more than the 0\.1 MiB available/,
    );
    expect(tf.memory().numTensors).toBe(before);
  });
});
