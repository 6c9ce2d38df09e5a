/**
 * OpenAI's tools, tool_choice, parallel_tool_calls and response_format → the
 * grammar constraint the engine enforces on a chat reply (chat/reply-grammar.ts).
 *
 * A request's grammar is compiled once, within the limits below (each a 400
 * naming the limit when exceeded, checked before or while compiling, never
 * after), and its constraint carries the cache of masks already computed,
 * which is what makes a repeated request fast: constraints are kept per model
 * and request shape, least recently used out once their estimated bytes (the
 * grammar, its masks, its automaton frames) pass the cache's budget. The token
 * vocabulary behind them (a byte trie of 100k tokens, ~0.5 s to build) is
 * built once per tokenizer: at start-up (prepareConstraints), so that no
 * request waits for it.
 */
import { GrammarConstraint } from '../engine/constraint/grammar-constraint.ts';
import { TokenVocabulary } from '../engine/constraint/vocabulary.ts';
import type { TokenConstraint } from '../engine/types.ts';
import { nesting } from '../chat/json-grammar.ts';
import { DOT_TEXT, STRING_TEXT } from '../chat/json-string.ts';
import { replyGrammar, ReplyLimitError, type ReplySpec, type ReplyTool, type ToolChoice } from '../chat/reply-grammar.ts';
import { TemplateError, type ToolSpec } from '../chat/template.ts';
import type { ChatCompletionRequest } from '../protocol/chat.ts';
import { ApiError } from '../protocol/errors.ts';
import type { ServedModel } from './registry.ts';

/** What one request's constraint may cost (configuration: see src/config.ts). */
export interface GrammarLimits {
  /** Tools per request (OpenAI: 128). */
  maxTools: number;
  /** Nesting (objects and arrays) of one schema document. */
  maxSchemaDepth: number;
  /** Estimated bytes of one request's grammar. */
  maxGrammarBytes: number;
  /** Automaton threads one position of the grammar may open at once (anyOf branches, optional properties…). */
  maxGrammarBranches: number;
  /** States of one string pattern/format or number automaton. */
  maxPatternStates: number;
  /** Estimated bytes of all cached constraints together. */
  cacheBytes: number;
  /** Estimated bytes of one constraint's masks and automaton frames. */
  constraintBytes: number;
}

export const DEFAULT_GRAMMAR_LIMITS: GrammarLimits = {
  maxTools: 128,
  maxSchemaDepth: 64,
  maxGrammarBytes: 8 * 2 ** 20,
  maxGrammarBranches: 256,
  maxPatternStates: 8192,
  cacheBytes: 256 * 2 ** 20,
  constraintBytes: 32 * 2 ** 20,
};

/** The configuration flag of each limit, for error messages. */
const FLAGS = { depth: 'max-schema-depth', bytes: 'max-grammar-bytes', branching: 'max-grammar-branches', automaton: 'max-pattern-states' } as const;

/** Where the serving layer reports what it did not enforce (a pino logger's warn). */
export type LoosenedLog = (fields: Record<string, unknown>, message: string) => void;

const vocabularies = new Map<string, TokenVocabulary>();

/** Builds the model's token vocabulary for constraints (and its partitions for string bodies) now rather than on the first request that needs it; returns the ms it took. */
export function prepareConstraints(model: ServedModel): number {
  const started = performance.now();
  const vocabulary = vocabularyOf(model);
  for (const loop of [STRING_TEXT, DOT_TEXT]) vocabulary.partition(loop.name, loop.keep);
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
  return { kind: 'schema', schema: spec.schema ?? true, strict: spec.strict === true };
}

/** tool_choice as the grammar takes it; "none" never gets here (the tools are hidden instead). */
export function toolChoice(choice: NonNullable<ChatCompletionRequest['tool_choice']>): ToolChoice {
  return typeof choice === 'object' ? { name: choice.function.name } : (choice as ToolChoice);
}

/**
 * The tools a reply's prompt shows: none with tool_choice "none" (the model
 * cannot call what it does not see). A choice that needs tools without any
 * is a 400 on `param`.
 */
export function visibleTools<T extends ToolSpec>(tools: T[] | undefined, choice: unknown, param = 'tool_choice'): T[] | undefined {
  if (choice !== 'none' && choice !== 'auto' && !tools?.length) throw ApiError.invalid('tool_choice requires tools', param);
  return choice === 'none' || !tools?.length ? undefined : tools;
}

/** A reply never contains another message's role token, nor a tool call when the prompt shows no tools: banned whatever the request's logit_bias says. */
export function replyLogitBias(model: ServedModel, requested: ReadonlyMap<number, number> | undefined, shown: readonly ToolSpec[] | undefined): Map<number, number> {
  const bias = new Map(requested ?? []);
  for (const key of ['system', 'user', 'assistant', 'tool', 'tools'] as const) bias.set(model.tokenizer.special(key), -100);
  if (shown === undefined || shown.length === 0) bias.set(model.tokenizer.special('toolCall'), -100);
  return bias;
}

/** What a request asks of its reply, for ReplyConstraints.forRequest. */
export interface ReplyRequest {
  /** Every tool of the request (checked even when hidden, as OpenAI does). */
  tools?: ReplyTool[];
  /** visibleTools(tools, …). */
  shown?: ReplyTool[];
  choice: ToolChoice;
  parallel: boolean;
  json?: ReplySpec['json'];
  /** Calls only to these of the shown tools (the Responses API's allowed_tools); absent: any. */
  callable?: ReplyTool[];
}

export class ReplyConstraints {
  private readonly cache = new Map<string, GrammarConstraint>();

  constructor(
    readonly limits: GrammarLimits = DEFAULT_GRAMMAR_LIMITS,
    private readonly log?: LoosenedLog,
  ) {}

  /**
   * The checks that cost nothing, for a request's tools and schema: how many
   * tools, how deep each schema nests (before anything walks a schema
   * recursively: serialising one 10,000 levels deep overflows the stack).
   * Throws ApiError (400).
   */
  checkShape(tools: readonly ToolSpec[] | undefined, format: ChatCompletionRequest['response_format']): void {
    const { maxTools, maxSchemaDepth } = this.limits;
    if (tools && tools.length > maxTools) {
      throw ApiError.invalid(
        `Invalid 'tools': array too long. Expected an array with maximum length ${maxTools}, but got an array with length ${tools.length} instead (--max-tools).`,
        'tools',
        'array_above_max_length',
      );
    }
    const deep = (schema: unknown, param: string) => {
      if (nesting(schema, maxSchemaDepth) > maxSchemaDepth) {
        throw ApiError.invalid(`${param}: the schema nests deeper than ${maxSchemaDepth} levels (--${FLAGS.depth})`, param, 'schema_too_deep');
      }
    };
    tools?.forEach((t, i) => deep(t.parameters, `tools[${i}].function.parameters`));
    if (format?.type === 'json_schema' && format.json_schema) deep(format.json_schema.schema, 'response_format.json_schema.schema');
  }

  /** The constraint for a reply spec; undefined when it constrains nothing. Throws ApiError (400) for a spec that cannot be enforced or is over the limits. */
  forReply(model: ServedModel, spec: ReplySpec): TokenConstraint | undefined {
    if (!spec.tools && !spec.json) return undefined;
    const key = `${model.id}\u0000${JSON.stringify(spec, (k, v) => (k === 'list' ? (v as ReplyTool[]).map((t) => [t.name, t.parameters, t.strict === true]) : v))}`;
    let constraint = this.cache.get(key);
    if (constraint) {
      this.cache.delete(key); // re-inserted below: the map's order is least recently used first
    } else {
      const tokenizer = model.tokenizer;
      const { maxSchemaDepth, maxGrammarBytes, maxGrammarBranches, maxPatternStates, constraintBytes } = this.limits;
      const loosened: Array<{ param: string; keyword: string; at: string; reason: string }> = [];
      const vocabulary = vocabularyOf(model);
      let grammar;
      try {
        grammar = replyGrammar(
          spec,
          { endOfText: tokenizer.special('endOfText'), toolCall: tokenizer.special('toolCall') },
          {
            maxDepth: maxSchemaDepth,
            maxBytes: maxGrammarBytes,
            maxBranching: maxGrammarBranches,
            automata: { dfaStates: maxPatternStates, nfaStates: 8 * maxPatternStates },
            // Literal parts (keys, names, the call's envelope) count in tokens: a call that fits is not refused for its bytes.
            segment: (bytes) => vocabulary.minTokens(bytes),
            onLoosened: (param, l) => loosened.push({ param, ...l }),
          },
        );
      } catch (e) {
        if (e instanceof ReplyLimitError) throw ApiError.invalid(`${e.message} (--${FLAGS[e.limit]})`, e.param, 'schema_too_complex');
        if (e instanceof TemplateError) throw ApiError.invalid(e.message, e.param);
        throw e;
      }
      // Logged once, when the grammar is compiled (later requests of the same shape get the same grammar).
      if (loosened.length > 0) this.log?.({ model: model.id, loosened: loosened.slice(0, 20), count: loosened.length }, 'schema keywords not enforced (not strict)');
      constraint = new GrammarConstraint(grammar, vocabulary, { maxBytes: constraintBytes, maxThreads: 2 * maxGrammarBranches });
    }
    this.cache.set(key, constraint);
    this.evict(constraint);
    return constraint;
  }

  /** The constraint for a request's reply (undefined: free text); hidden tools are compiled all the same, so a bad one is still a 400. */
  forRequest(model: ServedModel, r: ReplyRequest): TokenConstraint | undefined {
    const constraint = this.forReply(model, { tools: r.shown && { list: r.callable ?? r.shown, choice: r.choice, parallel: r.parallel }, json: r.json });
    if (!r.shown && r.tools?.length) this.forReply(model, { tools: { list: r.tools, choice: 'auto', parallel: true } });
    return constraint;
  }

  /** Estimated bytes of the cached constraints (they grow as their masks are computed). */
  get bytes(): number {
    let total = 0;
    for (const c of this.cache.values()) total += c.bytes;
    return total;
  }

  /** Least recently used constraints out until the cache fits its budget (never `keep`, the one just handed out). */
  private evict(keep: GrammarConstraint): void {
    let total = this.bytes;
    for (const [key, c] of this.cache) {
      if (total <= this.limits.cacheBytes) break;
      if (c === keep) continue;
      this.cache.delete(key);
      total -= c.bytes;
    }
  }
}
