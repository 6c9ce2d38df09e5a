/** Shared by the constraint tests: the real cl100k vocabulary, and running text through a grammar. */
import { ChatTokenizer } from '../../src/chat/tokenizer.ts';
import { DEFAULT_SPECIAL_TOKEN_IDS, DEFAULT_VOCAB_SIZE } from '../../src/chat/special-tokens.ts';
import { TokenVocabulary } from '../../src/engine/constraint/vocabulary.ts';
import { initialThreads, step, SPECIAL_SYMBOL_BASE, type Frame } from '../../src/engine/constraint/matcher.ts';
import { GrammarBuilder, type GrammarNode } from '../../src/engine/constraint/grammar.ts';
import { compileSchema, JsonGrammar } from '../../src/chat/json-grammar.ts';

export const tokenizer = new ChatTokenizer({ encoding: 'cl100k_base', special_tokens: DEFAULT_SPECIAL_TOKEN_IDS });
export const EOT = tokenizer.special('endOfText');
export const TOOL_CALL = tokenizer.special('toolCall');

let cached: TokenVocabulary | undefined;
/** The served tokenizer's vocabulary (built once per test file: ~0.5 s). */
export function vocabulary(): TokenVocabulary {
  cached ??= new TokenVocabulary(DEFAULT_VOCAB_SIZE, (id) => (tokenizer.isKnown(id) ? tokenizer.tokenBytes(id) : undefined), [...tokenizer.specialIds]);
  return cached;
}

/** Bytes of `text` (UTF-8) and special tokens (ids), in order, as automaton symbols. */
export function symbols(...parts: Array<string | number | Uint8Array>): number[] {
  return parts.flatMap((p) => (typeof p === 'number' ? [SPECIAL_SYMBOL_BASE + p] : [...(typeof p === 'string' ? new TextEncoder().encode(p) : p)]));
}

/** Runs symbols through the grammar: 'complete', 'prefix' (accepted so far, not complete) or 'rejected'. */
export function run(root: GrammarNode, syms: number[]): 'complete' | 'prefix' | 'rejected' {
  let threads: readonly Frame[] = initialThreads(root);
  for (const s of syms) {
    threads = step(threads, s);
    if (threads.length === 0) return 'rejected';
  }
  return threads.some((t) => t.node === null) ? 'complete' : 'prefix';
}

/** A schema compiled on its own builder, checked and ready to run. */
export function schemaGrammar(schema: unknown): GrammarNode {
  const g = new GrammarBuilder();
  return compileSchema(new JsonGrammar(g), schema);
}
