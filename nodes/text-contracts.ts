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
  /** On the last turn: the part of `reward` that is the outcome (the rest is turn-level shaping). */
  outcome?: number;
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
  /**
   * Counters of a policy that has no step of its own (remote endpoints: requests, retries, latency,
   * tokens, memory size); the node that drives it publishes them.
   */
  metrics?(): Record<string, number>;
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
  /** The outcome part of the reward (`reward` minus the turn-level shaping), for turn-level credit. */
  outcomeReward?: number;
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

/**
 * A local, trainable text policy (`agent.llm`): what trainers and credit assigners need beyond
 * `generate` — its tokenizer, differentiable per-token log-probabilities, and a frozen reference copy.
 */
export interface TrainableTextPolicy extends TextPolicy {
  readonly trainable: true;
  readonly variables: import('@tensorflow/tfjs').Variable[];
  /** Longest token sequence the model reads (prompt, turns and replies together). */
  readonly contextLength: number;
  /** Token ids of `text`, beginning-of-sequence marker first when `bos` is set. */
  encode(text: string, bos?: boolean): Int32Array;
  /** The text of one token (for transcripts coloured by credit). */
  tokenText(id: number): string;
  /**
   * For right-padded sequences [B, T]: log pi(x_t | x_<t) and the entropy of pi(. | x_<t) for t = 1..T-1,
   * each [B, T-1], differentiable with respect to `variables`. Call inside a tidy/gradient scope. A loss
   * without the entropy passes `withEntropy` false (a policy may then skip it and give zeros).
   */
  tokenLogProbs(
    tokens: import('@tensorflow/tfjs').Tensor2D,
    withHidden?: boolean,
    withEntropy?: boolean,
  ): {
    logProbs: import('@tensorflow/tfjs').Tensor2D;
    entropy: import('@tensorflow/tfjs').Tensor2D;
    /**
     * With `withHidden`, where the policy supports it (`hiddenStates` present): the final hidden states
     * [B, T-1, hiddenSize] that predicted each target, from the same forward pass (for a value head).
     */
    hidden?: import('@tensorflow/tfjs').Tensor3D;
  };
  /** Width of the hidden states a value head reads; absent when the policy exposes none. */
  readonly hiddenSize?: number;
  /**
   * The final hidden states [B, T-1, hiddenSize] at positions 0..T-2 of right-padded sequences [B, T]
   * (position t-1 predicts token t, aligned with `tokenLogProbs`), differentiable like `tokenLogProbs`.
   */
  hiddenStates?(tokens: import('@tensorflow/tfjs').Tensor2D): import('@tensorflow/tfjs').Tensor3D;
  /** The same log-probabilities under the frozen reference copy (no gradient), as a tensor [B, T-1]. */
  referenceLogProbs(tokens: import('@tensorflow/tfjs').Tensor2D): import('@tensorflow/tfjs').Tensor2D;
  /** Make the reference copy equal to the current weights (e.g. when RL starts after SFT). */
  resetReference(): void;
}

export function isTrainableTextPolicy(policy: TextPolicy): policy is TrainableTextPolicy {
  return policy.trainable && typeof (policy as Partial<TrainableTextPolicy>).tokenLogProbs === 'function';
}

/**
 * Credit for text episodes: one advantage per token of each episode (aligned with
 * `TextEpisodeRecord.tokens`, zero on tokens that are not the agent's), plus the episode-level figure.
 */
export interface TextAdvantages {
  kind: 'text';
  /** `tokenAdvantages[e][t]` for episode e of the trajectories, token t. */
  tokenAdvantages: Float32Array[];
  /** One number per episode (the outcome advantage; turn-level credit reports the mean over turns). */
  episodeAdvantages: Float32Array;
  /**
   * Credit with a critic (`credit.token-gae`): per token, the return target R_t = A_t + V_t and the value
   * V_t the advantages were computed with (the old values of PPO's clipped value loss), zero off the
   * agent's tokens.
   */
  tokenReturns?: Float32Array[];
  tokenValues?: Float32Array[];
}

/**
 * A critic for text episodes (`value.llm-head`): V(x_<t), the expected return from the state before each
 * token, read from the hidden states of the policy it is attached to.
 */
export interface TextValueFunction {
  readonly kind: 'text';
  readonly nodeId: string;
  /** The policy whose hidden states it reads. */
  readonly policy: TrainableTextPolicy;
  /** The head's own weights (a shared trunk's weights belong to the policy). */
  readonly variables: import('@tensorflow/tfjs').Variable[];
  /** True when the value loss's gradient also flows into the policy's transformer. */
  readonly joinedTrunk: boolean;
  /** Values [B, T-1] from the policy's hidden states [B, T-1, d] (from `tokenLogProbs(tokens, true)`). */
  valuesFromHidden(hidden: import('@tensorflow/tfjs').Tensor3D): import('@tensorflow/tfjs').Tensor2D;
  /** Values [B, T-1] of right-padded tokens [B, T]: V(x_<t) for targets t = 1..T-1. */
  tokenValues(tokens: import('@tensorflow/tfjs').Tensor2D): import('@tensorflow/tfjs').Tensor2D;
}

export function isTextValueFunction(value: unknown): value is TextValueFunction {
  return (value as Partial<TextValueFunction> | undefined)?.kind === 'text';
}
