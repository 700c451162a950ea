/**
 * The episode of a turn-based text environment (calculator-tool.ts, countdown.ts): the transcript, the
 * turn count, the end. Each environment gives only its reply to one agent turn.
 */
import type { TextTurnSample } from '../../src-main/engine/events.ts';
import type { TextEpisode, TextProblem, TextStepResult } from '../text-contracts.ts';

/**
 * An episode of at most `maxTurns` agent turns. `respond(agentText, last)` scores a turn (`last`: the
 * turn limit is reached, so the episode must end); its reply goes into the transcript as the tool's or
 * the environment's turn unless the episode is over.
 */
export function turnBasedEpisode(
  envName: string,
  problem: TextProblem,
  maxTurns: number,
  respond: (agentText: string, last: boolean) => TextStepResult,
): TextEpisode {
  const turns: TextTurnSample[] = [{ role: 'prompt', text: problem.prompt }];
  let agentTurns = 0;
  let done = false;
  return {
    problem,
    turns,
    act(agentText: string): TextStepResult {
      if (done) throw new Error(`${envName}: the episode has already ended`);
      agentTurns += 1;
      const result = respond(agentText, agentTurns >= maxTurns);
      turns.push({ role: 'agent', text: agentText, reward: result.reward });
      if (result.reply !== undefined && !result.done) {
        turns.push({ role: result.toolCall ? 'tool' : 'env', text: result.reply });
      } else {
        delete result.reply;
      }
      done = result.done;
      return result;
    },
  };
}
