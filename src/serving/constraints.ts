/**
 * OpenAI's tools, tool_choice, parallel_tool_calls and response_format → the
 * grammar constraint the engine enforces on a chat reply (chat/reply-grammar.ts).
 *
 * Compiling a grammar is cheap, but its constraint carries the cache of masks
 * already computed, which is what makes a repeated request fast: constraints are
 * kept per model and request shape (least recently used out). The token
 * vocabulary behind them (a byte trie of 100k tokens, ~0.5 s to build) is
 * built once per tokenizer: at start-up (prepareConstraints), so that no
 * request waits for it.
 */
import { GrammarConstraint } from '../engine/constraint/grammar-constraint.ts';
import { TokenVocabulary } from '../engine/constraint/vocabulary.ts';
import type { TokenConstraint } from '../engine/types.ts';
import { replyGrammar, type ReplySpec, type ToolChoice } from '../chat/reply-grammar.ts';
import type { ToolSpec } from '../chat/template.ts';
import type { ChatCompletionRequest } from '../protocol/chat.ts';
import { ApiError } from '../protocol/errors.ts';
import type { ServedModel } from './registry.ts';
import { asInvalidRequest } from './util.ts';

const CACHED_CONSTRAINTS = 64;
const vocabularies = new Map<string, TokenVocabulary>();

/** Builds the model's token vocabulary for constraints now rather than on the first request that needs it; returns the ms it took. */
export function prepareConstraints(model: ServedModel): number {
  const started = performance.now();
  vocabularyOf(model);
  return performance.now() - started;
}

function vocabularyOf(model: ServedModel): TokenVocabulary {
  const { tokenizer } = model;
  const key = `${model.info.vocabSize}|${tokenizer.spec.encoding}|${JSON.stringify(tokenizer.spec.special_tokens)}`;
  let vocabulary = vocabularies.get(key);
  if (!vocabulary) {
    vocabulary = new TokenVocabulary(model.info.vocabSize, (id) => (tokenizer.isKnown(id) ? tokenizer.tokenBytes(id) : undefined), [...tokenizer.specialIds]);
    vocabularies.set(key, vocabulary);
  }
  return vocabulary;
}

/** response_format → what the reply's content must be (undefined: free text). */
export function jsonReply(format: ChatCompletionRequest['response_format']): ReplySpec['json'] {
  if (!format || format.type === 'text') return undefined;
  if (format.type === 'json_object') return { kind: 'object' };
  const spec = format.json_schema;
  if (!spec) throw ApiError.invalid('response_format.json_schema is required when response_format.type is "json_schema"', 'response_format.json_schema', 'missing_required_parameter');
  // OpenAI makes the schema optional; without one, any JSON value will do.
  return { kind: 'schema', schema: spec.schema ?? true };
}

/** tool_choice as the grammar takes it; "none" never gets here (the tools are hidden instead). */
export function toolChoice(choice: NonNullable<ChatCompletionRequest['tool_choice']>): ToolChoice {
  return typeof choice === 'object' ? { name: choice.function.name } : (choice as ToolChoice);
}

export class ReplyConstraints {
  private readonly cache = new Map<string, GrammarConstraint>();

  /** The constraint for a reply spec; undefined when it constrains nothing. Throws ApiError (400) for a spec that cannot be enforced. */
  forReply(model: ServedModel, spec: ReplySpec): TokenConstraint | undefined {
    if (!spec.tools && !spec.json) return undefined;
    const key = `${model.id}\u0000${JSON.stringify(spec, (k, v) => (k === 'list' ? (v as ToolSpec[]).map((t) => [t.name, t.parameters]) : v))}`;
    let constraint = this.cache.get(key);
    if (constraint) {
      this.cache.delete(key); // re-inserted below: the map's order is least recently used first
    } else {
      const tokenizer = model.tokenizer;
      const grammar = asInvalidRequest(() => replyGrammar(spec, { endOfText: tokenizer.special('endOfText'), toolCall: tokenizer.special('toolCall') }));
      constraint = new GrammarConstraint(grammar, vocabularyOf(model));
      if (this.cache.size >= CACHED_CONSTRAINTS) this.cache.delete(this.cache.keys().next().value!);
    }
    this.cache.set(key, constraint);
    return constraint;
  }
}
