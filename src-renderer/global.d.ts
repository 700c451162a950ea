import type { StudioApi } from '../src-main/api/studio-api.ts';

declare global {
  interface Window {
    /** Set by the Electron preload; absent in a browser (web mode). */
    studio?: StudioApi;
  }
}
