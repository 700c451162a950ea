/** The node library: every node type the app ships, one file each. */
import type { AnyNodeDefinition } from '../src-main/engine/node-api.ts';
import { NodeRegistry } from '../src-main/engine/registry.ts';
import mlpPolicy from './agent/mlp-policy.ts';
import gae from './credit/gae.ts';
import hcaReturn from './credit/hca-return.ts';
import monteCarlo from './credit/monte-carlo.ts';
import ambiguousBandit from './environment/ambiguous-bandit.ts';
import bitFlip from './environment/bit-flip.ts';
import cartpole from './environment/cartpole.ts';
import delayedEffect from './environment/delayed-effect.ts';
import vectorRollout from './rollout/vector-rollout.ts';
import ppo from './trainer/ppo.ts';
import mlpValue from './value/mlp-value.ts';

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
  hcaReturn,
];

export function createRegistry(extra: AnyNodeDefinition[] = []): NodeRegistry {
  return new NodeRegistry([...nodeLibrary, ...extra]);
}
