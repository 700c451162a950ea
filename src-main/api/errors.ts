import type { Diagnostic } from '../engine/diagnostics.ts';
import type { StudioErrorCode, StudioErrorInfo } from './studio-api.ts';

/** An error the API reports to the UI as an error reply (never a crash of the main process). */
export class StudioError extends Error {
  constructor(
    readonly code: StudioErrorCode,
    message: string,
    readonly diagnostics?: Diagnostic[],
  ) {
    super(message);
    this.name = 'StudioError';
  }

  toInfo(): StudioErrorInfo {
    return this.diagnostics
      ? { code: this.code, message: this.message, diagnostics: this.diagnostics }
      : { code: this.code, message: this.message };
  }
}

/** Any thrown value as an error reply; unexpected errors become 'internal' with their message. */
export function toErrorInfo(error: unknown): StudioErrorInfo {
  if (error instanceof StudioError) return error.toInfo();
  return { code: 'internal', message: error instanceof Error ? error.message : String(error) };
}
