/**
 * The desktop window's preload (sandboxed, context-isolated): exposes the StudioApi as `window.studio`
 * and nothing else — no ipcRenderer, no Node. Only `electron` is imported at run time.
 *
 * Errors reach the page as plain objects `{name, code, message, diagnostics}`: contextBridge would drop
 * the custom fields of an Error.
 */
import { contextBridge, ipcRenderer } from 'electron';
import type { CallReply } from '../api/dispatch.ts';
import type {
  RunEvent,
  RunEventListener,
  StudioApi,
  StudioCallMethod,
  StudioErrorInfo,
} from '../api/studio-api.ts';

const listeners = new Map<string, RunEventListener>();
let nextSubscription = 1;

ipcRenderer.on('studio:event', (_event, subscription: string, seq: number, runEvent: RunEvent) => {
  listeners.get(subscription)?.(runEvent, seq);
});

const rejection = (error: StudioErrorInfo) => ({ name: 'StudioError', ...error });

async function invoke(channel: string, ...args: unknown[]): Promise<unknown> {
  const reply = (await ipcRenderer.invoke(channel, ...args)) as CallReply;
  if (!reply.ok) throw rejection(reply.error);
  return reply.result;
}

const call =
  <M extends StudioCallMethod>(method: M) =>
  (...params: Parameters<StudioApi[M]>) =>
    invoke('studio:call', method, params) as ReturnType<StudioApi[M]>;

const studio: StudioApi = {
  getInfo: call('getInfo'),
  catalog: call('catalog'),
  validate: call('validate'),
  migrateGraph: call('migrateGraph'),
  listTemplates: call('listTemplates'),
  getTemplate: call('getTemplate'),
  openGraphFile: call('openGraphFile'),
  saveGraphFile: call('saveGraphFile'),
  exportGraph: call('exportGraph'),
  startRun: call('startRun'),
  pauseRun: call('pauseRun'),
  resumeRun: call('resumeRun'),
  stepRun: call('stepRun'),
  stopRun: call('stopRun'),
  resumeRunFromCheckpoint: call('resumeRunFromCheckpoint'),
  listRuns: call('listRuns'),
  deleteRun: call('deleteRun'),
  async subscribe(runId, listener) {
    if (typeof listener !== 'function')
      throw rejection({ code: 'bad-arguments', message: 'subscribe needs a listener.' });
    // Registered before asking: the history the main process sends at once finds its listener.
    const subscription = `ipc-${nextSubscription++}`;
    listeners.set(subscription, listener);
    try {
      await invoke('studio:subscribe', runId, subscription, 0);
    } catch (error) {
      listeners.delete(subscription);
      throw error;
    }
    return subscription;
  },
  async unsubscribe(subscription) {
    if (!listeners.delete(subscription)) return;
    await invoke('studio:unsubscribe', subscription);
  },
};

contextBridge.exposeInMainWorld('studio', studio);
