/** The calculator tool-use environment: grammar, rewards, format errors, splits and demonstrations. */
import { describe, expect, it } from 'vitest';
import {
  type CalculatorOptions,
  CalculatorToolEnv,
  changeOneDigit,
  FORMAT_ERROR_REPLY,
} from '../../nodes/environment/calculator-tool.ts';
import { CountdownEnv, evaluateExpression } from '../../nodes/environment/countdown.ts';
import { Rng } from '../../src-main/engine/rng.ts';

const options: CalculatorOptions = {
  digitsA: 3,
  digitsB: 2,
  operation: '*',
  maxTurns: 3,
  toolEnabled: true,
  toolCallReward: 0.1,
  flawedFraction: 0.3,
  testSeed: 7,
};
const problem = { id: 'x', prompt: 'Q 347*28\n', answer: '9716' };

describe('env.calculator-tool', () => {
  it('answers a tool call, rewards the exact answer, and ends the episode', () => {
    const env = new CalculatorToolEnv('calc', options);
    const episode = env.start(problem);
    const call = episode.act('<calc>347*28</calc>');
    expect(call).toEqual({ reply: '=9716\n', reward: 0.1, done: false, toolCall: true });
    const answer = episode.act('<answer>9716</answer>');
    expect(answer).toEqual({ reward: 1, outcome: 1, done: true, success: true });
    expect(episode.turns.map((t) => t.role)).toEqual(['prompt', 'agent', 'tool', 'agent']);
    expect(() => episode.act('<answer>1</answer>')).toThrow(/already ended/);
  });

  it('a wrong answer scores 0; malformed output gets a format-error reply, never a crash', () => {
    const env = new CalculatorToolEnv('calc', options);
    const episode = env.start(problem);
    for (const junk of ['', 'hello', '<calc>347*</calc>', '<answer>12', '<calc>9999999999*2</calc>']) {
      const fresh = env.start(problem);
      const r = fresh.act(junk);
      expect(r.formatError).toBe(true);
      expect(r.reply).toBe(FORMAT_ERROR_REPLY);
      expect(r.done).toBe(false);
    }
    expect(episode.act('<answer>9717</answer>')).toEqual({
      reward: 0,
      outcome: 0,
      done: true,
      success: false,
    });
  });

  it('ends unsolved after maxTurns agent turns', () => {
    const env = new CalculatorToolEnv('calc', options);
    const episode = env.start(problem);
    expect(episode.act('<calc>1+1</calc>').done).toBe(false);
    expect(episode.act('junk').done).toBe(false);
    const last = episode.act('<calc>2+2</calc>');
    expect(last.done).toBe(true);
    expect(last.success).toBe(false);
    expect(last.reply).toBeUndefined();
  });

  it('without the tool a call is refused and only a direct answer can score', () => {
    const env = new CalculatorToolEnv('calc', { ...options, toolEnabled: false });
    const episode = env.start(problem);
    const r = episode.act('<calc>347*28</calc>');
    expect(r.formatError).toBe(true);
    expect(r.reply).toBe('!no tool\n');
    expect(episode.act('<answer>9716</answer>').success).toBe(true);
  });

  it('held-out problems are fixed by the test seed and never drawn for training', () => {
    const env = new CalculatorToolEnv('calc', options);
    const test = env.problems(200, 'test', new Rng(1));
    expect(env.problems(200, 'test', new Rng(2))).toEqual(test);
    for (const p of test) {
      const [a, b] = p.prompt.slice(2, -1).split('*').map(Number);
      expect(a).toBeGreaterThanOrEqual(100);
      expect(a).toBeLessThan(1000);
      expect(b).toBeGreaterThanOrEqual(10);
      expect(b).toBeLessThan(100);
      expect(p.answer).toBe(String(a * b));
    }
    const keys = new Set(test.map((p) => p.prompt));
    const train = env.problems(5000, 'train', new Rng(3));
    expect(train.some((p) => keys.has(p.prompt))).toBe(false);
  });

  it('demonstrations: correct ones solve the task, flawed ones (about 30%) do not', () => {
    const env = new CalculatorToolEnv('calc', options);
    const demos = env.demonstrations(2000, new Rng(4));
    const flawed = demos.filter((d) => d.flawed).length / demos.length;
    expect(flawed).toBeGreaterThan(0.26);
    expect(flawed).toBeLessThan(0.34);
    for (const d of demos) {
      const episode = env.start(d.problem);
      let result = { success: false, done: false } as { success?: boolean; done: boolean };
      for (const turn of d.turns.filter((t) => t.role === 'agent')) result = episode.act(turn.text);
      expect(result.done).toBe(true);
      expect(result.success).toBe(!d.flawed);
      // The transcript the environment writes is the demonstration's.
      expect(episode.turns.map((t) => t.text)).toEqual(d.turns.map((t) => t.text));
    }
  });

  it('changeOneDigit changes exactly one digit and never makes a leading zero', () => {
    const rng = new Rng(5);
    for (let i = 0; i < 500; i++) {
      const out = changeOneDigit('347*28', rng);
      const diff = [...out].filter((c, k) => c !== '347*28'[k]).length;
      expect(diff).toBe(1);
      expect(out[0]).not.toBe('0');
      expect(out[4]).not.toBe('0');
    }
  });
});

describe('env.countdown', () => {
  const o = { numbers: 3, maxNumber: 20, maxTurns: 2, toolCallReward: 0.1, formatReward: 0.1, testSeed: 9 };
  const countdownProblem = { id: 'c', prompt: 'N 3 5 6 T 33\n', answer: '33' };
  it('parses and evaluates equations exactly, refusing inexact division and junk', () => {
    expect(evaluateExpression('6*5+3')).toEqual({ value: 33, numbers: [6, 5, 3] });
    expect(evaluateExpression('(12-7)*4')).toEqual({ value: 20, numbers: [12, 7, 4] });
    expect(evaluateExpression('7/2')).toBeUndefined();
    expect(evaluateExpression('6*(5')).toBeUndefined();
    expect(evaluateExpression('6 5')).toBeUndefined();
  });
  it('TinyZero rewards: 1 correct, 0.1 well-formed but wrong, 0 otherwise', () => {
    const env = new CountdownEnv('cd', o);
    expect(env.start(countdownProblem).act('<answer>6*5+3</answer>')).toMatchObject({
      reward: 1,
      success: true,
    });
    expect(env.start(countdownProblem).act('<answer>6+5+3</answer>')).toMatchObject({
      reward: 0.1,
      success: false,
    });
    // Reuses 6 and drops 3: not well-formed.
    expect(env.start(countdownProblem).act('<answer>6*6-3</answer>')).toMatchObject({
      reward: 0,
      success: false,
    });
    const e = env.start(countdownProblem);
    expect(e.act('<calc>6*5</calc>')).toEqual({ reply: '=30\n', reward: 0.1, done: false, toolCall: true });
    expect(e.act('nonsense')).toMatchObject({ done: true, formatError: true, success: false });
  });
  it('checkUsesNumbers: only a check that uses each given number once earns the turn reward', () => {
    const env = new CountdownEnv('cd', { ...o, maxTurns: 4, checkUsesNumbers: true });
    const e = env.start(countdownProblem);
    // A candidate that misses the target is still a candidate: paid, and answered with its value.
    expect(e.act('<calc>6+5+3</calc>')).toEqual({ reply: '=14\n', reward: 0.1, done: false, toolCall: true });
    // Answered but not paid: drops 3; reuses 6; not the problem's numbers at all.
    expect(e.act('<calc>6*5</calc>')).toEqual({ reply: '=30\n', reward: 0, done: false, toolCall: true });
    expect(e.act('<calc>6*6-3</calc>')).toEqual({ reply: '=33\n', reward: 0, done: false, toolCall: true });
    expect(e.act('<calc>1+1</calc>')).toMatchObject({ reward: 0, done: true, toolCall: true, outcome: 0 });
    expect(e.turns.filter((t) => t.role === 'agent').map((t) => t.reward)).toEqual([0.1, 0, 0, 0]);
  });
  it('problems are solvable and demonstrations solve them', () => {
    const env = new CountdownEnv('cd', o);
    for (const d of env.demonstrations(300, new Rng(1))) {
      const episode = env.start(d.problem);
      let r = { done: false } as { done: boolean; success?: boolean };
      for (const t of d.turns.filter((x) => x.role === 'agent')) r = episode.act(t.text);
      expect(r.success).toBe(true);
    }
    const test = new Set(env.problems(200, 'test', new Rng(2)).map((p) => p.prompt));
    expect(env.problems(500, 'train', new Rng(3)).some((p) => test.has(p.prompt))).toBe(false);
  });
});
