/**
 * The Export dialog: the graph as a runnable TypeScript module (from StudioApi.exportGraph), shown
 * read-only with simple syntax highlighting, with Copy and Save as (a download).
 */
import { type CSSProperties, type ReactNode, useEffect, useMemo, useRef, useState } from 'react';
import type { ExportedCode } from '../src-main/api/studio-api.ts';

export interface ExportDialogProps {
  /** The exported module, or undefined while it is being made. */
  exported: ExportedCode | undefined;
  /** Why there is no module (graph errors, connection). */
  error?: string;
  open: boolean;
  onClose(): void;
}

type TokenKind = 'comment' | 'string' | 'keyword' | 'number' | 'plain';

const TOKEN_STYLE: Record<TokenKind, CSSProperties | undefined> = {
  comment: { color: '#6a737d', fontStyle: 'italic' },
  string: { color: '#22863a' },
  keyword: { color: '#d73a49', fontWeight: 600 },
  number: { color: '#005cc5' },
  plain: undefined,
};

const KEYWORDS = new Set(
  'import from const let async await function return if else export new true false null undefined void Promise'.split(
    ' ',
  ),
);

// Comments, single/double-quoted strings, template literals, numbers, words; everything else is plain.
const TOKEN =
  /(\/\/[^\n]*|\/\*[\s\S]*?\*\/)|('(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"|`(?:[^`\\]|\\.)*`)|(\b\d[\d_.eE+-]*\b)|([A-Za-z_$][\w$]*)/g;

/** Splits TypeScript source into highlighted spans; the text itself is rendered as text, never as HTML. */
export function highlightTypeScript(code: string): ReactNode[] {
  const nodes: ReactNode[] = [];
  let last = 0;
  let key = 0;
  const push = (text: string, kind: TokenKind) => {
    if (!text) return;
    const style = TOKEN_STYLE[kind];
    nodes.push(
      style ? (
        <span key={key++} className={`tok-${kind}`} style={style}>
          {text}
        </span>
      ) : (
        text
      ),
    );
  };
  for (const match of code.matchAll(TOKEN)) {
    const index = match.index ?? 0;
    push(code.slice(last, index), 'plain');
    const [text, comment, string, number, word] = match;
    if (comment) push(text, 'comment');
    else if (string) push(text, 'string');
    else if (number) push(text, 'number');
    else if (word) push(text, KEYWORDS.has(word) ? 'keyword' : 'plain');
    last = index + text.length;
  }
  push(code.slice(last), 'plain');
  return nodes;
}

export function ExportDialog({ exported, error, open, onClose }: ExportDialogProps) {
  const ref = useRef<HTMLDialogElement>(null);
  const [copied, setCopied] = useState<string>();
  const highlighted = useMemo(() => (exported ? highlightTypeScript(exported.code) : []), [exported]);

  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (open && !dialog.open) dialog.showModal();
    if (!open && dialog.open) dialog.close();
    if (!open) setCopied(undefined);
  }, [open]);

  const copy = async () => {
    if (!exported) return;
    try {
      await navigator.clipboard.writeText(exported.code);
      setCopied('Copied to the clipboard.');
    } catch (e) {
      setCopied(
        `Could not copy: ${e instanceof Error ? e.message : String(e)}. Select the code and copy it.`,
      );
    }
  };

  const saveAs = () => {
    if (!exported) return;
    const url = URL.createObjectURL(new Blob([exported.code], { type: 'text/typescript' }));
    const link = document.createElement('a');
    link.href = url;
    link.download = exported.fileName;
    link.click();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  };

  return (
    <dialog ref={ref} className="gallery export-dialog" aria-labelledby="export-title" onClose={onClose}>
      <header>
        <h2 id="export-title">Export as TypeScript{exported ? `: ${exported.fileName}` : ''}</h2>
        <button type="button" onClick={onClose}>
          Close
        </button>
      </header>
      {error ? (
        <p role="alert">{error}</p>
      ) : exported ? (
        <>
          <p className="hint">
            Runs headless with <code>npx tsx {exported.fileName}</code> inside the project and reproduces this
            app's numbers for the same seed and backend.
          </p>
          <div>
            <button type="button" onClick={copy}>
              Copy
            </button>{' '}
            <button type="button" onClick={saveAs}>
              Save as…
            </button>{' '}
            <output aria-label="copy status">{copied ?? ''}</output>
          </div>
          <section
            aria-label="exported code"
            // biome-ignore lint/a11y/noNoninteractiveTabindex: the preview scrolls; the keyboard must reach it.
            tabIndex={0}
            style={{ maxHeight: '60vh', overflow: 'auto', border: '1px solid var(--border)' }}
          >
            <pre style={{ margin: 0, padding: '0.75rem' }}>
              <code>{highlighted}</code>
            </pre>
          </section>
        </>
      ) : (
        <p>Exporting…</p>
      )}
    </dialog>
  );
}
