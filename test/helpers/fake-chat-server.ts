/**
 * A local server speaking the OpenAI chat-completions protocol, with a scripted, deterministic "model"
 * for calculator questions that really uses its context:
 * - after a tool reply `=v` it answers `<answer>v</answer>` (it can copy);
 * - a question whose answer its memory holds (a solved episode, or hindsight "the correct answer was N")
 *   is answered from memory;
 * - otherwise it calls the calculator with probability 0.1 + 0.9 x (share of the remembered episodes that
 *   are solved tool-call demonstrations), else it guesses from its head (rounds the first operand to tens,
 *   which is wrong unless it ends in 0): in-context learning raises its success as good episodes fill the
 *   memory, and with no memory it stays near 10%.
 * Draws come from the request's `seed` and the transcript, so the same request gets the same answer.
 * Like real servers it leaves the matched stop string out of the text. Modes: `fail500` and `rateLimit`
 * answer the next N chat requests with HTTP 500 / 429, `hang` never answers, `requireKey` answers 401 to
 * a wrong Authorization header.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hashString } from '../../src-main/engine/rng.ts';

export interface FakeChatModes {
  fail500: number;
  rateLimit: number;
  hang: boolean;
  requireKey?: string;
}

export interface RecordedRequest {
  method: string;
  url: string;
  authorization?: string;
  body?: {
    model: string;
    messages: Array<{ role: string; content: string }>;
    stop?: string[];
    seed?: number;
  };
}

export interface FakeChatServer {
  baseUrl: string;
  modes: FakeChatModes;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

const QUESTION = /^Q (\d+)([*+-])(\d+)$/m;

function evaluate(a: number, op: string, b: number): number {
  return op === '*' ? a * b : op === '+' ? a + b : a - b;
}

/** A uniform draw in [0, 1) from the request seed and a text. */
function draw(seed: number, text: string): number {
  return (hashString(`${seed}|${text}`) >>> 8) / 2 ** 24;
}

/** The scripted model: the next turn for a transcript, given the system message holding the memory. */
export function scriptedTurn(system: string, transcript: string, seed: number): string {
  const q = QUESTION.exec(transcript);
  if (!q) return 'I do not understand the task.';
  const [, a, op, b] = q;
  // The transcript ends in the calculator's reply (`<calc>347*28</calc>=9716`): copy it.
  const toolReply = /=(-?\d+)\s*$/.exec(transcript);
  if (toolReply) return `<answer>${toolReply[1]}</answer>`;

  const episodes = system.split(/^### Episode /m).slice(1);
  const question = `Q ${a}${op}${b}`;
  for (const e of episodes) {
    if (!e.includes(`${question}\n`)) continue;
    const hindsight = /the correct answer was (-?\d+)/.exec(e);
    if (hindsight) return `<answer>${hindsight[1]}</answer>`;
    const solved = /\(solved\)[\s\S]*<answer>(-?\d+)<\/answer>/.exec(e);
    if (solved) return `<answer>${solved[1]}</answer>`;
  }
  const demonstrations = episodes.filter((e) => /\(solved\)/.test(e) && e.includes('<calc>')).length;
  const pTool = 0.1 + (0.9 * demonstrations) / Math.max(1, episodes.length);
  if (draw(seed, transcript) < pTool) return `<calc>${a}${op}${b}</calc>`;
  const guess = evaluate(Math.round(Number(a) / 10) * 10, op, Number(b));
  return `<answer>${guess}</answer>`;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startFakeChatServer(modes: Partial<FakeChatModes> = {}): Promise<FakeChatServer> {
  const state: FakeChatModes = { fail500: 0, rateLimit: 0, hang: false, ...modes };
  const requests: RecordedRequest[] = [];
  const server: Server = createServer(async (req, res) => {
    const raw = await readBody(req);
    const record: RecordedRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      authorization: req.headers.authorization,
      body: raw ? JSON.parse(raw) : undefined,
    };
    requests.push(record);
    const send = (status: number, json: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(json));
    };
    if (state.requireKey !== undefined && req.headers.authorization !== `Bearer ${state.requireKey}`) {
      send(401, { error: { message: 'invalid api key' } });
      return;
    }
    if (req.method === 'GET' && req.url === '/v1/models') {
      send(200, { object: 'list', data: [{ id: 'scripted', object: 'model' }] });
      return;
    }
    if (req.method !== 'POST' || req.url !== '/v1/chat/completions' || !record.body) {
      send(404, { error: { message: `no route ${req.method} ${req.url}` } });
      return;
    }
    if (state.hang) return;
    if (state.fail500 > 0) {
      state.fail500 -= 1;
      send(500, { error: { message: 'scripted failure' } });
      return;
    }
    if (state.rateLimit > 0) {
      state.rateLimit -= 1;
      send(429, { error: { message: 'slow down' } });
      return;
    }
    const messages = record.body.messages;
    const system = messages.find((m) => m.role === 'system')?.content ?? '';
    const user = messages.filter((m) => m.role === 'user').at(-1)?.content ?? '';
    let text = scriptedTurn(system, user, record.body.seed ?? 0);
    let finish = 'stop';
    for (const stop of record.body.stop ?? []) {
      const at = text.indexOf(stop);
      if (at >= 0) {
        text = text.slice(0, at);
        finish = 'stop';
      }
    }
    send(200, {
      id: `chatcmpl-${requests.length}`,
      object: 'chat.completion',
      model: record.body.model,
      choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: finish }],
      usage: {
        prompt_tokens: Math.ceil((system.length + user.length) / 4),
        completion_tokens: Math.ceil(text.length / 4),
      },
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    modes: state,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
