import { Tiktoken, type TiktokenBPE } from 'js-tiktoken/lite';
import cl100k from 'js-tiktoken/ranks/cl100k_base';
import { BytePairEncoder } from './bpe.ts';
import { SPECIAL_TOKEN_NAMES, type SpecialTokenKey } from './special-tokens.ts';

const RANKS: Record<string, TiktokenBPE> = { cl100k_base: cl100k };
/** One encoder per encoding: ordinary tokens do not depend on a model's special tokens. */
const ENCODERS = new Map<string, BytePairEncoder>();

/** Texts up to this many characters are encoded in one go even by encodeTextAsync (well under a millisecond). */
const ASYNC_MIN_CHARS = 8192;
/** encodeTextAsync gives the event loop a turn after this many ms of work. */
const ASYNC_SLICE_MS = 4;

/**
 * Special tokens must be distinct ids outside the encoding's ordinary tokens:
 * a role token that shares an id with another, or that is an ordinary token,
 * would make the chat format ambiguous and the model's answers nonsense.
 */
function checkSpecialTokens(spec: TokenizerSpec, ordinary: Map<number, Uint8Array>): void {
  const byId = new Map<number, string>();
  for (const [name, id] of Object.entries(spec.special_tokens)) {
    const other = byId.get(id);
    if (other !== undefined) throw new Error(`special tokens ${other} and ${name} have the same id ${id}`);
    byId.set(id, name);
    if (ordinary.has(id)) {
      throw new Error(`special token ${name} has id ${id}, which is the ordinary ${spec.encoding} token ${JSON.stringify(new TextDecoder().decode(ordinary.get(id)))}`);
    }
  }
}

/** What a model's config.json says about its tokenizer. */
export interface TokenizerSpec {
  encoding: string;
  special_tokens: Record<string, number>;
}

/**
 * cl100k_base plus the chat format's special tokens.
 *
 * `encodeText` always encodes plain text: a user who types `<|assistant|>` or
 * `<|endoftext|>` gets ordinary tokens, never the special token. Special tokens
 * enter a sequence only through `special()`, i.e. only from the chat template.
 */
export class ChatTokenizer {
  private readonly bpe: Tiktoken;
  private readonly idsByName: Map<string, number>;
  private readonly namesById: Map<number, string>;
  /** token id → its bytes; js-tiktoken keeps this map but only exposes a lossy string decode. */
  private readonly bytesById: Map<number, Uint8Array>;
  readonly specialIds: ReadonlySet<number>;

  constructor(readonly spec: TokenizerSpec) {
    const ranks = RANKS[spec.encoding];
    if (!ranks) throw new Error(`unsupported tokenizer encoding "${spec.encoding}" (supported: ${Object.keys(RANKS).join(', ')})`);
    for (const name of Object.values(SPECIAL_TOKEN_NAMES)) {
      if (!(name in spec.special_tokens)) throw new Error(`tokenizer config lacks the special token ${name}`);
    }
    this.bpe = new Tiktoken(ranks, spec.special_tokens);
    this.idsByName = new Map(Object.entries(spec.special_tokens));
    this.namesById = new Map(Object.entries(spec.special_tokens).map(([n, id]) => [id, n]));
    const textMap = (this.bpe as unknown as { textMap?: Map<number, Uint8Array> }).textMap;
    if (!(textMap instanceof Map)) throw new Error('js-tiktoken no longer exposes its byte table (textMap); pin a compatible version');
    this.bytesById = textMap;
    this.specialIds = new Set(this.namesById.keys());
    checkSpecialTokens(spec, textMap);
    let encoder = ENCODERS.get(spec.encoding);
    if (!encoder) {
      encoder = new BytePairEncoder(textMap.entries(), ranks.pat_str);
      ENCODERS.set(spec.encoding, encoder);
    }
    this.encoder = encoder;
  }

  private readonly encoder: BytePairEncoder;

  /**
   * Plain-text encoding: special-token strings in `text` are ordinary text.
   * Same tokens as tiktoken, in O(n log n) even for one long run of a character (bpe.ts).
   */
  encodeText(text: string): number[] {
    if (text.length === 0) return [];
    return this.encoder.encode(text);
  }

  /**
   * encodeText for request input: a long text is encoded in slices of a few
   * milliseconds with a turn of the event loop between them, so a megabyte of
   * prompt delays other requests' streams by milliseconds, not seconds.
   */
  async encodeTextAsync(text: string): Promise<number[]> {
    if (text.length <= ASYNC_MIN_CHARS) return this.encodeText(text);
    const steps = this.encoder.steps(text);
    let sliceStart = performance.now();
    for (;;) {
      const r = steps.next();
      if (r.done) return r.value;
      if (performance.now() - sliceStart >= ASYNC_SLICE_MS) {
        await new Promise((resolve) => setImmediate(resolve));
        sliceStart = performance.now();
      }
    }
  }

  special(key: SpecialTokenKey): number {
    return this.specialId(SPECIAL_TOKEN_NAMES[key]);
  }

  specialId(name: string): number {
    const id = this.idsByName.get(name);
    if (id === undefined) throw new Error(`unknown special token ${name}`);
    return id;
  }

  isSpecial(id: number): boolean {
    return this.namesById.has(id);
  }

  specialName(id: number): string | undefined {
    return this.namesById.get(id);
  }

  /** The raw bytes of one token (a special token's bytes are its name). Unknown ids give no bytes. */
  tokenBytes(id: number): Uint8Array {
    const bytes = this.bytesById.get(id);
    if (bytes) return bytes;
    const name = this.namesById.get(id);
    return name ? new TextEncoder().encode(name) : new Uint8Array(0);
  }

  /** Whole-sequence decode; invalid UTF-8 (a sequence cut mid-character) becomes U+FFFD. */
  decode(ids: readonly number[]): string {
    return this.bpe.decode(ids as number[]);
  }

  /** True for ids the tokenizer can decode (ordinary or special). */
  isKnown(id: number): boolean {
    return this.bytesById.has(id) || this.namesById.has(id);
  }
}
