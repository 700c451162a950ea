/** Bench output: one aligned table per section, first column left, the others right. */
export type Row = string[];

export interface Section {
  title: string;
  header: string[];
  rows: Row[];
  /** Lines printed under the table (profiles, notes). */
  notes?: string[];
}

export function formatSection(section: Section): string {
  const all = [section.header, ...section.rows];
  const widths = section.header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const line = (cells: Row) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [
    `## ${section.title}`,
    line(section.header),
    ...section.rows.map(line),
    ...(section.notes ?? []),
    '',
  ].join('\n');
}

export const fmt = (x: number | null | undefined, digits = 0) =>
  x === null || x === undefined || !Number.isFinite(x)
    ? 'n/a'
    : x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

export const ratio = (a: number | null | undefined, b: number | null | undefined) =>
  a && b ? (a / b).toFixed(2) : 'n/a';
