/**
 * The Evals API: /v1/evals, its runs and their output items, as OpenAI
 * documents them, plus two extension criteria (mmrec_perplexity,
 * mmrec_token_accuracy: teacher-forced scores of a reference answer).
 *
 * Testing criteria and data sources are checked loosely by the route (an
 * object with a `type`), then by the schema of their type (the ones below),
 * so that an unsupported type gets a 400 that says so rather than a schema
 * error listing every alternative.
 */
import { Type, type Static, type TSchema } from 'typebox';
import { Metadata, Order, pageFields } from './lists.ts';

const NAME = Type.String({ maxLength: 256 });

// ------------------------------------------------------------------ messages

/** A content part: text (input_text, output_text) is all this server's models read. */
export const EvalContentPart = Type.Object(
  { type: Type.String({ description: 'input_text or output_text (images and audio are refused)' }), text: Type.Optional(Type.String()) },
  { title: 'EvalItemContentPart' },
);

export const EvalMessage = Type.Object(
  {
    role: Type.Union([Type.Literal('user'), Type.Literal('assistant'), Type.Literal('system'), Type.Literal('developer')]),
    content: Type.Union([Type.String(), EvalContentPart, Type.Array(EvalContentPart)], { description: 'text; may hold {{item.field}} (and, in graders, {{sample.output_text}}) variables' }),
    type: Type.Optional(Type.Literal('message')),
  },
  { title: 'EvalItem' },
);
export type EvalMessage = Static<typeof EvalMessage>;

// ------------------------------------------------------------------ graders

export const STRING_CHECK_OPS = ['eq', 'ne', 'like', 'ilike'] as const;
export const EVALUATION_METRICS = ['cosine', 'fuzzy_match', 'bleu', 'gleu', 'meteor', 'rouge_1', 'rouge_2', 'rouge_3', 'rouge_4', 'rouge_5', 'rouge_l'] as const;

const literals = <T extends readonly string[]>(values: T) => Type.Union(values.map((v) => Type.Literal(v)));

export const StringCheckGrader = Type.Object(
  {
    type: Type.Literal('string_check'),
    name: NAME,
    input: Type.String({ description: 'a template, e.g. {{sample.output_text}}' }),
    reference: Type.String({ description: 'a template, e.g. {{item.answer}}' }),
    operation: Type.Union([Type.Literal('eq'), Type.Literal('ne'), Type.Literal('like'), Type.Literal('ilike')]),
  },
  { title: 'EvalGraderStringCheck', description: 'score 1 or 0; passes at 1. eq, ne: equality; like: input contains reference; ilike: the same ignoring case' },
);

export const TextSimilarityGrader = Type.Object(
  {
    type: Type.Literal('text_similarity'),
    name: NAME,
    input: Type.String(),
    reference: Type.String(),
    evaluation_metric: literals(EVALUATION_METRICS),
    pass_threshold: Type.Number(),
  },
  { title: 'EvalGraderTextSimilarity', description: "passes at ≥ pass_threshold. cosine: the raw cosine, in [-1, 1], of the embeddings of input and reference by the server's --eval-embedding-model (400 when no served model embeds); the other metrics: a score in [0, 1] (docs/metrics.md says which reference implementation each matches)" },
);

const nullable = <T extends TSchema>(s: T) => Type.Optional(Type.Union([s, Type.Null()]));

export const GraderSamplingParams = Type.Object(
  {
    seed: nullable(Type.Integer({ minimum: Number.MIN_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER })),
    top_p: nullable(Type.Number({ minimum: 0, maximum: 1 })),
    temperature: nullable(Type.Number({ minimum: 0, maximum: 2 })),
    max_completions_tokens: nullable(Type.Integer({ minimum: 1 })),
    reasoning_effort: nullable(Type.String({ description: 'accepted and ignored: these models do not reason' })),
  },
  { title: 'EvalGraderSamplingParams', description: 'defaults as for a run: temperature 1, top_p 1, seed 42' },
);

export const ScoreModelGrader = Type.Object(
  {
    type: Type.Literal('score_model'),
    name: NAME,
    model: Type.String({ description: 'any served model' }),
    input: Type.Array(EvalMessage, { minItems: 1 }),
    range: Type.Optional(Type.Array(Type.Number(), { minItems: 2, maxItems: 2, description: 'default [0, 1]' })),
    sampling_params: Type.Optional(GraderSamplingParams),
    pass_threshold: Type.Optional(Type.Number({ description: 'default: the middle of range' })),
  },
  { title: 'EvalGraderScoreModel', description: 'the model answers {"result": <number in range>}, held to that JSON Schema as it generates (so it always parses); passes at ≥ pass_threshold' },
);

export const LabelModelGrader = Type.Object(
  {
    type: Type.Literal('label_model'),
    name: NAME,
    model: Type.String({ description: 'any served model' }),
    input: Type.Array(EvalMessage, { minItems: 1 }),
    labels: Type.Array(Type.String({ minLength: 1, maxLength: 256 }), { minItems: 1, maxItems: 64 }),
    passing_labels: Type.Array(Type.String(), { minItems: 1, maxItems: 64, description: 'a subset of labels' }),
  },
  { title: 'EvalGraderLabelModel', description: 'the model answers {"result": <one of labels>}, held to that JSON Schema as it generates; score 1 and passed when the label is a passing one' },
);

export const PERPLEXITY_TYPES = ['mmrec_perplexity', 'mmrec_token_accuracy'] as const;

export const PerplexityGrader = Type.Object(
  {
    type: Type.Union([Type.Literal('mmrec_perplexity'), Type.Literal('mmrec_token_accuracy')]),
    name: NAME,
    model: Type.Optional(Type.String({ description: "the model scored (default: the run's model)" })),
    input: Type.Union(
      [
        Type.Array(EvalMessage, { minItems: 1 }),
        Type.String({ maxLength: 256, pattern: '^item\\.[A-Za-z0-9_.-]+$', description: 'an item reference, as item.messages: each item holds its conversation (the fine-tuning format)' }),
      ],
      {
        description:
          'the conversation scored: messages with {{item.…}} variables, e.g. [{"role":"user","content":"{{item.question}}"},{"role":"assistant","content":"{{item.answer}}"}], ' +
          'or an item reference; its assistant messages are the targets',
      },
    ),
    pass_threshold: Type.Optional(Type.Number({ description: 'mmrec_perplexity passes at ≤ pass_threshold, mmrec_token_accuracy at ≥ it; absent: every graded item passes' })),
  },
  {
    title: 'EvalGraderMMRecPerplexity',
    description:
      'extension: the model reads the conversation teacher-forced (engine.score, the same definition as fine-tuning valid_loss) and scores its assistant tokens. ' +
      'mmrec_perplexity: score = e^(mean −log p); mmrec_token_accuracy: score = share of target tokens that were the most likely token',
  },
);

export const GRADERS = {
  string_check: StringCheckGrader,
  text_similarity: TextSimilarityGrader,
  score_model: ScoreModelGrader,
  label_model: LabelModelGrader,
  mmrec_perplexity: PerplexityGrader,
  mmrec_token_accuracy: PerplexityGrader,
} as const;

export type StringCheckGrader = Static<typeof StringCheckGrader>;
export type TextSimilarityGrader = Static<typeof TextSimilarityGrader>;
export type ScoreModelGrader = Static<typeof ScoreModelGrader>;
export type LabelModelGrader = Static<typeof LabelModelGrader>;
export type PerplexityGrader = Static<typeof PerplexityGrader>;
export type GraderParam = StringCheckGrader | TextSimilarityGrader | ScoreModelGrader | LabelModelGrader | PerplexityGrader;

/** What the route accepts; the service checks it against GRADERS[type]. */
export const TestingCriterionParam = Type.Object(
  { type: Type.String({ description: `one of ${Object.keys(GRADERS).join(', ')}` }), name: Type.Optional(NAME) },
  { title: 'EvalTestingCriterionParam', description: 'a grader: see EvalGraderStringCheck, EvalGraderTextSimilarity, EvalGraderScoreModel, EvalGraderLabelModel, EvalGraderMMRecPerplexity' },
);

// ------------------------------------------------------------------ evals

export const CustomDataSourceConfigParam = Type.Object(
  {
    type: Type.String({ description: 'only custom is supported (logs and stored_completions need stored logs, which this server does not keep)' }),
    item_schema: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'JSON Schema every item of a run is checked against (an item that fails is an errored result)' })),
    include_sample_schema: Type.Optional(Type.Boolean({ description: 'runs produce a sample (a completions data source) that graders read as {{sample.…}}' })),
  },
  { title: 'CreateEvalCustomDataSourceConfig' },
);

export const CreateEvalRequest = Type.Object(
  {
    name: Type.Optional(NAME),
    metadata: Type.Optional(Metadata),
    data_source_config: CustomDataSourceConfigParam,
    testing_criteria: Type.Array(TestingCriterionParam, { minItems: 1, description: 'at most --eval-max-criteria' }),
  },
  { title: 'CreateEvalRequest' },
);
export type CreateEvalRequest = Static<typeof CreateEvalRequest>;

export const UpdateEvalRequest = Type.Object({ name: Type.Optional(NAME), metadata: Type.Optional(Metadata) }, { title: 'UpdateEvalRequest' });
export type UpdateEvalRequest = Static<typeof UpdateEvalRequest>;

export const EvalCustomDataSourceConfig = Type.Object(
  { type: Type.Literal('custom'), schema: Type.Record(Type.String(), Type.Unknown(), { description: '{type: object, properties: {item: item_schema, sample?: the sample\'s schema}}' }) },
  { title: 'EvalCustomDataSourceConfig' },
);

export const Eval = Type.Object(
  {
    object: Type.Literal('eval'),
    id: Type.String(),
    name: Type.String(),
    data_source_config: EvalCustomDataSourceConfig,
    testing_criteria: Type.Array(Type.Union([StringCheckGrader, TextSimilarityGrader, ScoreModelGrader, LabelModelGrader, PerplexityGrader])),
    created_at: Type.Integer(),
    metadata: Metadata,
  },
  { title: 'Eval' },
);
export type Eval = Static<typeof Eval>;

const listOf = <T extends TSchema>(item: T, title: string) =>
  Type.Object(
    {
      object: Type.Literal('list'),
      data: Type.Array(item),
      first_id: Type.String({ description: 'empty when the page is' }),
      last_id: Type.String({ description: 'empty when the page is' }),
      has_more: Type.Boolean(),
    },
    { title },
  );

export const EvalList = listOf(Eval, 'EvalList');
export const DeleteEvalResponse = Type.Object({ object: Type.Literal('eval.deleted'), deleted: Type.Boolean(), eval_id: Type.String() }, { title: 'DeleteEvalResponse' });

// ------------------------------------------------------------------ runs

export const JsonlFileContentSource = Type.Object(
  {
    type: Type.Literal('file_content'),
    content: Type.Array(Type.Object({ item: Type.Record(Type.String(), Type.Unknown()), sample: Type.Optional(Type.Record(Type.String(), Type.Unknown())) }), {
      description: 'the items, at most --eval-max-items',
    }),
  },
  { title: 'EvalJsonlFileContentSource' },
);

export const JsonlFileIdSource = Type.Object(
  { type: Type.Literal('file_id'), id: Type.String({ maxLength: 128, description: 'a stored file: one {"item": {…}, "sample"?: {…}} per line' }) },
  { title: 'EvalJsonlFileIdSource' },
);

export const RunSourceParam = Type.Object(
  { type: Type.String({ description: 'file_content or file_id (stored_completions and responses need stored logs, which this server does not keep)' }) },
  { title: 'EvalRunSourceParam', description: 'see EvalJsonlFileContentSource, EvalJsonlFileIdSource' },
);

export const TemplateInputMessages = Type.Object({ type: Type.Literal('template'), template: Type.Array(EvalMessage, { minItems: 1 }) }, { title: 'TemplateInputMessages' });
export const ItemReferenceInputMessages = Type.Object(
  { type: Type.Literal('item_reference'), item_reference: Type.String({ maxLength: 256, description: 'e.g. item.messages: an array of chat messages in each item' }) },
  { title: 'ItemReferenceInputMessages' },
);

export const RunSamplingParams = Type.Object(
  {
    temperature: Type.Optional(Type.Number({ minimum: 0, maximum: 2, default: 1 })),
    top_p: Type.Optional(Type.Number({ minimum: 0, maximum: 1, default: 1 })),
    seed: Type.Optional(Type.Integer({ minimum: Number.MIN_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER, default: 42 })),
    max_completion_tokens: Type.Optional(Type.Integer({ minimum: 1, description: 'default: --max-tokens, capped by the context left' })),
    response_format: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'as in chat completions (json_schema is enforced as the model generates)' })),
    tools: Type.Optional(Type.Array(Type.Record(Type.String(), Type.Unknown()), { description: 'as in chat completions' })),
    reasoning_effort: Type.Optional(Type.Union([Type.String(), Type.Null()], { description: 'accepted and ignored' })),
  },
  { title: 'EvalRunSamplingParams' },
);

export const CompletionsRunDataSource = Type.Object(
  {
    type: Type.Literal('completions'),
    input_messages: Type.Union([TemplateInputMessages, ItemReferenceInputMessages]),
    sampling_params: Type.Optional(RunSamplingParams),
    model: Type.String({ description: 'any served model: configured, fine-tuned (ft:…) or a fine-tuning checkpoint' }),
    source: Type.Union([JsonlFileContentSource, JsonlFileIdSource]),
  },
  { title: 'CreateEvalCompletionsRunDataSource' },
);
export type CompletionsRunDataSource = Static<typeof CompletionsRunDataSource>;

export const JsonlRunDataSource = Type.Object({ type: Type.Literal('jsonl'), source: Type.Union([JsonlFileContentSource, JsonlFileIdSource]) }, { title: 'CreateEvalJsonlRunDataSource' });
export type JsonlRunDataSource = Static<typeof JsonlRunDataSource>;
export type RunDataSource = CompletionsRunDataSource | JsonlRunDataSource;

export const RunDataSourceParam = Type.Object(
  { type: Type.String({ description: 'jsonl or completions (responses is refused)' }) },
  { title: 'EvalRunDataSourceParam', description: 'see CreateEvalJsonlRunDataSource, CreateEvalCompletionsRunDataSource' },
);

export const CreateEvalRunRequest = Type.Object(
  { name: Type.Optional(NAME), metadata: Type.Optional(Metadata), data_source: RunDataSourceParam },
  { title: 'CreateEvalRunRequest' },
);
export type CreateEvalRunRequest = Static<typeof CreateEvalRunRequest>;

const RunStatus = Type.Union([Type.Literal('queued'), Type.Literal('in_progress'), Type.Literal('completed'), Type.Literal('failed'), Type.Literal('canceled')]);

const EvalApiError = Type.Object({ code: Type.String(), message: Type.String() }, { title: 'EvalApiError' });

export const EvalRun = Type.Object(
  {
    object: Type.Literal('eval.run'),
    id: Type.String(),
    eval_id: Type.String(),
    status: RunStatus,
    model: Type.String({ description: "the completions data source's model; empty for a jsonl data source" }),
    name: Type.String(),
    created_at: Type.Integer(),
    report_url: Type.String({ format: 'uri', description: 'this run on this server (GET)' }),
    result_counts: Type.Object({ total: Type.Integer(), errored: Type.Integer(), failed: Type.Integer(), passed: Type.Integer() }),
    per_model_usage: Type.Array(
      Type.Object({
        model_name: Type.String(),
        invocation_count: Type.Integer(),
        prompt_tokens: Type.Integer(),
        completion_tokens: Type.Integer(),
        total_tokens: Type.Integer(),
        cached_tokens: Type.Integer(),
      }),
    ),
    per_testing_criteria_results: Type.Array(
      Type.Object(
        {
          testing_criteria: Type.String({ description: '<name>-<id of the criterion>' }),
          passed: Type.Integer(),
          failed: Type.Integer(),
          loss: Type.Optional(Type.Number({ description: 'extension (mmrec_* criteria): Σ −log p / Σ target tokens over the graded items' })),
          perplexity: Type.Optional(Type.Number({ description: 'extension (mmrec_* criteria): e^loss' })),
          mean_token_accuracy: Type.Optional(Type.Number({ description: 'extension (mmrec_* criteria)' })),
          tokens: Type.Optional(Type.Integer({ description: 'extension (mmrec_* criteria): target tokens scored' })),
        },
        { additionalProperties: true },
      ),
    ),
    data_source: Type.Union([JsonlRunDataSource, CompletionsRunDataSource]),
    metadata: Metadata,
    error: Type.Union([EvalApiError, Type.Null()], { description: 'null unless the run failed (as OpenAI sends it)' }),
  },
  { title: 'EvalRun' },
);
export type EvalRun = Static<typeof EvalRun>;

export const EvalRunList = listOf(EvalRun, 'EvalRunList');
export const DeleteEvalRunResponse = Type.Object({ object: Type.Literal('eval.run.deleted'), deleted: Type.Boolean(), run_id: Type.String() }, { title: 'DeleteEvalRunResponse' });

export const EvalRunOutputItemResult = Type.Object(
  {
    name: Type.String(),
    type: Type.String({ description: 'e.g. string-check-grader' }),
    score: Type.Number(),
    passed: Type.Boolean(),
    sample: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()], { description: "what the grader saw or produced: a model grader's reply, a perplexity criterion's loss and tokens" }),
    error: Type.Optional(Type.String({ description: 'why this criterion could not grade the item' })),
  },
  { title: 'EvalRunOutputItemResult' },
);

const Usage = Type.Object({ total_tokens: Type.Integer(), completion_tokens: Type.Integer(), prompt_tokens: Type.Integer(), cached_tokens: Type.Integer() });

export const EvalRunOutputItem = Type.Object(
  {
    object: Type.Literal('eval.run.output_item'),
    id: Type.String(),
    run_id: Type.String(),
    eval_id: Type.String(),
    created_at: Type.Integer(),
    status: Type.Union([Type.Literal('pass'), Type.Literal('fail'), Type.Literal('error')]),
    datasource_item_id: Type.Integer(),
    datasource_item: Type.Record(Type.String(), Type.Unknown()),
    results: Type.Array(EvalRunOutputItemResult),
    sample: Type.Object({
      input: Type.Array(Type.Object({ role: Type.String(), content: Type.String() })),
      output: Type.Array(Type.Object({ role: Type.String(), content: Type.String() })),
      finish_reason: Type.String(),
      model: Type.String(),
      usage: Usage,
      error: Type.Union([EvalApiError, Type.Null()]),
      temperature: Type.Number(),
      max_completion_tokens: Type.Integer(),
      top_p: Type.Number(),
      seed: Type.Integer(),
    }),
  },
  { title: 'EvalRunOutputItem' },
);
export type EvalRunOutputItem = Static<typeof EvalRunOutputItem>;
export const EvalRunOutputItemList = listOf(EvalRunOutputItem, 'EvalRunOutputItemList');

// ------------------------------------------------------------------ parameters

export const EvalParams = Type.Object({ eval_id: Type.String({ maxLength: 128 }) });
export const RunParams = Type.Object({ eval_id: Type.String({ maxLength: 128 }), run_id: Type.String({ maxLength: 128 }) });
export const OutputItemParams = Type.Object({ eval_id: Type.String({ maxLength: 128 }), run_id: Type.String({ maxLength: 128 }), output_item_id: Type.String({ maxLength: 128 }) });

export const ListEvalsQuery = Type.Object(
  { ...pageFields, order: Type.Optional(Order), order_by: Type.Optional(Type.Union([Type.Literal('created_at'), Type.Literal('updated_at')])) },
  { description: 'limit: 1 to 100, default 20; order: default asc' },
);
export type ListEvalsQuery = Static<typeof ListEvalsQuery>;
export const ListRunsQuery = Type.Object({ ...pageFields, order: Type.Optional(Order), status: Type.Optional(RunStatus) }, { description: 'limit: 1 to 100, default 20; order: default asc' });
export type ListRunsQuery = Static<typeof ListRunsQuery>;
export const ListOutputItemsQuery = Type.Object(
  { ...pageFields, order: Type.Optional(Order), status: Type.Optional(Type.Union([Type.Literal('pass'), Type.Literal('fail')])) },
  { description: 'limit: 1 to 100, default 20; order: default asc (data source order); items not graded yet are not listed' },
);
export type ListOutputItemsQuery = Static<typeof ListOutputItemsQuery>;
