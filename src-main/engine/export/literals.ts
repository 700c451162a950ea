/**
 * Turning values from a graph into TypeScript source text. Everything a user typed becomes a literal here
 * and only here: strings are fully escaped, object keys are quoted unless they are plain identifiers, so
 * nothing from a graph can ever be read as code.
 */

// Characters written as \u escapes: control and format characters (bidirectional overrides included, so
// a literal reads as what it holds), line and paragraph separators, lone surrogates, unusual spaces.
const ESCAPED = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\p{Zs}\p{Co}\p{Cn}]/u;
const SHORT_ESCAPES: Record<string, string> = {
  '\\': '\\\\',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\b': '\\b',
  '\f': '\\f',
  '\v': '\\v',
  '\0': '\\u0000',
};

const hex4 = (code: number) => `\\u${code.toString(16).padStart(4, '0')}`;

/**
 * A TypeScript string literal whose value is exactly `text`: single-quoted, or double-quoted when that
 * needs fewer escapes (as the project's formatter prefers).
 */
export function stringLiteral(text: string): string {
  let singles = 0;
  let doubles = 0;
  for (const ch of text) {
    if (ch === "'") singles++;
    else if (ch === '"') doubles++;
  }
  const quote = singles > doubles ? '"' : "'";
  let out = quote;
  // for..of walks code points; a lone surrogate comes out on its own and is escaped.
  for (const ch of text) {
    const short = ch === '"' || ch === "'" ? (ch === quote ? `\\${ch}` : ch) : SHORT_ESCAPES[ch];
    if (short !== undefined) out += short;
    else if (ch === ' ') out += ch;
    else if (ESCAPED.test(ch)) {
      for (let i = 0; i < ch.length; i++) out += hex4(ch.charCodeAt(i));
    } else out += ch;
  }
  return `${out}${quote}`;
}

const PLAIN_KEY = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** An object-literal key: bare when it is a plain identifier, else a string literal. */
export function propertyKey(key: string): string {
  // `__proto__: x` (bare or quoted) would set the prototype; a computed key makes an own property.
  if (key === '__proto__') return `[${stringLiteral(key)}]`;
  return PLAIN_KEY.test(key) ? key : stringLiteral(key);
}

export function numberLiteral(value: number): string {
  if (!Number.isFinite(value)) throw new Error(`Cannot export the number ${value}: it is not finite.`);
  return Object.is(value, -0) ? '-0' : String(value);
}

/** A value on one line: `{ a: 1, b: [2, 3] }`. */
export function inlineValue(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'boolean') return String(value);
  if (typeof value === 'number') return numberLiteral(value);
  if (typeof value === 'string') return stringLiteral(value);
  if (Array.isArray(value)) return `[${value.map(inlineValue).join(', ')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return '{}';
    return `{ ${entries.map(([k, v]) => `${propertyKey(k)}: ${inlineValue(v)}`).join(', ')} }`;
  }
  throw new Error(`Cannot export a value of type ${typeof value}.`);
}

/**
 * A value laid out as a formatter would: on one line when it fits in `width` columns from `column` (plus
 * `extra` characters after it), else one element or property per line, indented from `indent`.
 */
export function formatValue(
  value: unknown,
  indent: number,
  column: number,
  width: number,
  extra = 0,
): string {
  const inline = inlineValue(value);
  if (column + inline.length + extra <= width || typeof value !== 'object' || value === null) return inline;
  const pad = ' '.repeat(indent + 2);
  const close = ' '.repeat(indent);
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    const items = value.map((v) => `${pad}${formatValue(v, indent + 2, indent + 2, width, 1)},`);
    return `[\n${items.join('\n')}\n${close}]`;
  }
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
  if (entries.length === 0) return '{}';
  const lines = entries.map(([k, v]) => {
    const key = `${propertyKey(k)}: `;
    return `${pad}${key}${formatValue(v, indent + 2, indent + 2 + key.length, width, 1)},`;
  });
  return `{\n${lines.join('\n')}\n${close}}`;
}

/** Text safe inside a `//` comment: one line, printable, short. */
export function commentText(text: string, max = 100): string {
  const flat = [...text].map((ch) => (ESCAPED.test(ch) ? ' ' : ch)).join('');
  const chars = [...flat.trim()];
  return chars.length > max ? `${chars.slice(0, max - 1).join('')}…` : chars.join('');
}
