/**
 * PPO for text: token-level GAE against hand-computed values, the value head's output shape, masking,
 * stop-gradient and checkpoint, and the text PPO loss on a hand-made batch.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as TF from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { HfPolicy, readHfCheckpoint } from '../../nodes/agent/hf/policy.ts';
import { LlmPolicy } from '../../nodes/agent/llm/policy.ts';
import { scoreEpisodes, tokenLevelGae, tokenRewards } from '../../nodes/credit/token-gae.ts';
import type { TextEpisodeRecord, TextValueFunction } from '../../nodes/text-contracts.ts';
import ppoNode from '../../nodes/trainer/ppo.ts';
import { textPpoLoss } from '../../nodes/trainer/text-ppo.ts';
import llmValueHead from '../../nodes/value/llm-head.ts';
import { startBackend } from '../../src-main/engine/backend.ts';
import type { NodeContext, Tf } from '../../src-main/engine/node-api.ts';
import { Rng } from '../../src-main/engine/rng.ts';
import { FIXTURES, writeFixture } from '../fixtures/hf/make-fixtures.ts';

let tf: Tf;
beforeAll(async () => {
  tf = (await startBackend('wasm')).tf;
});

// Prompt (3 tokens), agent turn 0 (2), tool reply (2), agent turn 1 (2).
const episode = {
  agentMask: Uint8Array.from([0, 0, 0, 1, 1, 0, 0, 1, 1]),
  turnOfToken: Int16Array.from([-1, -1, -1, 0, 0, -1, -1, 1, 1]),
  turnRewards: [0.1, 1.0],
};
// V(x_<t) at the agent tokens (3, 4, 7, 8); the others must not matter.
const values = Float32Array.from([9, 9, 9, 0.5, 0.6, 9, 9, 0.7, 0.8]);

describe('token-level GAE', () => {
  it('puts each turn reward on the last token of its turn', () => {
    expect(Array.from(tokenRewards(episode))).toEqual([0, 0, 0, 0, 0.1, 0, 0, 0, 1].map(Math.fround));
    // A turn that wrote nothing hands its reward to the latest agent token before it.
    const empty = { ...episode, turnRewards: [0.1, 0, 0.5] };
    expect(tokenRewards(empty)[8]).toBeCloseTo(0.5, 6);
    // A per-token term (the KL penalty) is added on agent tokens only.
    const kl = Float32Array.from([5, 5, 5, -0.01, -0.02, 5, 5, 0, -0.03]);
    expect(Array.from(tokenRewards(episode, kl))).toEqual(
      [0, 0, 0, -0.01, 0.08, 0, 0, 0, 0.97].map(Math.fround),
    );
  });

  it('gamma 0.9, lambda 0.5: advantages and returns by hand, zero off the agent tokens', () => {
    const { advantages, returns } = tokenLevelGae(episode.agentMask, tokenRewards(episode), values, 0.9, 0.5);
    // t8: delta = 1 - 0.8 = 0.2;                A = 0.2
    // t7: delta = 0 + 0.9 * 0.8 - 0.7 = 0.02;   A = 0.02 + 0.45 * 0.2 = 0.11
    // t4: delta = 0.1 + 0.9 * 0.7 - 0.6 = 0.13; A = 0.13 + 0.45 * 0.11 = 0.1795
    // t3: delta = 0.9 * 0.6 - 0.5 = 0.04;       A = 0.04 + 0.45 * 0.1795 = 0.120775
    const expected = [0, 0, 0, 0.120775, 0.1795, 0, 0, 0.11, 0.2];
    expected.forEach((a, t) => {
      expect(advantages[t]).toBeCloseTo(a, 6);
    });
    [0.620775, 0.7795, 0.81, 1.0].forEach((r, k) => {
      expect(returns[[3, 4, 7, 8][k]]).toBeCloseTo(r, 6);
    });
    expect(returns[5]).toBe(0);
  });

  it('gamma = lambda = 1 gives the return-to-go minus V', () => {
    const { advantages } = tokenLevelGae(episode.agentMask, tokenRewards(episode), values, 1, 1);
    expect(advantages[3]).toBeCloseTo(1.1 - 0.5, 6);
    expect(advantages[4]).toBeCloseTo(1.1 - 0.6, 6);
    expect(advantages[7]).toBeCloseTo(1.0 - 0.7, 6);
    expect(advantages[8]).toBeCloseTo(1.0 - 0.8, 6);
  });
});

describe('text PPO loss', () => {
  it('matches a hand computation on a hand-made batch, the masked token left out', () => {
    const row = (xs: number[]) => tf.tensor2d([xs]);
    const parts = tf.tidy(() =>
      textPpoLoss(
        tf,
        {
          logProbs: row([Math.log(0.5), Math.log(0.3), Math.log(0.9)]),
          oldLogProbs: row([Math.log(0.4), Math.log(0.3), Math.log(0.1)]),
          advantages: row([1, -2, 5]),
          entropy: row([1, 2, 7]),
          values: row([0.5, 0, 3]),
          oldValues: row([0.2, 0.1, 0]),
          returns: row([1, -0.5, 0]),
          mask: row([1, 1, 0]),
          refLogProbs: row([Math.log(0.25), Math.log(0.3), 0]),
        },
        { clip: 0.2, clipValueLoss: true, entropyCoef: 0.01, valueCoef: 0.5, klCoef: 0.1 },
      ).map((s) => tf.keep(s)),
    );
    const [loss, policy, value, entropy, approxKl, clipFraction, kl, valueClip] = parts.map(
      (s) => s.dataSync()[0],
    );
    tf.dispose(parts);
    // Token 0: rho = 1.25, A = 1: max(-1.25, -1.2) = -1.2 (clipped). Token 1: rho = 1, A = -2: 2.
    expect(policy).toBeCloseTo((-1.2 + 2) / 2, 5);
    // Token 0: max((0.5-1)^2, (0.2+0.2-1)^2) = 0.36; token 1: max(0.25, (0.1-0.1+0.5)^2) = 0.25.
    expect(value).toBeCloseTo((0.5 * (0.36 + 0.25)) / 2, 5);
    expect(entropy).toBeCloseTo(1.5, 5);
    // k3: 0.5 - log 0.5 - 1 on token 0, 0 on token 1.
    expect(kl).toBeCloseTo((0.5 + Math.log(2) - 1) / 2, 5);
    expect(approxKl).toBeCloseTo((0.25 - Math.log(1.25)) / 2, 5);
    expect(clipFraction).toBeCloseTo(0.5, 6);
    expect(valueClip).toBeCloseTo(0.5, 6);
    expect(loss).toBeCloseTo(0.4 + 0.5 * 0.1525 - 0.01 * 1.5 + 0.1 * ((0.5 + Math.log(2) - 1) / 2), 5);
  });
});

describe('value.llm-head', () => {
  const shape = { context: 24, width: 16, heads: 2, layers: 1, activation: 'relu' as const };
  const ctxFor = (policy: LlmPolicy, seed: number): NodeContext => ({
    nodeId: 'value',
    label: 'value',
    tf,
    rng: new Rng(seed),
    inputs: { policy },
    run: { seed, totalIterations: 1, backend: 'wasm' },
    control: { point: async () => {} },
    log: () => {},
  });
  const build = async (policy: LlmPolicy, params: Record<string, unknown> = {}, seed = 3) => {
    const instance = await llmValueHead.create(llmValueHead.params.parse(params), ctxFor(policy, seed));
    return { instance, head: instance.components!.value as TextValueFunction };
  };

  it('gives one value per target position, unchanged by right padding, from the same pass as the log-probs', async () => {
    const policy = new LlmPolicy(tf, 'agent', shape, new Rng(1));
    const { instance, head } = await build(policy);
    const short = policy.encode('Q 1+2');
    const long = policy.encode('Q 12+34 <calc>');
    const padded = new Int32Array(2 * long.length);
    padded.set(short, 0);
    padded.set(long, long.length);
    const [alone, batched, fromPass, same, withHidden, without] = tf.tidy(() => {
      const tokensShort = tf.tensor2d(short, [1, short.length], 'int32');
      const tokensBoth = tf.tensor2d(padded, [2, long.length], 'int32');
      const scored = policy.tokenLogProbs(tokensBoth, true);
      return [
        head.tokenValues(tokensShort),
        head.tokenValues(tokensBoth),
        head.valuesFromHidden(scored.hidden!),
        tf.sub(scored.hidden!, policy.hiddenStates(tokensBoth)),
        scored.logProbs,
        policy.tokenLogProbs(tokensBoth).logProbs,
      ];
    });
    expect(batched.shape).toEqual([2, long.length - 1]);
    const a = alone.dataSync();
    const b = batched.dataSync();
    for (let t = 0; t < short.length - 1; t++) expect(b[t]).toBeCloseTo(a[t], 5);
    expect(Array.from(fromPass.dataSync())).toEqual(Array.from(b));
    expect(Math.max(...Array.from(same.dataSync(), Math.abs))).toBe(0);
    expect(Array.from(withHidden.dataSync())).toEqual(Array.from(without.dataSync()));
    tf.dispose([alone, batched, fromPass, same, withHidden, without]);
    instance.dispose?.();
    policy.dispose();
  });

  it('credit.token-gae scores each episode of a batch as it would alone: V(x_<t) at index t', async () => {
    const policy = new LlmPolicy(tf, 'agent', shape, new Rng(1));
    const { instance, head } = await build(policy);
    const texts = ['Q 1+2\n<calc>', 'Q 12+34\n<calc>12+34'];
    const episodes = texts.map((text) => {
      const tokens = policy.encode(text);
      return { tokens, agentMask: new Uint8Array(tokens.length).fill(1) } as TextEpisodeRecord;
    });
    const scored = await scoreEpisodes(tf, head, episodes, true, 2);
    episodes.forEach((e, i) => {
      const [v, ref] = tf.tidy(() => {
        const t = tf.tensor2d(e.tokens!, [1, e.tokens!.length], 'int32');
        return [head.tokenValues(t), policy.referenceLogProbs(t)];
      });
      const alone = v.dataSync();
      const refAlone = ref.dataSync();
      tf.dispose([v, ref]);
      expect(scored.values[i][0]).toBe(0);
      for (let t = 1; t < e.tokens!.length; t++) {
        expect(scored.values[i][t]).toBeCloseTo(alone[t - 1], 5);
        expect(scored.refLogProbs![i][t]).toBeCloseTo(refAlone[t - 1], 5);
      }
    });
    instance.dispose?.();
    policy.dispose();
  });

  it('detached: the value loss trains the head only; joined: the transformer too', async () => {
    const policy = new LlmPolicy(tf, 'agent', shape, new Rng(1));
    const tokens = policy.encode('Q 12+34');
    for (const trunkGradient of ['detached', 'joined']) {
      const { instance, head } = await build(policy, { trunkGradient });
      const norms = tf.tidy(() => {
        const t = tf.tensor2d(tokens, [1, tokens.length], 'int32');
        const variables = [...policy.variables, ...head.variables];
        const { grads } = tf.variableGrads(
          () => tf.sum(tf.square(tf.sub(head.tokenValues(t), 1))) as TF.Scalar,
          variables,
        );
        const norm = (vs: TF.Variable[]) =>
          vs.reduce((s, v) => s + (grads[v.name] ? tf.sum(tf.abs(grads[v.name])).dataSync()[0] : 0), 0);
        return [norm(policy.variables), norm(head.variables)];
      });
      expect(norms[1]).toBeGreaterThan(0);
      if (trunkGradient === 'detached') expect(norms[0]).toBe(0);
      else expect(norms[0]).toBeGreaterThan(0);
      instance.dispose?.();
    }
    policy.dispose();
  });

  it('saves and loads its weights, frees every tensor, and refuses a policy without hidden states', async () => {
    const policy = new LlmPolicy(tf, 'agent', shape, new Rng(1));
    const tokens = policy.encode('Q 7*8');
    const valuesOf = (head: TextValueFunction) => {
      const out = tf.tidy(() => head.tokenValues(tf.tensor2d(tokens, [1, tokens.length], 'int32')));
      const data = out.dataSync();
      out.dispose();
      return data;
    };
    const before = tf.memory().numTensors;
    const first = await build(policy, {}, 3);
    const second = await build(policy, {}, 4);
    expect(Array.from(valuesOf(second.head))).not.toEqual(Array.from(valuesOf(first.head)));
    await second.instance.loadState!(await first.instance.saveState!());
    expect(Array.from(valuesOf(second.head))).toEqual(Array.from(valuesOf(first.head)));
    first.instance.dispose?.();
    second.instance.dispose?.();
    expect(tf.memory().numTensors).toBe(before);
    const remote = {
      ...policy,
      hiddenStates: undefined,
      tokenLogProbs: policy.tokenLogProbs,
      trainable: true,
    };
    const ctx = { ...ctxFor(policy, 1), inputs: { policy: remote } };
    await expect(
      Promise.resolve().then(() => llmValueHead.create(llmValueHead.params.parse({}), ctx)),
    ).rejects.toThrow(/^value\.policy: .*exposes no hidden states/);
    policy.dispose();
  });
});

describe('value.llm-head on agent.hf-llm', () => {
  it('reads the hidden states of a Hugging Face checkpoint (LoRA): values per target, the adapters untouched by the value loss', async () => {
    const root = await mkdtemp(join(tmpdir(), 'text-ppo-hf-'));
    try {
      await writeFixture(join(root, 'gpt2'), FIXTURES.gpt2);
      const policy = new HfPolicy(
        tf,
        'hf',
        await readHfCheckpoint(join(root, 'gpt2')),
        { lora: { rank: 2, alpha: 4, targets: ['c_attn'] }, context: 32, chatTemplate: false },
        new Rng(5),
      );
      const ctx: NodeContext = {
        nodeId: 'value',
        label: 'value',
        tf,
        rng: new Rng(2),
        inputs: { policy },
        run: { seed: 1, totalIterations: 1, backend: 'wasm' },
        control: { point: async () => {} },
        log: () => {},
      };
      const instance = await llmValueHead.create(llmValueHead.params.parse({}), ctx);
      const head = instance.components!.value as TextValueFunction;
      const ids = policy.encode('Q 12+34');
      const [values, policyNorm, headNorm] = tf.tidy(() => {
        const t = tf.tensor2d(ids, [1, ids.length], 'int32');
        const v = head.tokenValues(t);
        const { grads } = tf.variableGrads(
          () => tf.sum(tf.square(head.tokenValues(t))) as TF.Scalar,
          [...policy.variables, ...head.variables],
        );
        const norm = (vs: TF.Variable[]) =>
          vs.reduce((s, x) => s + (grads[x.name] ? tf.sum(tf.abs(grads[x.name])).dataSync()[0] : 0), 0);
        return [v, norm(policy.variables), norm(head.variables)];
      });
      expect(values.shape).toEqual([1, ids.length - 1]);
      expect(Array.from(values.dataSync()).every(Number.isFinite)).toBe(true);
      values.dispose();
      expect(headNorm).toBeGreaterThan(0);
      expect(policyNorm).toBe(0);
      instance.dispose?.();
      policy.dispose();
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('trainer.ppo with a text agent', () => {
  it('names the field when the value head or the credit is missing or of the wrong kind', async () => {
    const policy = new LlmPolicy(
      tf,
      'agent',
      { context: 24, width: 16, heads: 2, layers: 1, activation: 'relu' },
      new Rng(1),
    );
    const ctx = (inputs: Record<string, unknown>): NodeContext => ({
      nodeId: 'ppo',
      label: 'ppo',
      tf,
      rng: new Rng(1),
      inputs,
      run: { seed: 1, totalIterations: 1, backend: 'wasm' },
      control: { point: async () => {} },
      log: () => {},
    });
    const params = ppoNode.params.parse({});
    expect(() => ppoNode.create(params, ctx({ policy }))).toThrow(
      /^ppo\.value: PPO on text needs a value head/,
    );
    const head = await llmValueHead.create(llmValueHead.params.parse({}), {
      ...ctx({ policy }),
      nodeId: 'value',
    });
    const value = head.components!.value;
    expect(() => ppoNode.create(ppoNode.params.parse({ updateOn: 'host' }), ctx({ policy, value }))).toThrow(
      /^ppo\.updateOn:/,
    );
    const trainer = await ppoNode.create(params, ctx({ policy, value }));
    const episode = {
      problem: { id: 'p', prompt: 'Q', answer: '1' },
      turns: [],
      turnRewards: [1],
      reward: 1,
      success: true,
      formatErrors: 0,
      toolCalls: 0,
      tokens: Int32Array.from([0, 5, 6]),
      logProbs: new Float32Array(3),
      agentMask: Uint8Array.from([0, 1, 1]),
      turnOfToken: Int16Array.from([-1, 0, 0]),
    };
    const trajectories = { kind: 'text', episodes: [episode], groups: [[0]] };
    const grpoCredit = {
      kind: 'text',
      tokenAdvantages: [new Float32Array(3)],
      episodeAdvantages: new Float32Array(1),
    };
    const info = { iteration: 0, totalIterations: 1 } as Parameters<NonNullable<typeof trainer.step>>[1];
    await expect(trainer.step!({ trajectories, advantages: grpoCredit }, info)).rejects.toThrow(
      /^ppo\.advantages: .*credit\.token-gae/,
    );
    trainer.dispose?.();
    head.dispose?.();
    policy.dispose();
  });
});
