import { z } from 'zod';
import type { TextTurnSample } from '../../src-main/engine/events.ts';
import { defineNode } from '../../src-main/engine/node-api.ts';
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

export interface CountdownOptions {
  numbers: number;
  maxNumber: number;
  maxTurns: number;
  toolCallReward: number;
  /** Pay the check's turn reward only when it uses each given number exactly once (a candidate answer). */
  checkUsesNumbers?: boolean;
  formatReward: number;
  testSeed: number;
}

const ANSWER = /^<answer>([0-9+\-*/() ]{1,40})<\/answer>$/;
const CALL = /^<calc>([0-9+\-*/() ]{1,40})<\/calc>$/;
export const COUNTDOWN_FORMAT_ERROR = '!format\n';

/**
 * Evaluates an arithmetic expression of non-negative integers with + - * / and parentheses (exact
 * rationals are not needed: division must be exact or the expression is refused). Returns the value and
 * the numbers used, or undefined when it does not parse.
 */
export function evaluateExpression(text: string): { value: number; numbers: number[] } | undefined {
  if (/\d\s+\d/.test(text)) return undefined;
  const tokens = text.replace(/\s+/g, '').match(/\d+|[+\-*/()]/g);
  if (!tokens || tokens.join('') !== text.replace(/\s+/g, '')) return undefined;
  let pos = 0;
  const numbers: number[] = [];
  const expr = (): number | undefined => {
    let left = term();
    while (left !== undefined && (tokens[pos] === '+' || tokens[pos] === '-')) {
      const op = tokens[pos++];
      const right = term();
      if (right === undefined) return undefined;
      left = op === '+' ? left + right : left - right;
    }
    return left;
  };
  const term = (): number | undefined => {
    let left = factor();
    while (left !== undefined && (tokens[pos] === '*' || tokens[pos] === '/')) {
      const op = tokens[pos++];
      const right = factor();
      if (right === undefined) return undefined;
      if (op === '/') {
        if (right === 0 || left % right !== 0) return undefined;
        left = left / right;
      } else left = left * right;
    }
    return left;
  };
  const factor = (): number | undefined => {
    const t = tokens[pos];
    if (t === '(') {
      pos++;
      const v = expr();
      if (tokens[pos] !== ')') return undefined;
      pos++;
      return v;
    }
    if (t !== undefined && /^\d+$/.test(t)) {
      pos++;
      numbers.push(Number(t));
      return Number(t);
    }
    return undefined;
  };
  const value = expr();
  if (value === undefined || pos !== tokens.length) return undefined;
  return { value, numbers };
}

/** Uses every given number exactly once (as a multiset). */
export function usesEachOnce(used: number[], given: number[]): boolean {
  if (used.length !== given.length) return false;
  const a = [...used].sort((x, y) => x - y);
  const b = [...given].sort((x, y) => x - y);
  return a.every((x, i) => x === b[i]);
}

/** Countdown (TinyZero): reach a target with each number used once and + - * /. */
export class CountdownEnv implements TextEnv {
  readonly stop = ['</calc>', '</answer>'];
  readonly maxTurns: number;
  private testSet: TextProblem[] = [];

  constructor(
    readonly nodeId: string,
    readonly o: CountdownOptions,
  ) {
    this.maxTurns = o.maxTurns;
  }

  /** A solvable problem: random numbers, a random expression over them (left to right), its value. */
  private draw(rng: Rng, id: string): TextProblem & { solution: string } {
    for (;;) {
      const nums = Array.from({ length: this.o.numbers }, () => 1 + rng.int(this.o.maxNumber));
      const order = rng.permutation(nums.length);
      let expression = String(nums[order[0]]);
      let value = nums[order[0]];
      for (let k = 1; k < nums.length; k++) {
        const n = nums[order[k]];
        const op = ['+', '-', '*'][rng.int(3)];
        value = op === '+' ? value + n : op === '-' ? value - n : value * n;
        expression = k === 1 ? `${expression}${op}${n}` : `(${expression})${op}${n}`;
      }
      if (value <= 0 || value > 999) continue;
      return { id, prompt: `N ${nums.join(' ')} T ${value}\n`, answer: String(value), solution: expression };
    }
  }

  private parse(problem: TextProblem): { numbers: number[]; target: number } {
    const m = /^N ([\d ]+) T (\d+)\n$/.exec(problem.prompt);
    if (!m) throw new Error(`countdown: malformed problem ${JSON.stringify(problem.prompt)}`);
    return { numbers: m[1].split(' ').map(Number), target: Number(m[2]) };
  }

  problems(count: number, split: Split, rng: Rng): TextProblem[] {
    if (split === 'test') {
      if (this.testSet.length < count) {
        const r = new Rng(this.o.testSeed);
        this.testSet = Array.from({ length: count }, (_, i) => this.draw(r, `test-${i}`));
      }
      return this.testSet.slice(0, count).map(({ id, prompt, answer }) => ({ id, prompt, answer }));
    }
    const held = new Set(this.problems(Math.max(200, this.testSet.length), 'test', rng).map((p) => p.prompt));
    const out: TextProblem[] = [];
    while (out.length < count) {
      const p = this.draw(rng, `train-${out.length}`);
      if (!held.has(p.prompt)) out.push({ id: p.id, prompt: p.prompt, answer: p.answer });
    }
    return out;
  }

  start(problem: TextProblem): TextEpisode {
    const { numbers, target } = this.parse(problem);
    const o = this.o;
    return turnBasedEpisode('countdown', problem, o.maxTurns, (agentText, last) => {
      const answer = ANSWER.exec(agentText);
      const call = CALL.exec(agentText);
      let result: TextStepResult;
      if (answer) {
        const parsed = evaluateExpression(answer[1]);
        const wellFormed = parsed !== undefined && usesEachOnce(parsed.numbers, numbers);
        const success = wellFormed && parsed.value === target;
        // TinyZero: 1 for a correct equation, 0.1 for a well-formed one that misses, 0 otherwise.
        const outcome = success ? 1 : wellFormed ? o.formatReward : 0;
        result = { reward: outcome, outcome, done: true, success };
      } else if (call && evaluateExpression(call[1])) {
        const checked = evaluateExpression(call[1])!;
        const candidate = !o.checkUsesNumbers || usesEachOnce(checked.numbers, numbers);
        result = {
          reply: `=${checked.value}\n`,
          reward: candidate ? o.toolCallReward : 0,
          done: last,
          toolCall: true,
          ...(last ? { success: false, outcome: 0 } : {}),
        };
      } else {
        result = {
          reply: COUNTDOWN_FORMAT_ERROR,
          reward: 0,
          done: last,
          formatError: true,
          ...(last ? { success: false, outcome: 0 } : {}),
        };
      }
      return result;
    });
  }

  /** Check the generating equation with the calculator, then answer it. */
  demonstrations(count: number, rng: Rng): TextDemonstration[] {
    const out: TextDemonstration[] = [];
    const held = new Set(this.problems(200, 'test', rng).map((t) => t.prompt));
    for (let i = 0; i < count; i++) {
      let p = this.draw(rng, `demo-${i}`);
      while (held.has(p.prompt)) p = this.draw(rng, `demo-${i}`);
      const turns: TextTurnSample[] = [
        { role: 'prompt', text: p.prompt },
        { role: 'agent', text: `<calc>${p.solution}</calc>` },
        { role: 'tool', text: `=${p.answer}\n` },
        { role: 'agent', text: `<answer>${p.solution}</answer>` },
      ];
      out.push({ problem: { id: p.id, prompt: p.prompt, answer: p.answer }, turns, flawed: false });
    }
    return out;
  }
}

const params = z.object({
  numbers: z.number().int().min(2).max(4).default(3).describe('Numbers per problem (TinyZero: 3-4)'),
  maxNumber: z.number().int().min(2).max(99).default(20).describe('Numbers are drawn from 1..maxNumber'),
  maxTurns: z.number().int().min(1).max(8).default(2).describe('Agent turns per episode at most'),
  toolCallReward: z
    .number()
    .min(0)
    .max(1)
    .default(0.1)
    .describe('Turn-level reward for a well-formed <calc> check'),
  checkUsesNumbers: z
    .boolean()
    .default(false)
    .describe('Pay the check reward only for a candidate equation: each given number used exactly once'),
  formatReward: z
    .number()
    .min(0)
    .max(1)
    .default(0.1)
    .describe('Reward of a well-formed answer that misses the target'),
  testSeed: z
    .number()
    .int()
    .min(0)
    .max(2 ** 31)
    .default(20250202)
    .describe('Seed of the held-out split'),
});

export default defineNode({
  type: 'env.countdown',
  family: 'environment',
  title: 'Countdown',
  summary: 'Reach the target with each number once: TinyZero’s reasoning task, with a calculator.',
  doc: `The Countdown numbers game as used by TinyZero (Pan et al. 2025, the R1-Zero reproduction on
Countdown): given 3-4 numbers and a target, write an equation that uses each number exactly once with
+ - * / and parentheses and equals the target.

  N 3 5 6 T 33                  prompt (numbers, target); every problem is solvable
  <calc>6*5+3</calc>            agent: optional check with the calculator (turn-level reward)
  =33                           tool reply
  <answer>6*5+3</answer>        agent: the final equation

Outcome reward (TinyZero): 1 if the answer uses each number once and hits the target, \`formatReward\`
(0.1) if it is a well-formed equation of the numbers that misses, 0 otherwise. A well-formed calculator
check earns \`toolCallReward\` for that turn (turn-level shaping for MT-GRPO-style credit); with
\`checkUsesNumbers\` only a check that is a candidate answer (each given number used exactly once) earns
it, so \`<calc>1+1</calc>\` is answered but not paid. Malformed
output gets a \`!format\` reply; the episode ends at an answer or after \`maxTurns\` turns. Division must
be exact. Held-out problems come from \`testSeed\` and never appear in training; demonstrations check the
generating equation with the calculator, then answer it.`,
  version: 1,
  inputs: [],
  outputs: [
    { name: 'env', type: 'Env', title: 'Environment', provides: { observation: 'text', action: 'text' } },
  ],
  params,
  keyParams: ['numbers', 'maxNumber', 'maxTurns'],
  create(p, ctx) {
    return { components: { env: new CountdownEnv(ctx.nodeId, p) } };
  },
});
