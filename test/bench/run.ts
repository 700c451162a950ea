/**
 * `npm run bench`: figures and ratios against references measured in the same run (not a test).
 * Sections (all by default, in this order):
 *   ppo        PPO on CartPole vs the PyTorch reference (steps/s, steps and seconds to solve)
 *   llm        the LLM agent: generation/training tokens/s vs PyTorch, and the calculator headline run
 *   backends   the LLM agent's tokens/s on each available backend, default size and a 25M GPU preset
 *   hf         a 135M-parameter open-weight model shape: generation and LoRA training tokens/s
 *   credit     HCA vs Monte-Carlo (delayed effect), key-to-door, 5 seeds
 *   dyna       Dyna (world model + imagined rollouts) vs model-free: real steps to solve CartPole
 *   templates  every template trained at full length against its card
 *   canvas     the editor with a 500-node graph in Chromium (load time, drag frame time)
 *   ui         the renderer's longest main-thread task while a run streams at full speed
 * Flags: --only ppo,llm  --seeds 1,2,3  --steps 300000  --skip-reference  --quick (shorter LLM part)
 *        --software-gpu (also measure a software WebGPU adapter)  --templates a,b (only these templates)
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { benchBackends } from './backends.ts';
import { benchCanvas } from './canvas.ts';
import { benchCredit } from './credit.ts';
import { benchDyna } from './dyna.ts';
import { benchHfLlm } from './hf-llm.ts';
import { benchLlm } from './llm.ts';
import { benchPpoCartpole } from './ppo-cartpole.ts';
import { formatSection, type Section } from './table.ts';
import { benchTemplates } from './templates.ts';
import { benchUiStreaming } from './ui-streaming.ts';

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    seeds: { type: 'string', default: '1,2,3' },
    steps: { type: 'string', default: '300000' },
    'skip-reference': { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    'software-gpu': { type: 'boolean', default: false },
    templates: { type: 'string' },
  },
});
const seeds = values.seeds.split(',').map(Number);
const skipReference = values['skip-reference'];

const sections: Record<string, () => Promise<Section | Section[]>> = {
  ppo: () => benchPpoCartpole({ seeds, totalSteps: Number(values.steps), skipReference }),
  llm: () => benchLlm({ seeds, skipReference, speedOnly: values.quick }),
  backends: () => benchBackends({ softwareGpu: values['software-gpu'] }),
  hf: () =>
    benchHfLlm({
      backend: 'wasm',
      batch: 4,
      promptTokens: 32,
      newTokens: 16,
      trainTokens: 64,
      trainSteps: 2,
    }),
  credit: () => benchCredit(),
  dyna: () => benchDyna({ seeds }),
  templates: () => benchTemplates(values.templates?.split(',')),
  canvas: () => benchCanvas(),
  ui: () => benchUiStreaming(),
};

const chosen = values.only ? values.only.split(',') : Object.keys(sections);
for (const name of chosen) {
  if (!sections[name])
    throw new Error(`--only: no section '${name}' (have ${Object.keys(sections).join(', ')})`);
}
console.log(
  `machine: ${os.cpus().length} cores, ${os.cpus()[0]?.model ?? 'unknown CPU'}; node ${process.version}\n`,
);
for (const name of chosen) {
  console.error(`bench: ${name}...`);
  const result = await sections[name]!();
  for (const section of [result].flat()) console.log(formatSection(section));
}
