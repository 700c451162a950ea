/**
 * What flows along the wires of text pipelines (LLM agents in multi-turn, tool-using text environments).
 * Env ports with `provides: {observation: 'text', action: 'text'}` carry a TextEnv; Policy ports with
 * `provides: {action: 'text'}` carry a TextPolicy; a Trajectories stream of text episodes is a
 * TextTrajectories.
 */
import type { TextTurnSample } from '../src-main/engine/events.ts';
import type { Rng } from '../src-main/engine/rng.ts';

export type Split = 'train' | 'test';

export interface TextProblem {
  /** Stable within its split, e.g. 'test-17'. */
  id: string;
  /** The task as the agent first sees it. */
  prompt: string;
  /** The expected final answer (for verifiers and demonstrations). */
  answer: string;
}

export interface TextStepResult {
  /** The environment's reply to append to the context (a tool result or a format error), if any. */
  reply?: string;
  /** Reward for this turn (turn-level shaping) plus, on the last turn, the outcome reward. */
  reward: number;
  done: boolean;
  /** On the last turn: the task was solved exactly. */
  success?: boolean;
  /** The turn did not follow the grammar; the episode goes on with a format-error reply. */
  formatError?: boolean;
  /** The turn was a well-formed tool call. */
  toolCall?: boolean;
}

/** One episode in progress. Turns are plain text; the policy tokenises them itself. */
export interface TextEpisode {
  readonly problem: TextProblem;
  /** The whole transcript so far: the prompt, then agent turns and environment replies. */
  readonly turns: TextTurnSample[];
  act(agentText: string): TextStepResult;
}

/** A full transcript for supervised fine-tuning; `flawed` demonstrations contain a mistake. */
export interface TextDemonstration {
  problem: TextProblem;
  turns: TextTurnSample[];
  flawed: boolean;
}

export interface TextEnv {
  readonly nodeId: string;
  /** Agent turns per episode at most. */
  readonly maxTurns: number;
  /** Strings that end an agent turn (e.g. '</calc>', '</answer>'); generation stops at them. */
  readonly stop: string[];
  /** `count` problems; 'train' draws from `rng`, 'test' is a fixed held-out set from its own seed. */
  problems(count: number, split: Split, rng: Rng): TextProblem[];
  start(problem: TextProblem): TextEpisode;
  /** Demonstrations for SFT, where the environment can write them. */
  demonstrations?(count: number, rng: Rng): TextDemonstration[];
}

export interface GenerationOptions {
  maxNewTokens: number;
  temperature: number;
  topK?: number;
  topP?: number;
  stop: string[];
}

export interface TextCompletion {
  text: string;
  /** Trainable policies: the sampled token ids and their log-probabilities under the sampling policy. */
  tokens?: Int32Array;
  logProbs?: Float32Array;
  finish: 'stop' | 'length';
}

/** A finished episode told back to a policy that learns in context (no gradients). */
export interface EpisodeFeedback {
  problem: TextProblem;
  turns: TextTurnSample[];
  reward: number;
  success: boolean;
  /** Hindsight feedback, e.g. "the correct answer was 9716". */
  feedback?: string;
}

export interface TextPolicy {
  readonly nodeId: string;
  /** True when gradients can flow (a local transformer); false for remote endpoints. */
  readonly trainable: boolean;
  /** One completion per context, all contexts generated as a batch where the policy can. */
  generate(contexts: string[], options: GenerationOptions, rng: Rng): Promise<TextCompletion[]>;
  /** In-context learners keep a memory of earlier episodes and put it in their prompt. */
  observeEpisodes?(episodes: EpisodeFeedback[]): void;
}

/** Text episodes of one iteration, grouped: `groups[g]` holds the indices of G episodes of one problem. */
export interface TextTrajectories {
  kind: 'text';
  episodes: TextEpisodeRecord[];
  groups: number[][];
}

export interface TextEpisodeRecord {
  problem: TextProblem;
  turns: TextTurnSample[];
  /** Reward of each agent turn, in order (the last includes the outcome). */
  turnRewards: number[];
  reward: number;
  success: boolean;
  formatErrors: number;
  toolCalls: number;
  /**
   * Trainable policies: the whole episode as one token sequence (prompt, agent turns, replies), the
   * sampling log-probabilities, which tokens are the agent's (only those get gradient), and which agent
   * turn each token belongs to (-1 for non-agent tokens).
   */
  tokens?: Int32Array;
  logProbs?: Float32Array;
  agentMask?: Uint8Array;
  turnOfToken?: Int16Array;
}
