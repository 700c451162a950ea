/**
 * The StudioApi this window talks to: `window.studio` in the desktop app (made by the preload), else the
 * web server's WebSocket. In web mode the session token arrives once in the page URL; it is kept in
 * sessionStorage (so a reload still has it) and taken out of the address bar.
 */
import type { StudioApi } from '../../src-main/api/studio-api.ts';
import { type ConnectionState, createWebSocketApi } from './ws-client.ts';

const TOKEN_KEY = 'agent-rl-studio-token';

export interface Connection {
  api: StudioApi;
  mode: 'desktop' | 'web';
  /** Web mode: called with the socket's state as it changes. */
  onConnectionChange(listener: (state: ConnectionState) => void): void;
}

function takeToken(): string {
  const url = new URL(window.location.href);
  const fromUrl = url.searchParams.get('token');
  if (fromUrl) {
    sessionStorage.setItem(TOKEN_KEY, fromUrl);
    url.searchParams.delete('token');
    window.history.replaceState(null, '', `${url.pathname}${url.search}${url.hash}`);
    return fromUrl;
  }
  return sessionStorage.getItem(TOKEN_KEY) ?? '';
}

export function connectStudio(): Connection {
  if (window.studio) {
    return { api: window.studio, mode: 'desktop', onConnectionChange: () => {} };
  }
  const token = takeToken();
  const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
  const listeners = new Set<(state: ConnectionState) => void>();
  const api = createWebSocketApi({
    url: `${scheme}//${window.location.host}/api/ws${token ? `?token=${encodeURIComponent(token)}` : ''}`,
    onConnectionChange: (state) => {
      for (const listener of listeners) listener(state);
    },
  });
  return { api, mode: 'web', onConnectionChange: (listener) => listeners.add(listener) };
}
