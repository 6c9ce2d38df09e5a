/**
 * The grammar of an assistant reply in the chat format (template.ts) when the
 * request declares tools or asks for JSON content, for the engine to enforce
 * token by token.
 *
 * A reply is content, then "\n" and <|endoftext|>; a reply that calls tools is
 * (optional content, then) one or more `<|tool_call|>` + compact
 * `{"name":"…","arguments":{…}}`, then "\n" and <|endoftext|>:
 *
 *   tool choice "auto"       any content, then <|endoftext|> or the calls: the
 *                            grammar leaves the text free and takes over when
 *                            the model emits <|tool_call|>
 *   "required"               the calls, from the first token
 *   a named function         one call of that function, from the first token
 *   JSON content             content is compact JSON (any object, or valid against
 *                            a schema); under "auto" the model may call tools instead
 *
 * A call's name is one of the declared tools and its arguments match that
 * tool's parameters schema; with parallel calls allowed, another
 * <|tool_call|> may follow each call.
 */
import { GrammarBuilder, GrammarLimitError, type Grammar, type GrammarLimits, type GrammarNode } from '../engine/constraint/grammar.ts';
import { firstBytes } from '../engine/constraint/matcher.ts';
import { compileSchema, declaredTypes, JsonGrammar, SchemaError, type Loosening, type SchemaOptions } from './json-grammar.ts';
import { TemplateError, type ToolSpec } from './template.ts';

export type ToolChoice = 'auto' | 'required' | { name: string };

/** A tool as the grammar takes it: strict (OpenAI's function.strict) holds it to everything its schema says, or refuses it. */
export type ReplyTool = ToolSpec & { strict?: boolean };

export interface ReplySpec {
  /** Tools the model may call, in request order (errors name them by index). */
  tools?: { list: readonly ReplyTool[]; choice: ToolChoice; parallel: boolean };
  /** The content must be JSON: any object, or a value valid against `schema` (strict: see ReplyTool). */
  json?: { kind: 'object' } | { kind: 'schema'; schema: unknown; strict?: boolean };
}

export interface ReplyTokens {
  endOfText: number;
  toolCall: number;
}

/** What a tool without `parameters` takes: nothing (OpenAI: "an empty parameter list"). */
const NO_PARAMETERS = { type: 'object', properties: {} };

/** The costs a reply grammar may reach (see GrammarBuilder and compileSchema); what a non-strict schema is not held to is reported to onLoosened. */
export type ReplyLimits = GrammarLimits & Omit<SchemaOptions, 'strict' | 'onLoosen'> & { onLoosened?: (param: string, l: Loosening) => void };

/** A spec over one of the cost limits: a 400 that names the limit. */
export class ReplyLimitError extends TemplateError {
  constructor(
    message: string,
    param: string,
    readonly limit: 'depth' | 'bytes' | 'branching' | 'automaton',
  ) {
    super(message, param);
  }
}

/** Throws TemplateError (a 400 naming the tool or field) for a spec that cannot be enforced, ReplyLimitError for one over the limits. */
export function replyGrammar(spec: ReplySpec, tokens: ReplyTokens, limits: ReplyLimits = {}): Grammar {
  const g = new GrammarBuilder(limits);
  try {
    return buildReply(g, spec, tokens, limits);
  } catch (e) {
    // Over the byte limit outside any one schema (many tools, long names): the tools as a whole.
    if (e instanceof GrammarLimitError) throw new ReplyLimitError(`the tools' grammar would take more than ${limits.maxBytes} bytes`, 'tools', e.limit);
    throw e;
  }
}

function buildReply(g: GrammarBuilder, spec: ReplySpec, tokens: ReplyTokens, limits: ReplyLimits): Grammar {
  const json = new JsonGrammar(g);
  const end = g.seq(g.bytes('\n'), g.special(tokens.endOfText));
  const content = spec.json && g.seq(jsonContent(json, spec.json, limits), end);
  if (!spec.tools) {
    if (!content) throw new Error('a reply grammar needs tools or JSON content');
    return g.build(content);
  }
  const { list, choice, parallel } = spec.tools;
  checkNames(list);
  const calls = list.map((tool, i) => g.seq(g.bytes(`{"name":${JSON.stringify(tool.name)},"arguments":`), toolArguments(json, tool, i, limits), g.bytes('}')));
  if (typeof choice === 'object') {
    const i = list.findIndex((t) => t.name === choice.name);
    if (i < 0) throw new TemplateError(`tool_choice names the function "${choice.name}", which is not among the tools`, 'tool_choice.function.name');
    return g.build(g.seq(g.special(tokens.toolCall), calls[i], end));
  }
  const call = g.seq(g.special(tokens.toolCall), g.choice(...calls));
  const section = g.seq(call, parallel ? g.star(call) : g.seq(), end);
  if (choice === 'required') return g.build(section);
  return g.build(content ? g.choice(content, section) : g.seq(g.anyBytes(), g.choice(g.special(tokens.endOfText), section)));
}

/** Throws TemplateError naming the first duplicate function name. */
function checkNames(tools: readonly ToolSpec[]): void {
  const seen = new Map<string, number>();
  tools.forEach((tool, i) => {
    const first = seen.get(tool.name);
    if (first !== undefined) throw new TemplateError(`tools[${i}] "${tool.name}": duplicate function name (tools[${first}] has it too)`, `tools[${i}].function.name`);
    seen.set(tool.name, i);
  });
}

function toolArguments(json: JsonGrammar, tool: ReplyTool, i: number, limits: ReplyLimits): GrammarNode {
  const param = `tools[${i}].function.parameters`;
  const node = schemaNode(json, tool.parameters ?? NO_PARAMETERS, tool.strict === true, (reason) => `tools[${i}] "${tool.name}": parameters: ${reason}`, param, limits, () => json.anyObject());
  if (firstBytes(node).some((b) => b !== 0x7b)) {
    throw new TemplateError(`tools[${i}] "${tool.name}": parameters must describe a JSON object (type "object")`, param);
  }
  return node;
}

function jsonContent(json: JsonGrammar, spec: NonNullable<ReplySpec['json']>, limits: ReplyLimits): GrammarNode {
  if (spec.kind === 'object') return json.anyObject();
  const param = 'response_format.json_schema.schema';
  return schemaNode(json, spec.schema, spec.strict === true, (reason) => `${param}: ${reason}`, param, limits, () => json.anyOfTypes(declaredTypes(spec.schema)));
}

/**
 * A schema's grammar. Not strict, a schema over a cost limit (but its
 * nesting: it could not even be rendered safely) is loosened to `loose`: any
 * value of its declared type.
 */
function schemaNode(
  json: JsonGrammar,
  schema: unknown,
  strict: boolean,
  describe: (reason: string) => string,
  param: string,
  limits: ReplyLimits,
  loose: () => GrammarNode,
): GrammarNode {
  const mark = json.g.mark();
  try {
    return compileSchema(json, schema, { ...limits, strict, onLoosen: (l) => limits.onLoosened?.(param, l) });
  } catch (e) {
    if (!(e instanceof SchemaError)) throw e;
    if (e.limit && e.limit !== 'depth' && !strict) {
      json.rollback(mark);
      limits.onLoosened?.(param, { keyword: '', at: e.at, reason: `the whole schema: ${e.reason}` });
      return loose();
    }
    throw e.limit ? new ReplyLimitError(describe(e.message), param, e.limit) : new TemplateError(describe(e.message), param);
  }
}
