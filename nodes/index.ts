/** The node library: every node type the app ships, one file each. */
import type { AnyNodeDefinition } from '../src-main/engine/node-api.ts';
import { NodeRegistry } from '../src-main/engine/registry.ts';
import hfLlm from './agent/hf-llm.ts';
import llm from './agent/llm.ts';
import llmRemote from './agent/llm-remote.ts';
import mlpPolicy from './agent/mlp-policy.ts';
import counterfactual from './credit/counterfactual.ts';
import gae from './credit/gae.ts';
import grpoCredit from './credit/grpo.ts';
import hcaReturn from './credit/hca-return.ts';
import hcaState from './credit/hca-state.ts';
import her from './credit/her.ts';
import monteCarlo from './credit/monte-carlo.ts';
import rloo from './credit/rloo.ts';
import tokenGae from './credit/token-gae.ts';
import turnLevel from './credit/turn-level.ts';
import ambiguousBandit from './environment/ambiguous-bandit.ts';
import bitFlip from './environment/bit-flip.ts';
import calculatorTool from './environment/calculator-tool.ts';
import cartpole from './environment/cartpole.ts';
import cooperativeMeet from './environment/cooperative-meet.ts';
import countdown from './environment/countdown.ts';
import delayedEffect from './environment/delayed-effect.ts';
import keyToDoor from './environment/key-to-door.ts';
import matrixGame from './environment/matrix-game.ts';
import safetyGridworld from './environment/safety-gridworld.ts';
import shortcut from './environment/shortcut.ts';
import groupRollout from './rollout/group-rollout.ts';
import rolloutMix from './rollout/mix.ts';
import multiAgentRollout from './rollout/multi-agent-rollout.ts';
import vectorRollout from './rollout/vector-rollout.ts';
import actionFilter from './safety/action-filter.ts';
import klGuard from './safety/kl-guard.ts';
import lagrangian from './safety/lagrangian.ts';
import rewardHackingMonitor from './safety/reward-hacking-monitor.ts';
import grpo from './trainer/grpo.ts';
import inContext from './trainer/in-context.ts';
import ppo from './trainer/ppo.ts';
import sft from './trainer/sft.ts';
import centralisedValue from './value/centralised.ts';
import llmValueHead from './value/llm-head.ts';
import mlpValue from './value/mlp-value.ts';
import valuePrior from './value/prior.ts';
import worldEnsemble from './world/ensemble.ts';
import worldLatent from './world/latent.ts';

export const nodeLibrary: AnyNodeDefinition[] = [
  cartpole,
  mlpPolicy,
  vectorRollout,
  gae,
  mlpValue,
  ppo,
  monteCarlo,
  bitFlip,
  ambiguousBandit,
  delayedEffect,
  safetyGridworld,
  actionFilter,
  rewardHackingMonitor,
  lagrangian,
  klGuard,
  hcaReturn,
  hcaState,
  her,
  keyToDoor,
  shortcut,
  valuePrior,
  worldEnsemble,
  worldLatent,
  rolloutMix,
  cooperativeMeet,
  matrixGame,
  multiAgentRollout,
  centralisedValue,
  counterfactual,
  llm,
  hfLlm,
  calculatorTool,
  countdown,
  groupRollout,
  grpoCredit,
  rloo,
  turnLevel,
  llmValueHead,
  tokenGae,
  sft,
  grpo,
  llmRemote,
  inContext,
];

export function createRegistry(extra: AnyNodeDefinition[] = []): NodeRegistry {
  return new NodeRegistry([...nodeLibrary, ...extra]);
}
