/**
 * The checkpoint's own tokenizer (`tokenizer.json` with `tokenizer_config.json`) through
 * @huggingface/tokenizers, and its chat template (Jinja, in `tokenizer_config.json`) through
 * @huggingface/jinja.
 */
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { CheckpointError } from './safetensors.ts';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

function tokenString(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return undefined;
}

export class HfTokenizer {
  private readonly tokenizer: Tokenizer;
  private readonly template?: Template;
  readonly bosToken?: string;
  readonly eosToken?: string;
  readonly bosId?: number;
  readonly eosIds: number[];
  readonly vocabSize: number;

  constructor(
    tokenizerJson: unknown,
    tokenizerConfig: Record<string, unknown>,
    configBos?: number,
    configEos: number[] = [],
  ) {
    try {
      this.tokenizer = new Tokenizer(tokenizerJson as object, tokenizerConfig);
    } catch (error) {
      throw new CheckpointError(
        'tokenizer.json',
        `cannot be read as a tokenizer (${(error as Error).message})`,
      );
    }
    this.bosToken = tokenString(tokenizerConfig.bos_token);
    this.eosToken = tokenString(tokenizerConfig.eos_token);
    this.bosId =
      (this.bosToken !== undefined ? this.tokenizer.token_to_id(this.bosToken) : undefined) ?? configBos;
    const eos = this.eosToken !== undefined ? this.tokenizer.token_to_id(this.eosToken) : undefined;
    this.eosIds = [...new Set([...(eos !== undefined ? [eos] : []), ...configEos])];
    this.vocabSize = this.tokenizer.get_vocab(true).size;
    const template = tokenizerConfig.chat_template;
    if (typeof template === 'string') {
      try {
        this.template = new Template(template);
      } catch (error) {
        throw new CheckpointError(
          'tokenizer_config.json',
          `field chat_template does not parse (${(error as Error).message})`,
        );
      }
    }
  }

  get hasChatTemplate(): boolean {
    return this.template !== undefined;
  }

  /** Token ids of `text` (no special tokens added; special-token text in it, e.g. `<|im_start|>`, is matched). */
  encode(text: string): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids;
  }

  decode(ids: ArrayLike<number>): string {
    return this.tokenizer.decode(Array.from(ids), {
      skip_special_tokens: true,
      clean_up_tokenization_spaces: false,
    });
  }

  tokenText(id: number): string {
    return this.tokenizer.decode([id], { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  }

  /** The chat template rendered for `messages`, ending with the assistant's turn opened. */
  applyChatTemplate(messages: ChatMessage[]): string {
    if (!this.template) throw new Error('this tokenizer has no chat template');
    return this.template.render({
      messages,
      add_generation_prompt: true,
      bos_token: this.bosToken ?? '',
      eos_token: this.eosToken ?? '',
    });
  }
}
