import { z } from 'zod';
import type { TextTurnSample } from '../../src-main/engine/events.ts';
import { defineNode, NodeError } from '../../src-main/engine/node-api.ts';
import { Rng } from '../../src-main/engine/rng.ts';
import type {
  Split,
  TextDemonstration,
  TextEnv,
  TextEpisode,
  TextProblem,
  TextStepResult,
} from '../text-contracts.ts';
import { turnBasedEpisode } from './turn-episode.ts';

export interface CalculatorOptions {
  digitsA: number;
  digitsB: number;
  operation: '*' | '+' | '-';
  maxTurns: number;
  toolEnabled: boolean;
  toolCallReward: number;
  flawedFraction: number;
  testSeed: number;
}

const CALL = /^<calc>(\d{1,9})([*+-])(\d{1,9})<\/calc>$/;
const ANSWER = /^<answer>(-?\d{1,18})<\/answer>$/;
export const FORMAT_ERROR_REPLY = '!format\n';
export const NO_TOOL_REPLY = '!no tool\n';

/** Arithmetic the model cannot do in its head, with a calculator it may call. */
export class CalculatorToolEnv implements TextEnv {
  readonly stop = ['</calc>', '</answer>'];
  readonly maxTurns: number;
  private testSet: TextProblem[] = [];
  private readonly testKeys = new Set<string>();

  constructor(
    readonly nodeId: string,
    readonly o: CalculatorOptions,
  ) {
    this.maxTurns = o.maxTurns;
  }

  private operands(rng: Rng): [number, number] {
    const draw = (digits: number) => {
      const low = 10 ** (digits - 1);
      return low + rng.int(9 * low);
    };
    return [draw(this.o.digitsA), draw(this.o.digitsB)];
  }

  private make(a: number, b: number, id: string): TextProblem {
    const expression = `${a}${this.o.operation}${b}`;
    return { id, prompt: `Q ${expression}\n`, answer: String(evaluate(a, this.o.operation, b)) };
  }

  /** The held-out set: the first `count` problems of the test seed's stream (a fixed, growing list). */
  private test(count: number): TextProblem[] {
    if (this.testSet.length < count) {
      const rng = new Rng(this.o.testSeed);
      const out: TextProblem[] = [];
      while (out.length < count) {
        const [a, b] = this.operands(rng);
        out.push(this.make(a, b, `test-${out.length}`));
      }
      this.testSet = out;
      this.testKeys.clear();
      for (const p of out) this.testKeys.add(p.prompt);
    }
    return this.testSet.slice(0, count);
  }

  problems(count: number, split: Split, rng: Rng): TextProblem[] {
    if (split === 'test') return this.test(count);
    if (this.testSet.length === 0) this.test(200);
    const out: TextProblem[] = [];
    while (out.length < count) {
      const [a, b] = this.operands(rng);
      const problem = this.make(a, b, `train-${a}${this.o.operation}${b}`);
      // Training never sees a held-out question.
      if (!this.testKeys.has(problem.prompt)) out.push(problem);
    }
    return out;
  }

  start(problem: TextProblem): TextEpisode {
    const o = this.o;
    return turnBasedEpisode('calculator', problem, o.maxTurns, (agentText, last) => {
      const call = CALL.exec(agentText);
      const answer = ANSWER.exec(agentText);
      let result: TextStepResult;
      if (answer) {
        const success = answer[1] === problem.answer;
        const outcome = success ? 1 : 0;
        result = { reward: outcome, outcome, done: true, success };
      } else if (call && o.toolEnabled) {
        const value = evaluate(Number(call[1]), call[2] as CalculatorOptions['operation'], Number(call[3]));
        result = {
          reply: `=${value}\n`,
          reward: o.toolCallReward,
          done: last,
          toolCall: true,
          ...(last ? { success: false, outcome: 0 } : {}),
        };
      } else {
        result = {
          reply: call ? NO_TOOL_REPLY : FORMAT_ERROR_REPLY,
          reward: 0,
          done: last,
          formatError: true,
          ...(last ? { success: false, outcome: 0 } : {}),
        };
      }
      return result;
    });
  }

  /**
   * Worked transcripts: call the calculator with the question, then answer with its result (or, without
   * the tool, answer at once). A `flawedFraction` of them carry one of three mistakes, in turn: answering
   * without the tool (a wrong guess), a typo in the calculator call, or a miscopied answer.
   */
  demonstrations(count: number, rng: Rng): TextDemonstration[] {
    const out: TextDemonstration[] = [];
    for (let i = 0; i < count; i++) {
      const [problem] = this.problems(1, 'train', rng);
      const flawed = rng.float() < this.o.flawedFraction;
      const kind = flawed ? rng.int(3) : -1;
      const turns: TextTurnSample[] = [{ role: 'prompt', text: problem.prompt }];
      const expression = problem.prompt.slice(2, -1);
      if (!this.o.toolEnabled || kind === 0) {
        const guess = flawed ? changeOneDigit(problem.answer, rng) : problem.answer;
        turns.push({ role: 'agent', text: `<answer>${guess}</answer>` });
      } else {
        const call = kind === 1 ? changeOneDigit(expression, rng) : expression;
        const m = /^(\d+)([*+-])(\d+)$/.exec(call)!;
        const value = String(evaluate(Number(m[1]), m[2] as CalculatorOptions['operation'], Number(m[3])));
        const answer = kind === 2 ? changeOneDigit(value, rng) : value;
        turns.push({ role: 'agent', text: `<calc>${call}</calc>` });
        turns.push({ role: 'tool', text: `=${value}\n` });
        turns.push({ role: 'agent', text: `<answer>${answer}</answer>` });
      }
      out.push({ problem, turns, flawed });
    }
    return out;
  }
}

function evaluate(a: number, op: CalculatorOptions['operation'], b: number): number {
  return op === '*' ? a * b : op === '+' ? a + b : a - b;
}

/** The same text with one digit replaced by a different digit (the leading digit never becomes 0). */
export function changeOneDigit(text: string, rng: Rng): string {
  const positions: number[] = [];
  for (let i = 0; i < text.length; i++) if (text[i] >= '0' && text[i] <= '9') positions.push(i);
  const at = positions[rng.int(positions.length)];
  const leading = at === 0 || !(text[at - 1] >= '0' && text[at - 1] <= '9');
  let digit: string;
  do digit = String(rng.int(10));
  while (digit === text[at] || (leading && digit === '0'));
  return text.slice(0, at) + digit + text.slice(at + 1);
}

const params = z.object({
  digitsA: z.number().int().min(1).max(6).default(3).describe('Digits of the first operand'),
  digitsB: z.number().int().min(1).max(6).default(2).describe('Digits of the second operand'),
  operation: z.enum(['*', '+', '-']).default('*').describe('The arithmetic operation asked'),
  maxTurns: z.number().int().min(1).max(16).default(3).describe('Agent turns per episode at most (K)'),
  toolEnabled: z
    .boolean()
    .default(true)
    .describe('The calculator answers <calc> calls (off: the agent must answer from its head)'),
  toolCallReward: z
    .number()
    .min(0)
    .max(1)
    .default(0)
    .describe('Turn-level reward for a well-formed calculator call (0 = outcome reward only)'),
  flawedFraction: z
    .number()
    .min(0)
    .max(1)
    .default(0.3)
    .describe('Share of demonstrations that contain a mistake'),
  testSeed: z
    .number()
    .int()
    .min(0)
    .max(2 ** 31)
    .default(20250101)
    .describe('Seed of the held-out test split (training problems never repeat one)'),
});

export default defineNode({
  type: 'env.calculator-tool',
  family: 'environment',
  title: 'Calculator tool use',
  summary: 'Multi-digit arithmetic with a calculator tool: call it, then answer exactly.',
  doc: `A multi-turn, tool-using text environment in the spirit of Toolformer (Schick et al. 2023) and the
tool-use RL environments of veRL/ReTool: questions the model cannot answer from its head (by default a
3-digit x 2-digit product), and a calculator it can call.

Transcript grammar (one agent turn ends at \`</calc>\` or \`</answer>\`):

  Q 347*28                      prompt
  <calc>347*28</calc>           agent: tool call  (a op b, op in * + -)
  =9716                         tool reply
  <answer>9716</answer>         agent: final answer, ends the episode

Reward: 1 for the exact answer, 0 otherwise (the outcome), plus \`toolCallReward\` for each well-formed
call (turn-level shaping, as in MT-GRPO, Zeng et al. 2025, arXiv 2505.11821). The episode also ends after
\`maxTurns\` agent turns. Anything that fits neither form is answered \`!format\` and the episode goes on:
malformed output is part of normal life, never a crash. With \`toolEnabled\` off the calculator answers
\`!no tool\` and the agent must compute the result itself (the baseline that shows what the tool is worth).

Splits: the held-out test problems are the first N of a stream seeded by \`testSeed\`; training problems
come from the rollout's stream and never repeat a held-out question.

Demonstrations (for SFT): call the calculator with the question, then copy its result into the answer. A
\`flawedFraction\` of them contain one mistake, spread evenly over three kinds: answering without the tool
(a wrong guess), a typo in the call (so the tool's result is wrong), or a miscopied answer.`,
  version: 1,
  inputs: [],
  outputs: [
    {
      name: 'env',
      type: 'Env',
      title: 'Environment',
      provides: { observation: 'text', action: 'text' },
    },
  ],
  params,
  keyParams: ['digitsA', 'digitsB', 'maxTurns', 'toolEnabled'],
  create(p, ctx) {
    if (p.operation === '-' && p.digitsA < p.digitsB) {
      throw new NodeError(ctx.nodeId, 'subtraction needs digitsA >= digitsB', 'digitsB');
    }
    const env = new CalculatorToolEnv(ctx.nodeId, p);
    return { components: { env } };
  },
});
