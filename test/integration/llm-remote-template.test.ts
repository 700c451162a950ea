/**
 * Template 9 (in-context RL with a remote LLM) against a local protocol server: the template's graph,
 * its baseUrl pointed at the scripted server, learns in context on seeds 1-3 (held-out success from about
 * 10% to its card's figure), the same graph with no memory does not, and a dead endpoint fails the run
 * at build time, naming the agent and its baseUrl, before any iteration.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRegistry } from '../../nodes/index.ts';
import { compileGraph } from '../../src-main/engine/compiler.ts';
import type { RunEvent, TrajectorySample } from '../../src-main/engine/events.ts';
import type { GraphFile } from '../../src-main/engine/graph/types.ts';
import { executeRun, type RunResult } from '../../src-main/engine/runtime/run.ts';
import { type FakeChatServer, startFakeChatServer } from '../helpers/fake-chat-server.ts';
import { loadTemplate, numbersOf } from '../helpers/graphs.ts';

interface Card {
  check: { metric: string; atLeast: number };
  requires: string;
}

function withAgentParams(graph: GraphFile, params: Record<string, unknown>): GraphFile {
  const copy = structuredClone(graph);
  const agent = copy.nodes.find((n) => n.type === 'agent.llm-remote')!;
  agent.params = { ...agent.params, ...params };
  return copy;
}

/** A port on 127.0.0.1 with nothing listening: bind one, then free it. */
async function deadPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

describe('template: in-context RL with a remote LLM (scripted local server)', () => {
  const template = loadTemplate('in-context-remote');
  const card = (template as unknown as { template: Card }).template;
  let server: FakeChatServer;
  const runDir = mkdtempSync(path.join(tmpdir(), 'llm-remote-template-'));
  const finished = new Map<number, RunResult>();
  beforeAll(async () => {
    server = await startFakeChatServer();
  });
  afterAll(async () => {
    await server.close();
    rmSync(runDir, { recursive: true, force: true });
  });

  it('compiles with no diagnostics and states what it needs', () => {
    expect(compileGraph(template, createRegistry()).diagnostics).toEqual([]);
    expect(card.requires).toMatch(/127\.0\.0\.1:11434\/v1/);
  });

  it.each([1, 2, 3])(
    'seed %i: held-out success rises from the empty-memory rate to the card figure',
    async (seed) => {
      const graph = withAgentParams(template, { baseUrl: server.baseUrl });
      const samples: TrajectorySample[] = [];
      const result = await executeRun({
        graph,
        registry: createRegistry(),
        seed,
        backend: 'wasm',
        runDir: path.join(runDir, `seed-${seed}`),
        onEvent: (e: RunEvent) => {
          if (e.type === 'samples') samples.push(...e.samples);
        },
      });
      expect(result.error).toBeUndefined();
      expect(result.status).toBe('finished');
      finished.set(seed, result);
      const series = (name: string) => result.metrics.map((r) => r.metrics[name]);
      const train = series('icrl/success_rate');
      const heldout = result.metrics.filter((r) => 'icrl/heldout_success' in r.metrics);
      const final = result.metrics.at(-1)!.metrics;
      console.log(
        `seed ${seed}: train success ${train.map((x) => x.toFixed(2)).join(' ')}; held-out ${heldout
          .map((r) => `it${r.iteration}=${r.metrics['icrl/heldout_success'].toFixed(2)}`)
          .join(' ')}; requests ${final['icrl/agent_requests']}, memory ${final['icrl/agent_memory_size']}`,
      );
      // Iteration 0 plays with an empty memory: the scripted model's base rate (about 0.1 tool calls plus
      // lucky guesses; 16 episodes, so noisy).
      expect(train[0]).toBeLessThanOrEqual(0.4);
      expect(final[card.check.metric]).toBeGreaterThanOrEqual(card.check.atLeast);
      expect(final[card.check.metric] - train[0]).toBeGreaterThanOrEqual(0.5);
      // 4 best + 4 recent, fewer when the best are also the most recent.
      expect(final['icrl/agent_memory_size']).toBeGreaterThanOrEqual(4);
      expect(final['icrl/agent_memory_size']).toBeLessThanOrEqual(8);
      expect(final['icrl/agent_prompt_tokens']).toBeGreaterThan(0);
      expect(samples.some((s) => s.kind === 'text' && s.turns.some((t) => t.text.startsWith('<calc>')))).toBe(
        true,
      );
    },
    30_000,
  );

  it('resuming from a checkpoint (memory and counters included) reproduces the uninterrupted run', async () => {
    const whole = finished.get(1);
    expect(whole).toBeDefined();
    const resumed = await executeRun({
      graph: undefined,
      registry: createRegistry(),
      backend: 'wasm',
      resumeFrom: path.join(runDir, 'seed-1', 'checkpoints', 'iter-0000010'),
    });
    expect(resumed.status).toBe('finished');
    // Latency is wall-clock time, the one figure a rerun cannot repeat.
    const comparable = (r: RunResult) =>
      numbersOf(r.metrics).map(({ metrics: { 'icrl/agent_latency_ms': _latency, ...rest }, ...record }) => ({
        ...record,
        metrics: rest,
      }));
    expect(comparable(resumed)).toEqual(comparable(whole!).slice(10));
  }, 30_000);

  it('with no memory the same graph does not learn (the rise comes from the context)', async () => {
    const graph = withAgentParams(template, { baseUrl: server.baseUrl, memoryBest: 0, memoryRecent: 0 });
    const result = await executeRun({
      graph,
      registry: createRegistry(),
      seed: 1,
      backend: 'wasm',
      iterations: 10,
    });
    expect(result.status).toBe('finished');
    const final = result.metrics.at(-1)!.metrics;
    console.log(`no memory, seed 1: held-out success ${final['icrl/heldout_success'].toFixed(2)}`);
    expect(final['icrl/heldout_success']).toBeLessThanOrEqual(0.3);
  }, 30_000);

  it('a dead endpoint fails the run at build time, naming the node and baseUrl', async () => {
    const port = await deadPort();
    const baseUrl = `http://127.0.0.1:${port}/v1`;
    const graph = withAgentParams(template, { baseUrl });
    const result = await executeRun({ graph, registry: createRegistry(), backend: 'wasm' });
    expect(result.status).toBe('failed');
    expect(result.metrics).toEqual([]);
    expect(result.error?.nodeId).toBe('agent');
    expect(result.error?.field).toBe('baseUrl');
    expect(result.error?.message).toContain(`no server answered at ${baseUrl}`);
    expect(result.error?.message).toContain('ollama serve');
  }, 30_000);
});
