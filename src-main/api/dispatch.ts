/**
 * Calls arriving as (method name, JSON arguments) from IPC, WebSocket or HTTP: checked here, once, before
 * they reach the service. An unknown method or malformed arguments is an error reply, never a crash.
 */
import { z } from 'zod';
import { BACKEND_NAMES } from '../engine/graph/types.ts';
import { StudioError, toErrorInfo } from './errors.ts';
import type { StudioCallMethod, StudioErrorInfo } from './studio-api.ts';
import { RUN_ID_PATTERN, type StudioService } from './studio-service.ts';

export type CallReply = { ok: true; result: unknown } | { ok: false; error: StudioErrorInfo };

// JSON turns a trailing `undefined` argument into null: optional arguments accept both.
const opt = <T extends z.ZodType>(schema: T) =>
  schema
    .nullish()
    .transform((v) => v ?? undefined)
    .optional();

const runId = z.string().regex(RUN_ID_PATTERN, 'is not a run id');
const graph = z.unknown();
const startRequest = z.strictObject({
  graph: z.unknown(),
  seed: opt(
    z
      .number()
      .int()
      .min(0)
      .max(2 ** 32 - 1),
  ),
  iterations: opt(z.number().int().min(1).max(1e9)),
  backend: opt(z.enum(BACKEND_NAMES)),
});
const saveOptions = z.strictObject({ path: opt(z.string().max(4096)), saveAs: opt(z.boolean()) });

type Handler = (service: StudioService, params: unknown[]) => Promise<unknown>;

function method<T extends z.ZodTuple>(
  schema: T,
  call: (service: StudioService, args: z.output<T>) => Promise<unknown>,
): Handler {
  return (service, params) => {
    const parsed = schema.safeParse(params);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue?.path.length ? `argument ${issue.path.join('.')}` : 'arguments';
      throw new StudioError('bad-arguments', `Malformed ${where}: ${issue?.message ?? 'invalid'}`);
    }
    return call(service, parsed.data);
  };
}

const none = z.tuple([]);

const handlers: Record<StudioCallMethod, Handler> = {
  getInfo: method(none, (s) => s.getInfo()),
  catalog: method(none, (s) => s.catalog()),
  validate: method(z.tuple([graph]), (s, [g]) => s.validate(g)),
  migrateGraph: method(z.tuple([graph]), (s, [g]) => s.migrateGraph(g as never)),
  listTemplates: method(none, (s) => s.listTemplates()),
  getTemplate: method(z.tuple([z.string().max(200)]), (s, [id]) => s.getTemplate(id)),
  openGraphFile: method(none, (s) => s.openGraphFile()),
  // The graph's shape is checked by the service (with diagnostics), not here.
  saveGraphFile: method(z.tuple([graph, opt(saveOptions)]), (s, [g, o]) =>
    s.saveGraphFile(g as never, o ?? {}),
  ),
  exportGraph: method(z.tuple([graph]), (s, [g]) => s.exportGraph(g as never)),
  startRun: method(z.tuple([startRequest]), (s, [r]) => s.startRun(r)),
  pauseRun: method(z.tuple([runId]), (s, [id]) => s.pauseRun(id)),
  resumeRun: method(z.tuple([runId]), (s, [id]) => s.resumeRun(id)),
  stepRun: method(z.tuple([runId, opt(z.number().int().min(1).max(1_000_000))]), (s, [id, n]) =>
    s.stepRun(id, n ?? 1),
  ),
  stopRun: method(z.tuple([runId]), (s, [id]) => s.stopRun(id)),
  resumeRunFromCheckpoint: method(z.tuple([runId]), (s, [id]) => s.resumeRunFromCheckpoint(id)),
  listRuns: method(none, (s) => s.listRuns()),
  deleteRun: method(z.tuple([runId]), (s, [id]) => s.deleteRun(id)),
};

export const CALL_METHODS = Object.keys(handlers) as StudioCallMethod[];

export function isCallMethod(name: unknown): name is StudioCallMethod {
  return typeof name === 'string' && Object.hasOwn(handlers, name);
}

/** Run one call; every failure is an error reply. `log` hears about unexpected (internal) errors. */
export async function dispatchCall(
  service: StudioService,
  name: unknown,
  params: unknown,
  log?: (message: string) => void,
): Promise<CallReply> {
  try {
    if (!isCallMethod(name)) {
      const shown = typeof name === 'string' ? `'${name.slice(0, 100)}'` : `of type ${typeof name}`;
      throw new StudioError('unknown-method', `Unknown API method ${shown}.`);
    }
    if (params !== undefined && params !== null && !Array.isArray(params)) {
      throw new StudioError('bad-arguments', 'Arguments must be a JSON array.');
    }
    const result = await handlers[name](service, (params as unknown[] | null | undefined) ?? []);
    return { ok: true, result: result ?? null };
  } catch (error) {
    if (!(error instanceof StudioError))
      log?.(`API call ${String(name)} failed: ${(error as Error)?.stack ?? String(error)}`);
    return { ok: false, error: toErrorInfo(error) };
  }
}

/** Arguments of 'subscribe' from a client: [runId, clientSubscriptionId, fromSeq?]. */
export const subscribeParams = z.tuple([runId, z.string().min(1).max(200), opt(z.number().int().min(0))]);
export const unsubscribeParams = z.tuple([z.string().min(1).max(200)]);
