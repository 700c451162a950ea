/** The node library: every node type the app ships, one file each. */
import type { AnyNodeDefinition } from '../src-main/engine/node-api.ts';
import { NodeRegistry } from '../src-main/engine/registry.ts';
import mlpPolicy from './agent/mlp-policy.ts';
import gae from './credit/gae.ts';
import cartpole from './environment/cartpole.ts';
import vectorRollout from './rollout/vector-rollout.ts';
import ppo from './trainer/ppo.ts';
import mlpValue from './value/mlp-value.ts';

export const nodeLibrary: AnyNodeDefinition[] = [cartpole, mlpPolicy, vectorRollout, gae, mlpValue, ppo];

export function createRegistry(extra: AnyNodeDefinition[] = []): NodeRegistry {
  return new NodeRegistry([...nodeLibrary, ...extra]);
}
