/**
 * Character-level tokenizer owned by the LLM agent: id 0 is the beginning-of-sequence marker (also used
 * as padding, which attention masks out), id 1 is the newline, ids 2..96 are the printable ASCII
 * characters ' '..'~'. Every id decodes to exactly one character, so text and tokens convert both ways
 * without loss (the rollout can re-encode a transcript and get the sampled ids back). Characters outside
 * the vocabulary are refused with an error rather than silently replaced.
 */
export const BOS = 0;
export const NEWLINE = 1;
const FIRST_PRINTABLE = 32;
const LAST_PRINTABLE = 126;
/** The character BOS decodes to (STX): never typed by people, but keeps decode/encode a bijection. */
const BOS_CHAR = '\u0002';

export class CharTokenizer {
  readonly vocabSize = 2 + (LAST_PRINTABLE - FIRST_PRINTABLE + 1);
  private readonly strings: string[];

  constructor() {
    this.strings = [BOS_CHAR, '\n'];
    for (let c = FIRST_PRINTABLE; c <= LAST_PRINTABLE; c++) this.strings.push(String.fromCharCode(c));
  }

  /** Token ids of `text`, with BOS first when `bos` is set. Throws on characters outside the vocabulary. */
  encode(text: string, bos = true): Int32Array {
    const out = new Int32Array(text.length + (bos ? 1 : 0));
    let k = 0;
    if (bos) out[k++] = BOS;
    for (let i = 0; i < text.length; i++) {
      const id = this.id(text.charCodeAt(i));
      if (id < 0) {
        throw new Error(
          `character ${JSON.stringify(text[i])} (code ${text.charCodeAt(i)}) is outside the tokenizer's vocabulary (printable ASCII and newline)`,
        );
      }
      out[k++] = id;
    }
    return out;
  }

  decode(tokens: ArrayLike<number>): string {
    let text = '';
    for (let i = 0; i < tokens.length; i++) text += this.tokenText(tokens[i]);
    return text;
  }

  tokenText(id: number): string {
    return this.strings[id] ?? '';
  }

  private id(code: number): number {
    if (code === 10) return NEWLINE;
    if (code === 2) return BOS;
    if (code >= FIRST_PRINTABLE && code <= LAST_PRINTABLE) return code - FIRST_PRINTABLE + 2;
    return -1;
  }
}
