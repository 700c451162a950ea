/** Valid, unique, unsurprising TypeScript identifiers from node labels. */

// Reserved and contextual words, names with special meaning on objects, and globals an exported file
// uses or a reader would not expect to see shadowed.
const RESERVED = new Set(
  `break case catch class const continue debugger default delete do else enum export extends false finally
  for function if import in instanceof new null return super switch this throw true try typeof var void
  while with implements interface let package private protected public static yield await async of get set
  abstract any as asserts bigint boolean declare infer is keyof module namespace never number object
  readonly require satisfies string symbol type undefined unique unknown accessor out override from global
  arguments eval constructor prototype toString valueOf hasOwnProperty isPrototypeOf propertyIsEnumerable
  toLocaleString __proto__ __defineGetter__ __defineSetter__ __lookupGetter__ __lookupSetter__ globalThis
  window self process console exports NaN Infinity Object Array Function Promise Error Math JSON Symbol
  Number String Boolean Date Map Set`
    .split(/\s+/)
    .filter(Boolean),
);

const MAX_LENGTH = 40;
const MAX_WORDS = 4;

/** `"Value head (v2)"` -> `valueHeadV2`; `"GAE"` -> `gae`; `"2nd critic"` -> `node2ndCritic`. */
export function camelIdentifier(text: string): string {
  // "Critic's head" reads as "critics head"; long labels keep their first few words.
  const words = (text.replace(/['\u2019]/g, '').match(/[A-Za-z0-9]+/g) ?? []).slice(0, MAX_WORDS);
  let name = words
    .map((word, i) => {
      if (i === 0)
        return word === word.toUpperCase() ? word.toLowerCase() : word[0].toLowerCase() + word.slice(1);
      return word[0].toUpperCase() + word.slice(1);
    })
    .join('')
    .slice(0, MAX_LENGTH);
  if (/^[0-9]/.test(name)) name = `node${name}`.slice(0, MAX_LENGTH);
  return name;
}

/** Hands out identifiers, never the same twice and never one of `taken` or a reserved word. */
export class IdentifierPool {
  private readonly used: Set<string>;

  constructor(taken: Iterable<string> = []) {
    this.used = new Set(taken);
  }

  /** The first candidate that yields a name (e.g. label, then id, then type), made unique. */
  claim(candidates: string[], fallback = 'node'): string {
    let base = fallback;
    for (const candidate of candidates) {
      const name = camelIdentifier(candidate);
      if (name) {
        base = name;
        break;
      }
    }
    if (RESERVED.has(base)) base = `${base.replace(/^_+/, '') || 'x'}Node`;
    let name = base;
    for (let n = 2; this.used.has(name) || RESERVED.has(name); n++) name = `${base}${n}`;
    this.used.add(name);
    return name;
  }
}
