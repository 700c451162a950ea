import { z } from 'zod';
import type { TextTurnSample } from '../../src-main/engine/events.ts';
import { defineNode, type JsonValue, NodeError } from '../../src-main/engine/node-api.ts';
import type { Rng } from '../../src-main/engine/rng.ts';
import type {
  EpisodeFeedback,
  GenerationOptions,
  TextCompletion,
  TextPolicy,
  TextProblem,
} from '../text-contracts.ts';

/** One remembered episode: what the agent did, what it earned, and what it should have done. */
export interface MemoryEntry {
  /** Order of observation (chronological numbering shown in the prompt). */
  order: number;
  problem: TextProblem;
  turns: Array<Pick<TextTurnSample, 'role' | 'text'>>;
  reward: number;
  success: boolean;
  feedback?: string;
}

/**
 * The in-context memory: the `best` highest-reward episodes (ties: the most recent) and the `recent`
 * latest ones, shown together in chronological order. An episode told twice (by the rollout, then by a
 * trainer with hindsight feedback) is updated in place, matched by its transcript array.
 */
export class EpisodeMemory {
  private recentEntries: MemoryEntry[] = [];
  private bestEntries: MemoryEntry[] = [];
  private readonly seen = new WeakMap<object, MemoryEntry>();
  private next = 0;

  constructor(
    readonly bestSize: number,
    readonly recentSize: number,
  ) {}

  observe(episodes: EpisodeFeedback[]): void {
    for (const e of episodes) {
      const known = this.seen.get(e.turns);
      if (known) {
        known.reward = e.reward;
        known.success = e.success;
        if (e.feedback !== undefined) known.feedback = e.feedback;
        this.rankBest();
        continue;
      }
      const entry: MemoryEntry = {
        order: this.next++,
        problem: { ...e.problem },
        turns: e.turns.map((t) => ({ role: t.role, text: t.text })),
        reward: e.reward,
        success: e.success,
        ...(e.feedback !== undefined ? { feedback: e.feedback } : {}),
      };
      this.seen.set(e.turns, entry);
      if (this.recentSize > 0) {
        this.recentEntries.push(entry);
        if (this.recentEntries.length > this.recentSize) this.recentEntries.shift();
      }
      if (this.bestSize > 0) {
        this.bestEntries.push(entry);
        this.rankBest();
      }
    }
  }

  private rankBest(): void {
    this.bestEntries.sort((a, b) => b.reward - a.reward || b.order - a.order);
    if (this.bestEntries.length > this.bestSize) this.bestEntries.length = this.bestSize;
  }

  /** The episodes placed in the prompt, oldest first. */
  shown(): MemoryEntry[] {
    const byOrder = new Map<number, MemoryEntry>();
    for (const e of [...this.bestEntries, ...this.recentEntries]) byOrder.set(e.order, e);
    return [...byOrder.values()].sort((a, b) => a.order - b.order);
  }

  save(): JsonValue {
    const entries = new Map<number, MemoryEntry>();
    for (const e of [...this.bestEntries, ...this.recentEntries]) entries.set(e.order, e);
    return {
      next: this.next,
      entries: [...entries.values()] as unknown as JsonValue,
      best: this.bestEntries.map((e) => e.order),
      recent: this.recentEntries.map((e) => e.order),
    };
  }

  load(json: JsonValue | undefined): void {
    const state = json as
      | { next: number; entries: MemoryEntry[]; best: number[]; recent: number[] }
      | undefined;
    if (!state) return;
    const byOrder = new Map(state.entries.map((e) => [e.order, e]));
    this.next = state.next;
    this.bestEntries = state.best.map((o) => byOrder.get(o)!);
    this.recentEntries = state.recent.map((o) => byOrder.get(o)!);
  }
}

/** One remembered episode as the model reads it. */
export function renderEpisode(entry: MemoryEntry): string {
  const outcome = entry.success ? 'solved' : 'failed';
  const lines = [`### Episode ${entry.order + 1} — reward ${round(entry.reward)} (${outcome})`];
  let transcript = '';
  for (const turn of entry.turns) {
    transcript += turn.text;
    if (!transcript.endsWith('\n')) transcript += '\n';
  }
  lines.push(transcript.trimEnd());
  if (entry.feedback) lines.push(`Hindsight: ${entry.feedback}`);
  return lines.join('\n');
}

export const MEMORY_HEADER =
  'Earlier episodes with the reward each earned (higher is better). Do again what earned reward; avoid what failed.';

export interface ChatMessage {
  role: 'system' | 'user';
  content: string;
}

/** The chat messages for one context: instructions and memory as the system message, the transcript as the user's. */
export function buildMessages(systemPrompt: string, memory: MemoryEntry[], context: string): ChatMessage[] {
  const parts = [systemPrompt.trim()];
  if (memory.length > 0) parts.push([MEMORY_HEADER, ...memory.map(renderEpisode)].join('\n\n'));
  return [
    { role: 'system', content: parts.filter(Boolean).join('\n\n') },
    { role: 'user', content: context },
  ];
}

/**
 * OpenAI-style servers leave the matched stop string out of the returned text, but text environments
 * parse complete turns (`<calc>..</calc>`). Cut at the first stop string the server did not honour, or put
 * back the one that was cut: the closing tag whose opening tag is left open, or the only stop string.
 */
export function restoreStop(text: string, stops: string[], finish: 'stop' | 'length'): string {
  let cut = -1;
  let cutStop = '';
  for (const stop of stops) {
    const at = text.indexOf(stop);
    if (at >= 0 && (cut < 0 || at < cut)) {
      cut = at;
      cutStop = stop;
    }
  }
  if (cut >= 0) return text.slice(0, cut + cutStop.length);
  if (finish !== 'stop' || stops.length === 0) return text;
  let best = '';
  let bestAt = -1;
  for (const stop of stops) {
    const open = /^<\/(.+)>$/.exec(stop);
    if (!open) continue;
    const at = text.lastIndexOf(`<${open[1]}>`);
    if (at > bestAt) {
      bestAt = at;
      best = stop;
    }
  }
  if (bestAt >= 0) return text + best;
  return stops.length === 1 ? text + stops[0] : text;
}

export interface RetryOptions {
  retries: number;
  backoffMs: number;
  maxBackoffMs: number;
}

/**
 * Wait before retry k (0-based): min(maxBackoff, backoff x 2^k) scaled by a jitter factor in [0.5, 1)
 * ("equal jitter", so concurrent clients spread out), u drawn in advance from the node's stream.
 */
export function backoffDelay(
  k: number,
  u: number,
  o: Pick<RetryOptions, 'backoffMs' | 'maxBackoffMs'>,
): number {
  return Math.min(o.maxBackoffMs, o.backoffMs * 2 ** k) * (0.5 + 0.5 * u);
}

export interface RemoteOptions extends RetryOptions {
  baseUrl: string;
  model: string;
  temperature: number;
  topP: number;
  maxTokens: number;
  timeoutMs: number;
  concurrency: number;
  systemPrompt: string;
}

export interface RemoteStats {
  requests: number;
  retries: number;
  failures: number;
  /** Requests that came back with a usable answer (the latency mean is over these). */
  answered: number;
  latencyMsTotal: number;
  promptTokens: number;
  completionTokens: number;
}

interface ChatResponse {
  choices?: Array<{ message?: { content?: string | null }; finish_reason?: string | null }>;
  usage?: { prompt_tokens?: number; completion_tokens?: number };
}

/** Why a request failed, kept apart so the last failure after all retries names the right field. */
class RequestFailure extends Error {
  constructor(
    message: string,
    readonly field: string,
    readonly retryable: boolean,
    readonly retryAfterMs = 0,
  ) {
    super(message);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function startServerHint(baseUrl: string, model: string): string {
  return `no server answered at ${baseUrl} — start one, e.g. \`ollama serve\` and \`ollama pull ${model}\` (Ollama serves http://127.0.0.1:11434/v1), or llama.cpp's \`llama-server -m model.gguf --port 8080\` (http://127.0.0.1:8080/v1), or set baseUrl to a running OpenAI-compatible server`;
}

/** A TextPolicy that asks an OpenAI-compatible chat-completions endpoint for each turn. */
export class RemoteChatPolicy implements TextPolicy {
  readonly trainable = false;
  readonly stats: RemoteStats = {
    requests: 0,
    retries: 0,
    failures: 0,
    answered: 0,
    latencyMsTotal: 0,
    promptTokens: 0,
    completionTokens: 0,
  };
  private readonly base: string;

  constructor(
    readonly nodeId: string,
    readonly o: RemoteOptions,
    readonly memory: EpisodeMemory,
    /** The key itself lives only here, read from the environment at creation; it is never saved. */
    private readonly apiKey: string | undefined,
  ) {
    this.base = o.baseUrl.replace(/\/+$/, '');
  }

  private headers(): Record<string, string> {
    const h: Record<string, string> = { 'content-type': 'application/json' };
    if (this.apiKey) h.authorization = `Bearer ${this.apiKey}`;
    return h;
  }

  /** One HTTP exchange with a timeout; throws RequestFailure. */
  private async exchange(path: string, init: { method: string; body?: string }): Promise<Response> {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), this.o.timeoutMs);
    try {
      return await fetch(`${this.base}${path}`, { ...init, headers: this.headers(), signal: abort.signal });
    } catch (error) {
      if (abort.signal.aborted) {
        throw new RequestFailure(
          `${this.base} did not answer within ${this.o.timeoutMs} ms; raise timeoutMs for a slow model, or check the server`,
          'timeoutMs',
          true,
        );
      }
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const detail = cause?.code ?? cause?.message ?? (error as Error).message;
      throw new RequestFailure(`${startServerHint(this.base, this.o.model)} (${detail})`, 'baseUrl', true);
    } finally {
      clearTimeout(timer);
    }
  }

  private async httpFailure(response: Response): Promise<RequestFailure> {
    const body = (await response.text().catch(() => '')).slice(0, 200).replace(/\s+/g, ' ');
    const status = response.status;
    const text = `HTTP ${status} from ${this.base}${body ? `: ${body}` : ''}`;
    if (status === 429) {
      const after = Number(response.headers.get('retry-after'));
      return new RequestFailure(
        `${text} (rate limited)`,
        'concurrency',
        true,
        Number.isFinite(after) ? after * 1000 : 0,
      );
    }
    if (status >= 500) return new RequestFailure(text, 'baseUrl', true);
    if (status === 401 || status === 403) {
      return new RequestFailure(
        `${text}: the server refused the API key (set apiKeyEnv to the name of the environment variable that holds it)`,
        'apiKeyEnv',
        false,
      );
    }
    if (status === 404) {
      return new RequestFailure(
        `${text}: is the model '${this.o.model}' available (e.g. \`ollama pull ${this.o.model}\`) and does baseUrl end in /v1?`,
        'model',
        false,
      );
    }
    return new RequestFailure(text, 'baseUrl', false);
  }

  /** At creation: is anything answering at baseUrl? One try, so a dead endpoint fails the run at once. */
  async check(log: (message: string) => void): Promise<void> {
    let response: Response;
    try {
      response = await this.exchange('/models', { method: 'GET' });
    } catch (error) {
      const f = error as RequestFailure;
      throw new NodeError(this.nodeId, f.message, f.field);
    }
    if (response.status === 401 || response.status === 403) {
      const f = await this.httpFailure(response);
      throw new NodeError(this.nodeId, f.message, f.field);
    }
    if (!response.ok) {
      // Some servers have no model list; they answered, which is what this check is for.
      await response.text().catch(() => '');
      return;
    }
    const list = (await response.json().catch(() => undefined)) as
      | { data?: Array<{ id?: string }> }
      | undefined;
    const ids = (list?.data ?? []).map((m) => m.id).filter((id): id is string => typeof id === 'string');
    if (ids.length > 0 && !ids.includes(this.o.model)) {
      log(
        `model '${this.o.model}' is not among the server's models (${ids.slice(0, 8).join(', ')}); e.g. \`ollama pull ${this.o.model}\``,
      );
    }
  }

  /** One chat completion with retries; `jitter[k]` is the draw for retry k. */
  async complete(
    context: string,
    options: GenerationOptions,
    seed: number,
    jitter: number[],
  ): Promise<TextCompletion> {
    const body = JSON.stringify({
      model: this.o.model,
      messages: buildMessages(this.o.systemPrompt, this.memory.shown(), context),
      temperature: this.o.temperature,
      top_p: this.o.topP,
      max_tokens: this.o.maxTokens,
      // OpenAI accepts at most 4 stop strings.
      ...(options.stop.length ? { stop: options.stop.slice(0, 4) } : {}),
      seed,
    });
    let failure: RequestFailure | undefined;
    for (let attempt = 0; attempt <= this.o.retries; attempt++) {
      if (attempt > 0) {
        this.stats.retries += 1;
        await sleep(
          Math.max(failure?.retryAfterMs ?? 0, backoffDelay(attempt - 1, jitter[attempt - 1], this.o)),
        );
      }
      this.stats.requests += 1;
      const started = performance.now();
      try {
        const response = await this.exchange('/chat/completions', { method: 'POST', body });
        if (!response.ok) throw await this.httpFailure(response);
        const json = (await response.json().catch(() => undefined)) as ChatResponse | undefined;
        this.stats.latencyMsTotal += performance.now() - started;
        const choice = json?.choices?.[0];
        const content = choice?.message?.content;
        if (typeof content !== 'string') {
          throw new RequestFailure(
            `${this.base} answered without choices[0].message.content: is it an OpenAI-compatible chat-completions endpoint?`,
            'baseUrl',
            false,
          );
        }
        this.stats.answered += 1;
        this.stats.promptTokens += json?.usage?.prompt_tokens ?? 0;
        this.stats.completionTokens += json?.usage?.completion_tokens ?? 0;
        const finish = choice?.finish_reason === 'length' ? 'length' : 'stop';
        return { text: restoreStop(content, options.stop, finish), finish };
      } catch (error) {
        if (!(error instanceof RequestFailure)) throw error;
        failure = error;
        if (!error.retryable) break;
      }
    }
    this.stats.failures += 1;
    const tries = this.o.retries + 1;
    const f = failure!;
    throw new NodeError(this.nodeId, f.retryable ? `${f.message} (${tries} tries)` : f.message, f.field);
  }

  async generate(contexts: string[], options: GenerationOptions, rng: Rng): Promise<TextCompletion[]> {
    // Every draw is made before any request goes out, so answers arriving in any order change nothing.
    const plans = contexts.map(() => ({
      seed: rng.int(2 ** 31),
      jitter: Array.from({ length: this.o.retries }, () => rng.float()),
    }));
    const out: TextCompletion[] = new Array(contexts.length);
    let nextIndex = 0;
    const worker = async () => {
      while (nextIndex < contexts.length) {
        const i = nextIndex++;
        out[i] = await this.complete(contexts[i], options, plans[i].seed, plans[i].jitter);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.o.concurrency, contexts.length) }, worker));
    return out;
  }

  observeEpisodes(episodes: EpisodeFeedback[]): void {
    this.memory.observe(episodes);
  }

  metrics(): Record<string, number> {
    const s = this.stats;
    return {
      requests: s.requests,
      retries: s.retries,
      failures: s.failures,
      latency_ms: s.latencyMsTotal / Math.max(1, s.answered),
      prompt_tokens: s.promptTokens,
      completion_tokens: s.completionTokens,
      memory_size: this.memory.shown().length,
    };
  }
}

const round = (x: number) => Math.round(x * 1000) / 1000;

export const DEFAULT_SYSTEM_PROMPT = `You write the next turn of a transcript. The user message is the transcript so far: a task, then your earlier turns and the replies to them. Reply with your next turn only, nothing else.
Tools: <calc>347*28</calc> asks a calculator, which replies =9716. <answer>9716</answer> gives your final answer and ends the episode.`;

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

const params = z.object({
  baseUrl: z
    .string()
    .url()
    .default('http://127.0.0.1:11434/v1')
    .describe(
      'OpenAI-compatible API root; requests go to {baseUrl}/chat/completions (Ollama: http://127.0.0.1:11434/v1)',
    ),
  model: z
    .string()
    .min(1)
    .default('qwen2.5:0.5b')
    .describe('Model name the server knows (e.g. qwen2.5:0.5b for Ollama)'),
  apiKeyEnv: z
    .string()
    .max(128)
    .default('')
    .describe(
      'NAME of the environment variable holding the API key (empty = no key); the key never enters the graph',
    ),
  temperature: z.number().min(0).max(2).default(0.7).describe('Sampling temperature sent to the server'),
  topP: z.number().gt(0).max(1).default(1).describe('Nucleus sampling mass (top_p) sent to the server'),
  maxTokens: z
    .number()
    .int()
    .min(1)
    .max(32_768)
    .default(64)
    .describe('Completion tokens per turn at most (max_tokens)'),
  timeoutMs: z
    .number()
    .int()
    .min(100)
    .max(600_000)
    .default(60_000)
    .describe('Per-request timeout in milliseconds'),
  retries: z
    .number()
    .int()
    .min(0)
    .max(10)
    .default(3)
    .describe('Retries after a 429, a 5xx, a timeout or a network error'),
  backoffMs: z
    .number()
    .min(0)
    .max(60_000)
    .default(500)
    .describe('First retry waits about this long; each further retry doubles it'),
  maxBackoffMs: z.number().min(0).max(600_000).default(8000).describe('Longest wait between retries'),
  concurrency: z.number().int().min(1).max(256).default(4).describe('Requests in flight at once'),
  memoryBest: z
    .number()
    .int()
    .min(0)
    .max(64)
    .default(4)
    .describe('Highest-reward earlier episodes shown in the prompt'),
  memoryRecent: z
    .number()
    .int()
    .min(0)
    .max(64)
    .default(4)
    .describe('Most recent earlier episodes shown in the prompt'),
  systemPrompt: z
    .string()
    .max(20_000)
    .default(DEFAULT_SYSTEM_PROMPT)
    .describe('Instructions placed before the memory'),
  checkAtStart: z
    .boolean()
    .default(true)
    .describe('Ask the server for its models when the run starts, so a dead endpoint fails before iterating'),
});

export default defineNode({
  type: 'agent.llm-remote',
  family: 'agent',
  title: 'Remote LLM agent (in-context RL)',
  summary: 'Any OpenAI-compatible chat endpoint; learns in context from a memory of rewarded episodes.',
  doc: `A text policy backed by an OpenAI-compatible chat-completions endpoint (a local Ollama or llama.cpp
server, or a hosted API): each agent turn is one \`POST {baseUrl}/chat/completions\` with the node's
temperature, top_p, max_tokens and the environment's stop strings (the rollout's own sampling settings do
not apply: the server samples). Contexts of a batch are sent concurrently, at most \`concurrency\` at a
time. No gradients flow (\`trainable: false\`): it learns **in context**.

**In-context RL.** The weights are frozen; what changes is the prompt. A memory of earlier episodes with
their rewards is placed in the system message: the \`memoryBest\` highest-reward episodes (the agent's
best demonstrations so far) and the \`memoryRecent\` latest ones, failures included with hindsight
feedback such as "the correct answer was 9716", told back by \`trainer.in-context\`. The policy at
iteration i is pi(a | s, M_i) with M_i the memory: improving M_i improves the policy, as in Algorithm
Distillation (Laskin et al. 2022, "In-context Reinforcement Learning with Algorithm Distillation",
arXiv 2210.14215), verbal reinforcement with reflections in Reflexion (Shinn et al. 2023, arXiv
2303.11366), and in-context exploration, which Krishnamurthy et al. 2024 ("Can large language models
explore in-context?", arXiv 2403.15371) found works best with an externally summarised history, the
reason rewards and outcomes are stated with each remembered episode. The memory goes into checkpoints.

**Robustness.** Each request has an AbortController timeout (\`timeoutMs\`). 429, 5xx, timeouts and
network errors are retried up to \`retries\` times after min(maxBackoff, backoff x 2^k) x (0.5 + 0.5 u)
(exponential backoff with jitter; u is drawn from the node's seeded stream before the batch is sent, so
runs stay reproducible; a 429's Retry-After is honoured). The per-request \`seed\` sent to the server
comes from the same stream. A run checks the endpoint when it starts (GET {baseUrl}/models) and fails
before the first iteration, naming \`baseUrl\`, when nothing answers.

**The API key** is never stored in the graph, its exports or its checkpoints: \`apiKeyEnv\` holds the NAME of
an environment variable (e.g. OPENAI_API_KEY), read when the run starts.

Servers drop the matched stop string from the text; it is put back (the closing tag left open), so the
environment sees whole turns. Metrics (published by \`trainer.in-context\`): requests, retries, failures,
mean latency, prompt and completion tokens (the server's \`usage\`), episodes in the prompt.`,
  version: 1,
  inputs: [],
  outputs: [
    {
      name: 'policy',
      type: 'Policy',
      title: 'Policy',
      provides: { action: 'text', learns: 'in-context' },
      doc: 'A text policy that learns in context (TextPolicy with observeEpisodes).',
    },
  ],
  params,
  keyParams: ['baseUrl', 'model', 'temperature', 'memoryBest'],
  async create(p, ctx) {
    if (p.apiKeyEnv && !ENV_NAME.test(p.apiKeyEnv)) {
      throw new NodeError(
        ctx.nodeId,
        'put the NAME of an environment variable here (e.g. OPENAI_API_KEY), never the key itself',
        'apiKeyEnv',
      );
    }
    let apiKey: string | undefined;
    if (p.apiKeyEnv) {
      apiKey = typeof process === 'undefined' ? undefined : process.env[p.apiKeyEnv];
      if (!apiKey) {
        throw new NodeError(ctx.nodeId, `the environment variable ${p.apiKeyEnv} is not set`, 'apiKeyEnv');
      }
    }
    const memory = new EpisodeMemory(p.memoryBest, p.memoryRecent);
    const policy = new RemoteChatPolicy(ctx.nodeId, p, memory, apiKey);
    if (p.checkAtStart) await policy.check((message) => ctx.log('warn', message));
    return {
      components: { policy },
      // Counters go with the memory so a resumed run keeps counting where it stopped.
      saveState: () => ({ json: { memory: memory.save(), stats: { ...policy.stats } } }),
      loadState(state) {
        const json = state.json as { memory?: JsonValue; stats?: RemoteStats } | undefined;
        memory.load(json?.memory);
        if (json?.stats) Object.assign(policy.stats, json.stats);
      },
    };
  },
});
