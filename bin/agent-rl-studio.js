#!/usr/bin/env node
// The CLI is TypeScript; tsx compiles it on the fly so that the package runs from source.
import { register } from 'tsx/esm/api';

register();
await import('../src-main/cli.ts');
