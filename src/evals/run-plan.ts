/**
 * A run's data source: checked when the run is created (a 400 for what this
 * server cannot run), and turned into the plan each item follows: validate
 * the item against the eval's item_schema, sample the model (completions),
 * grade.
 *
 *   jsonl        items (and their samples, if any) from the request or a stored file; nothing is generated
 *   completions  items as above; each item's messages (a template over the item, or a list the item holds)
 *                go to a served model with the run's sampling parameters; graders read the reply as {{sample.…}}
 *   responses    refused (it needs the Responses API's stored state)
 */
import { Type } from 'typebox';
import { FunctionTool, ResponseFormat } from '../protocol/chat.ts';
import { ApiError } from '../protocol/errors.ts';
import {
  CompletionsRunDataSource,
  JsonlRunDataSource,
  type RunDataSource,
} from '../protocol/evals.ts';
import { EVAL_SAMPLING_DEFAULTS, messageTemplates, type ChatTurn, type Criterion } from './graders.ts';
import { compileItemSchema, type ItemSchemaLimits, type ItemValidator } from './item-schema.ts';
import { checkShape } from './shape.ts';

/** What an eval keeps of its data_source_config. */
export interface StoredDataSourceConfig {
  type: 'custom';
  item_schema: Record<string, unknown>;
  include_sample_schema: boolean;
}

/** The sample namespace graders read (documented in the eval's data_source_config schema). */
export const SAMPLE_SCHEMA = {
  type: 'object',
  properties: {
    model: { type: 'string' },
    choices: { type: 'array', items: { type: 'object', properties: { index: { type: 'integer' }, message: { type: 'object' }, finish_reason: { type: 'string' } } } },
    output_text: { type: 'string' },
    output_json: { description: 'output_text parsed as JSON, when it is JSON' },
    output_tools: { type: 'array', items: { type: 'object' } },
    finish_reason: { type: 'string' },
  },
  required: ['model', 'choices', 'output_text'],
};

/** The combined schema an Eval object shows (OpenAI's form): the item, and the sample when runs produce one. */
export function dataSourceSchema(c: StoredDataSourceConfig): Record<string, unknown> {
  const properties: Record<string, unknown> = { item: c.item_schema };
  if (c.include_sample_schema) properties.sample = SAMPLE_SCHEMA;
  return { type: 'object', properties, required: c.include_sample_schema ? ['item', 'sample'] : ['item'] };
}

const SamplingChecks = Type.Object({ response_format: Type.Optional(ResponseFormat), tools: Type.Optional(Type.Array(FunctionTool)) });

/**
 * The request's data source, checked; throws ApiError (400) naming the
 * field. The models and the stored file it names are checked by the caller
 * (they need the registry and the store).
 */
export function parseDataSource(raw: Record<string, unknown>, body: unknown, criteria: Criterion[], opts: { maxItems: number }): RunDataSource {
  const type = raw.type;
  if (type === 'responses') {
    throw ApiError.invalid("Invalid 'data_source.type': responses data sources are not supported (they need the Responses API's stored responses); use completions or jsonl.", 'data_source.type', 'unsupported_data_source');
  }
  if (type !== 'jsonl' && type !== 'completions') {
    throw ApiError.invalid(`Invalid 'data_source.type': must be jsonl or completions (got ${JSON.stringify(type)}).`, 'data_source.type', 'invalid_value');
  }
  const sourceType = (raw.source as { type?: unknown } | undefined)?.type;
  if (sourceType === 'stored_completions' || sourceType === 'responses') {
    throw ApiError.invalid(`Invalid 'data_source.source.type': ${sourceType} sources need stored logs, which this server does not keep; use file_content or file_id.`, 'data_source.source.type', 'unsupported_data_source');
  }
  if (raw.source !== undefined && sourceType !== 'file_content' && sourceType !== 'file_id') {
    throw ApiError.invalid(`Invalid 'data_source.source.type': must be file_content or file_id (got ${JSON.stringify(sourceType)}).`, 'data_source.source.type', 'invalid_value');
  }
  const inputType = (raw.input_messages as { type?: unknown } | undefined)?.type;
  if (type === 'completions' && raw.input_messages !== undefined && inputType !== 'template' && inputType !== 'item_reference') {
    throw ApiError.invalid(`Invalid 'data_source.input_messages.type': must be template or item_reference (got ${JSON.stringify(inputType)}).`, 'data_source.input_messages.type', 'invalid_value');
  }
  checkShape(type === 'jsonl' ? JsonlRunDataSource : CompletionsRunDataSource, raw, '/data_source', body);
  const ds = structuredClone(raw) as unknown as RunDataSource;
  if (ds.source.type === 'file_content' && ds.source.content.length > opts.maxItems) {
    throw ApiError.invalid(`A run takes at most ${opts.maxItems} items (--eval-max-items); data_source.source.content has ${ds.source.content.length}.`, 'data_source.source.content', 'too_many_items');
  }
  if (ds.type === 'completions') {
    if (ds.input_messages.type === 'template') {
      const turns = messageTemplates(ds.input_messages.template, 'data_source.input_messages.template', false, 'input messages are what the sample is made from');
      // Kept (and shown) as OpenAI echoes them: EvalItem messages with one text part, which its schema tells apart from an EasyInputMessage.
      ds.input_messages = { type: 'template', template: turns.map((t) => ({ type: 'message', role: t.role, content: { type: t.role === 'assistant' ? 'output_text' : 'input_text', text: t.content } })) };
    } else if (!/^item\.[A-Za-z0-9_.-]+$/.test(ds.input_messages.item_reference)) {
      throw ApiError.invalid(`Invalid 'data_source.input_messages.item_reference': must name a field of the item, as item.messages (got ${JSON.stringify(ds.input_messages.item_reference)}).`, 'data_source.input_messages.item_reference', 'invalid_value');
    }
    const sp = ds.sampling_params ?? {};
    checkShape(SamplingChecks, { response_format: sp.response_format, tools: sp.tools }, '/data_source/sampling_params', body);
  } else {
    const needsModel = criteria.find((c) => (c.type === 'mmrec_perplexity' || c.type === 'mmrec_token_accuracy') && !c.model);
    if (needsModel) {
      throw ApiError.invalid(`The testing criterion "${needsModel.name}" (${needsModel.type}) names no model, and a jsonl data source samples none: give the criterion a model.`, 'data_source.type', 'missing_model');
    }
  }
  return ds;
}

/** Checks a file's items as a run reads them: one JSON object {"item": {…}, "sample"?: {…}} per non-blank line. */
export function parseItemLine(line: string): { source: { item: Record<string, unknown>; sample?: Record<string, unknown> } | null; error: string | null } {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (e) {
    return { source: null, error: `the line is not valid JSON (${(e as Error).message})` };
  }
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObject(value) || !isObject(value.item)) return { source: null, error: 'each line must be a JSON object {"item": {…}} (with an optional "sample": {…})' };
  if (value.sample !== undefined && !isObject(value.sample)) return { source: null, error: '"sample" must be a JSON object' };
  return { source: value.sample ? { item: value.item, sample: value.sample } : { item: value.item }, error: null };
}

export interface SamplingPlan {
  model: string;
  /** Template turns over {{item.…}}, or the item field holding the messages. */
  input: { turns: ChatTurn[] } | { reference: string };
  temperature: number;
  top_p: number;
  seed: number;
  max_completion_tokens?: number;
  /** Checked against the chat schema when the run was created. */
  response_format?: Record<string, unknown>;
  tools?: Record<string, unknown>[];
}

export interface RunPlan {
  criteria: Criterion[];
  validator: ItemValidator;
  sampling?: SamplingPlan;
  /** The model mmrec_* criteria without one score. */
  runModel?: string;
}

/** The plan of a stored run. Throws ItemSchemaError if the eval's schema no longer compiles under the current limits. */
export function planRun(config: StoredDataSourceConfig, criteria: Criterion[], ds: RunDataSource, limits: ItemSchemaLimits): RunPlan {
  const validator = compileItemSchema(config.item_schema, limits);
  if (ds.type === 'jsonl') return { criteria, validator };
  const sp = ds.sampling_params ?? {};
  const input = ds.input_messages.type === 'template' ? { turns: messageTemplates(ds.input_messages.template, 'input', false, '') } : { reference: ds.input_messages.item_reference };
  return {
    criteria,
    validator,
    runModel: ds.model,
    sampling: {
      model: ds.model,
      input,
      temperature: sp.temperature ?? EVAL_SAMPLING_DEFAULTS.temperature,
      top_p: sp.top_p ?? EVAL_SAMPLING_DEFAULTS.top_p,
      seed: sp.seed ?? EVAL_SAMPLING_DEFAULTS.seed,
      max_completion_tokens: sp.max_completion_tokens,
      response_format: sp.response_format,
      tools: sp.tools,
    },
  };
}
