/**
 * `npm run bench`: figures and ratios against references measured in the same run (not a test).
 * Sections: ppo (PPO CartPole vs PyTorch), templates (every template trained full-length against its
 * card). Flags: --only ppo,templates  --seeds 1,2,3  --steps 300000  --skip-reference
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { benchPpoCartpole } from './ppo-cartpole.ts';
import { formatSection, type Section } from './table.ts';
import { benchTemplates } from './templates.ts';

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    seeds: { type: 'string', default: '1,2,3' },
    steps: { type: 'string', default: '300000' },
    'skip-reference': { type: 'boolean', default: false },
  },
});
const seeds = values.seeds.split(',').map(Number);

const sections: Record<string, () => Promise<Section | Section[]>> = {
  ppo: () =>
    benchPpoCartpole({ seeds, totalSteps: Number(values.steps), skipReference: values['skip-reference'] }),
  templates: () => benchTemplates(),
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
