/**
 * The palette: node types grouped by family, searchable; hover or focus shows the doc. Drag an entry onto
 * the canvas, or press Enter on it to add it in the middle of the view.
 */
import { useMemo, useState } from 'react';
import type { CatalogNode } from '../../src-main/api/studio-api.ts';
import { FAMILY_ORDER, FAMILY_TITLES, familyColor } from './families.ts';

export const PALETTE_MIME = 'application/x-agent-rl-studio-node';

export function matchesSearch(type: CatalogNode, query: string): boolean {
  const q = query.trim().toLowerCase();
  if (!q) return true;
  const haystack = `${type.title} ${type.type} ${type.family} ${type.summary}`.toLowerCase();
  return q.split(/\s+/).every((word) => haystack.includes(word));
}

export function groupByFamily(types: readonly CatalogNode[]): Array<[string, CatalogNode[]]> {
  const groups = new Map<string, CatalogNode[]>();
  for (const t of types) groups.set(t.family, [...(groups.get(t.family) ?? []), t]);
  const rank = (f: string) => {
    const i = (FAMILY_ORDER as readonly string[]).indexOf(f);
    return i < 0 ? FAMILY_ORDER.length : i;
  };
  return [...groups.entries()]
    .sort((a, b) => rank(a[0]) - rank(b[0]))
    .map(([f, list]) => [f, list.sort((a, b) => a.title.localeCompare(b.title))]);
}

export function Palette({ types, onAdd }: { types: readonly CatalogNode[]; onAdd(type: CatalogNode): void }) {
  const [query, setQuery] = useState('');
  const [shown, setShown] = useState<CatalogNode | null>(null);
  const groups = useMemo(() => groupByFamily(types.filter((t) => matchesSearch(t, query))), [types, query]);

  return (
    <nav className="palette" aria-label="Node palette">
      <input
        type="search"
        aria-label="Search nodes"
        placeholder="Search nodes…"
        value={query}
        onChange={(e) => setQuery(e.target.value)}
      />
      <div className="palette-groups">
        {groups.length === 0 && <p className="hint">No node matches “{query}”.</p>}
        {groups.map(([family, list]) => (
          <section key={family} aria-label={FAMILY_TITLES[family] ?? family}>
            <h3 style={{ '--family-color': familyColor(family) } as React.CSSProperties}>
              {FAMILY_TITLES[family] ?? family}
            </h3>
            <ul>
              {list.map((type) => (
                <li key={type.type}>
                  <button
                    type="button"
                    className="palette-item"
                    draggable
                    aria-label={`Add ${type.title}`}
                    aria-describedby={shown?.type === type.type ? 'palette-doc' : undefined}
                    style={{ '--family-color': familyColor(type.family) } as React.CSSProperties}
                    onDragStart={(e) => {
                      setShown(null);
                      e.dataTransfer.setData(PALETTE_MIME, type.type);
                      e.dataTransfer.effectAllowed = 'copy';
                    }}
                    onClick={() => onAdd(type)}
                    onMouseEnter={() => setShown(type)}
                    onFocus={() => setShown(type)}
                    onMouseLeave={() => setShown((s) => (s === type ? null : s))}
                    onBlur={() => setShown((s) => (s === type ? null : s))}
                  >
                    <span className="palette-title">{type.title}</span>
                    <span className="palette-summary">{type.summary}</span>
                  </button>
                </li>
              ))}
            </ul>
          </section>
        ))}
      </div>
      {shown && (
        <div id="palette-doc" className="palette-doc" role="tooltip">
          <strong>{shown.title}</strong> <code>{shown.type}</code>
          <pre className="doc-text">{shown.doc}</pre>
        </div>
      )}
    </nav>
  );
}
