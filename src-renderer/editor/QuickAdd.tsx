/** Search-and-add at a point (double-click on the canvas, or Shift+A): type, arrows, Enter. */
import { useEffect, useMemo, useRef, useState } from 'react';
import type { CatalogNode } from '../../src-main/api/studio-api.ts';
import { matchesSearch } from './Palette.tsx';

export function QuickAdd({
  types,
  at,
  onPick,
  onClose,
}: {
  types: readonly CatalogNode[];
  /** Where to show it, in screen pixels. */
  at: { x: number; y: number };
  onPick(type: CatalogNode): void;
  onClose(): void;
}) {
  const [query, setQuery] = useState('');
  const [active, setActive] = useState(0);
  const input = useRef<HTMLInputElement>(null);
  const matches = useMemo(() => types.filter((t) => matchesSearch(t, query)).slice(0, 12), [types, query]);
  useEffect(() => input.current?.focus(), []);

  return (
    <div
      className="quick-add"
      role="dialog"
      aria-label="Add a node"
      style={{ left: at.x, top: at.y }}
      onKeyDown={(e) => {
        if (e.key === 'Escape') onClose();
        else if (e.key === 'ArrowDown') setActive((a) => Math.min(a + 1, matches.length - 1));
        else if (e.key === 'ArrowUp') setActive((a) => Math.max(a - 1, 0));
        else if (e.key === 'Enter' && matches[active]) onPick(matches[active]);
        else return;
        e.preventDefault();
        e.stopPropagation();
      }}
    >
      <input
        ref={input}
        type="search"
        aria-label="Node type to add"
        placeholder="Add node…"
        value={query}
        role="combobox"
        aria-expanded="true"
        aria-controls="quick-add-list"
        aria-activedescendant={matches[active] ? `quick-add-${active}` : undefined}
        onChange={(e) => {
          setQuery(e.target.value);
          setActive(0);
        }}
        onBlur={(e) => {
          if (!e.currentTarget.parentElement?.contains(e.relatedTarget as Node | null)) onClose();
        }}
      />
      <div id="quick-add-list" role="listbox" aria-label="Matching node types" className="quick-add-list">
        {matches.map((t, i) => (
          <div
            key={t.type}
            tabIndex={-1}
            id={`quick-add-${i}`}
            role="option"
            aria-selected={i === active}
            className={i === active ? 'active' : ''}
            onMouseDown={(e) => {
              e.preventDefault();
              onPick(t);
            }}
          >
            <strong>{t.title}</strong> <span className="hint">{t.family}</span>
          </div>
        ))}
        {matches.length === 0 && <p className="hint">No match</p>}
      </div>
    </div>
  );
}
