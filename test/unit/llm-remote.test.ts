/**
 * agent.llm-remote and trainer.in-context: the prompt with its memory, the retry schedule, the key kept
 * out of graphs, exports and checkpoints, and the error each failure gives, against a local protocol
 * server (test/helpers/fake-chat-server.ts).
 */
import { type AddressInfo, createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import llmRemote, {
  backoffDelay,
  buildMessages,
  EpisodeMemory,
  MEMORY_HEADER,
  RemoteChatPolicy,
  type RemoteOptions,
  restoreStop,
} from '../../nodes/agent/llm-remote.ts';
import { createRegistry } from '../../nodes/index.ts';
import type { EpisodeFeedback, GenerationOptions } from '../../nodes/text-contracts.ts';
import { hindsightFeedback } from '../../nodes/trainer/in-context.ts';
import { exportGraph } from '../../src-main/engine/export/index.ts';
import { type NodeContext, NodeError } from '../../src-main/engine/node-api.ts';
import { wireMismatch } from '../../src-main/engine/ports.ts';
import { Rng } from '../../src-main/engine/rng.ts';
import { type FakeChatServer, scriptedTurn, startFakeChatServer } from '../helpers/fake-chat-server.ts';
import { loadTemplate } from '../helpers/graphs.ts';

const episode = (q: string, answer: string, agent: string[], reward: number): EpisodeFeedback => ({
  problem: { id: q, prompt: `Q ${q}\n`, answer },
  turns: [{ role: 'prompt', text: `Q ${q}\n` }, ...agent.map((text) => ({ role: 'agent' as const, text }))],
  reward,
  success: reward === 1,
});

const options = (o: Partial<RemoteOptions>): RemoteOptions => ({
  baseUrl: 'http://127.0.0.1:1/v1',
  model: 'scripted',
  temperature: 0.7,
  topP: 1,
  maxTokens: 32,
  timeoutMs: 2000,
  retries: 2,
  backoffMs: 1,
  maxBackoffMs: 4,
  concurrency: 3,
  systemPrompt: 'Solve it.',
  ...o,
});
const generation: GenerationOptions = { maxNewTokens: 32, temperature: 1, stop: ['</calc>', '</answer>'] };

describe('episode memory and the prompt', () => {
  it('shows the best and the most recent episodes, oldest first, with rewards and hindsight', () => {
    const memory = new EpisodeMemory(1, 2);
    const a = episode('1*2', '2', ['<calc>1*2</calc>', '<answer>2</answer>'], 1);
    const b = episode('3*4', '12', ['<answer>10</answer>'], 0);
    const c = episode('5*6', '30', ['<answer>31</answer>'], 0);
    memory.observe([a, b, c]);
    // The rollout told them first; the trainer adds hindsight to the same episode, which is not duplicated.
    memory.observe([{ ...c, feedback: 'failed; the correct answer was 30.' }]);
    const shown = memory.shown();
    expect(shown.map((e) => e.problem.id)).toEqual(['1*2', '3*4', '5*6']);
    const [system, user] = buildMessages('Solve it.', shown, 'Q 7*8\n');
    expect(user).toEqual({ role: 'user', content: 'Q 7*8\n' });
    expect(system.content).toBe(
      [
        'Solve it.',
        MEMORY_HEADER,
        '### Episode 1 — reward 1 (solved)\nQ 1*2\n<calc>1*2</calc>\n<answer>2</answer>',
        '### Episode 2 — reward 0 (failed)\nQ 3*4\n<answer>10</answer>',
        '### Episode 3 — reward 0 (failed)\nQ 5*6\n<answer>31</answer>\nHindsight: failed; the correct answer was 30.',
      ].join('\n\n'),
    );
    // One more failure pushes the oldest failure out of "recent"; the solved one stays as "best".
    memory.observe([episode('9*9', '81', ['<answer>80</answer>'], 0)]);
    expect(memory.shown().map((e) => e.problem.id)).toEqual(['1*2', '5*6', '9*9']);
    const copy = new EpisodeMemory(1, 2);
    copy.load(JSON.parse(JSON.stringify(memory.save())));
    expect(copy.shown()).toEqual(memory.shown());
    expect(buildMessages('x', [], 'Q 1*1\n')[0].content).toBe('x');
  });

  it('hindsight names the correct answer of a failed episode', () => {
    const record = {
      ...episode('3*4', '12', ['<answer>10</answer>'], 0),
      turnRewards: [0],
      formatErrors: 0,
      toolCalls: 0,
    };
    expect(hindsightFeedback(record)).toBe('failed; the correct answer was 12.');
    expect(hindsightFeedback({ ...record, success: true })).toMatch(/^solved/);
  });

  it('puts back the stop string the server cut, and cuts at one it ignored', () => {
    const stops = ['</calc>', '</answer>'];
    expect(restoreStop('<calc>347*28', stops, 'stop')).toBe('<calc>347*28</calc>');
    expect(restoreStop('<answer>9716', stops, 'stop')).toBe('<answer>9716</answer>');
    expect(restoreStop('<answer>9716</answer> and more', stops, 'stop')).toBe('<answer>9716</answer>');
    expect(restoreStop('<answer>97', stops, 'length')).toBe('<answer>97');
    expect(restoreStop('plain', ['END'], 'stop')).toBe('plainEND');
  });

  it('retry k waits min(max, base 2^k) x (0.5 + 0.5 u)', () => {
    const o = { backoffMs: 500, maxBackoffMs: 3000 };
    expect(backoffDelay(0, 0, o)).toBe(250);
    expect(backoffDelay(1, 0.5, o)).toBe(750);
    expect(backoffDelay(2, 1, o)).toBe(2000);
    expect(backoffDelay(3, 0, o)).toBe(1500);
    expect(backoffDelay(5, 0.2, o)).toBe(1800);
  });

  it('the scripted model copies a tool reply and answers from hindsight in its memory', () => {
    expect(scriptedTurn('', 'Q 347*28\n<calc>347*28</calc>=9716\n', 1)).toBe('<answer>9716</answer>');
    const memory =
      '### Episode 1 — reward 0 (failed)\nQ 347*28\n<answer>9700</answer>\nHindsight: the correct answer was 9716.';
    expect(scriptedTurn(memory, 'Q 347*28\n', 1)).toBe('<answer>9716</answer>');
  });
});

describe('wires', () => {
  it('trainer.in-context takes the remote agent and refuses a gradient-trained transformer, saying why', () => {
    const registry = createRegistry();
    const input = registry.get('trainer.in-context')!.inputs.find((p) => p.name === 'policy')!;
    const remote = registry.get('agent.llm-remote')!.outputs[0];
    const local = registry.get('agent.llm')!.outputs[0];
    expect(wireMismatch(remote, input)).toBeNull();
    expect(wireMismatch(local, input)).toMatch(/learns 'unspecified'.*such as agent\.llm-remote/);
    // The remote agent still plays in the ordinary text rollout.
    const rollout = registry.get('rollout.group')!.inputs.find((p) => p.name === 'policy')!;
    expect(wireMismatch(remote, rollout)).toBeNull();
  });
});

describe('the remote policy against a local protocol server', () => {
  let server: FakeChatServer;
  beforeAll(async () => {
    server = await startFakeChatServer();
  });
  afterAll(() => server.close());
  const fresh = (o: Partial<RemoteOptions> = {}, key?: string) =>
    new RemoteChatPolicy('agent', options({ baseUrl: server.baseUrl, ...o }), new EpisodeMemory(2, 2), key);

  it('sends the batch with stop strings, seeds from the stream and the key, and counts usage', async () => {
    server.requests.length = 0;
    const policy = fresh({}, 'sk-secret');
    const out = await policy.generate(
      ['Q 12*3\n<calc>12*3</calc>=36\n', 'Q 5*5\n<calc>5*5</calc>=25\n'],
      generation,
      new Rng(1),
    );
    expect(out.map((c) => c.text)).toEqual(['<answer>36</answer>', '<answer>25</answer>']);
    expect(server.requests).toHaveLength(2);
    const seeds = new Rng(1);
    const expected = [seeds.int(2 ** 31)];
    seeds.float();
    seeds.float();
    expected.push(seeds.int(2 ** 31));
    expect(server.requests.map((r) => r.body?.seed).sort()).toEqual(expected.sort());
    expect(server.requests[0].body?.stop).toEqual(['</calc>', '</answer>']);
    expect(server.requests[0].authorization).toBe('Bearer sk-secret');
    const m = policy.metrics();
    expect(m.requests).toBe(2);
    expect(m.prompt_tokens).toBeGreaterThan(0);
    expect(m.completion_tokens).toBeGreaterThan(0);
  });

  it('retries 500 and 429 with backoff, then succeeds', async () => {
    const policy = fresh();
    server.modes.fail500 = 1;
    server.modes.rateLimit = 1;
    const [c] = await policy.generate(['Q 2*3\n<calc>2*3</calc>=6\n'], generation, new Rng(2));
    expect(c.text).toBe('<answer>6</answer>');
    expect(policy.stats.retries).toBe(2);
    expect(policy.stats.requests).toBe(3);
  });

  it('gives up after the retries with the status, node and field named', async () => {
    const policy = fresh({ retries: 1 });
    server.modes.fail500 = 5;
    const error = await policy.generate(['Q 2*3\n'], generation, new Rng(3)).catch((e: unknown) => e);
    server.modes.fail500 = 0;
    expect(error).toBeInstanceOf(NodeError);
    expect((error as NodeError).message).toMatch(/^agent\.baseUrl: HTTP 500 from .*\(2 tries\)$/);
  });

  it('a hanging server times out, naming timeoutMs', async () => {
    const policy = fresh({ timeoutMs: 150, retries: 1 });
    server.modes.hang = true;
    const error = await policy.generate(['Q 2*3\n'], generation, new Rng(4)).catch((e: unknown) => e);
    server.modes.hang = false;
    expect((error as NodeError).field).toBe('timeoutMs');
    expect((error as NodeError).message).toContain('did not answer within 150 ms');
  });

  it('a refused key names apiKeyEnv and is not retried', async () => {
    server.modes.requireKey = 'right';
    const policy = fresh({}, 'wrong');
    const error = await policy.generate(['Q 2*3\n'], generation, new Rng(5)).catch((e: unknown) => e);
    server.modes.requireKey = undefined;
    expect((error as NodeError).field).toBe('apiKeyEnv');
    expect(policy.stats.requests).toBe(1);
  });
});

describe('the API key stays out of graphs, exports and checkpoints', () => {
  let server: FakeChatServer;
  beforeAll(async () => {
    server = await startFakeChatServer({ requireKey: 'sk-test-123456' });
  });
  afterAll(() => server.close());

  const context = (): NodeContext =>
    ({
      nodeId: 'agent',
      label: 'agent',
      rng: new Rng(1),
      inputs: {},
      run: { seed: 1, totalIterations: 1, backend: 'cpu' },
      log: () => {},
    }) as unknown as NodeContext;

  it('reads the key from the named variable; the graph, its export and the checkpoint never hold it', async () => {
    process.env.LLM_REMOTE_TEST_KEY = 'sk-test-123456';
    try {
      const params = llmRemote.params.parse({ baseUrl: server.baseUrl, apiKeyEnv: 'LLM_REMOTE_TEST_KEY' });
      const instance = await llmRemote.create(params, context());
      const policy = instance.components!.policy as RemoteChatPolicy;
      await policy.generate(['Q 1*2\n<calc>1*2</calc>=2\n'], generation, new Rng(1));
      const state = JSON.stringify(await instance.saveState!());
      expect(state).not.toContain('sk-test-123456');

      const graph = loadTemplate('in-context-remote');
      graph.nodes.find((n) => n.id === 'agent')!.params.apiKeyEnv = 'LLM_REMOTE_TEST_KEY';
      const exported = exportGraph(graph, createRegistry());
      expect(JSON.stringify(graph)).not.toContain('sk-test');
      expect(exported.code).toContain('LLM_REMOTE_TEST_KEY');
      expect(exported.code).not.toContain('sk-test');
    } finally {
      delete process.env.LLM_REMOTE_TEST_KEY;
    }
  });

  it('refuses a key pasted into apiKeyEnv, and a variable that is not set', async () => {
    const pasted = llmRemote.params.parse({ baseUrl: server.baseUrl, apiKeyEnv: 'sk-abc-123' });
    await expect(llmRemote.create(pasted, context())).rejects.toThrow(/agent\.apiKeyEnv: put the NAME/);
    const unset = llmRemote.params.parse({ baseUrl: server.baseUrl, apiKeyEnv: 'LLM_REMOTE_UNSET_VARIABLE' });
    await expect(llmRemote.create(unset, context())).rejects.toThrow(/LLM_REMOTE_UNSET_VARIABLE is not set/);
  });

  it('a dead endpoint fails at creation with what to start', async () => {
    // A port that was just free: bind it, then let it go.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const baseUrl = `http://127.0.0.1:${port}/v1`;
    const params = llmRemote.params.parse({ baseUrl });
    const error = await Promise.resolve(llmRemote.create(params, context())).catch((e: unknown) => e);
    expect((error as NodeError).field).toBe('baseUrl');
    expect((error as NodeError).message).toContain(
      `agent.baseUrl: no server answered at ${baseUrl} — start one, e.g. \`ollama serve\``,
    );
  });
});
