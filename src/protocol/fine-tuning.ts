/** The fine-tuning API: /v1/fine_tuning/jobs and below, as OpenAI documents it, plus the state-tuning extension. */
import { Type, type Static, type TSchema } from 'typebox';
import { Opt } from './common.ts';
import { Metadata, pageFields } from './lists.ts';

const auto = <T extends TSchema>(schema: T) => Type.Union([Type.Literal('auto'), schema]);

export const Hyperparameters = Type.Object(
  {
    batch_size: Type.Optional(auto(Type.Integer({ minimum: 1, maximum: 256 }))),
    learning_rate_multiplier: Type.Optional(auto(Type.Number({ exclusiveMinimum: 0, maximum: 100 }))),
    n_epochs: Type.Optional(auto(Type.Integer({ minimum: 1, maximum: 50 }))),
  },
  { title: 'FineTuneSupervisedHyperparameters', description: '"auto" (the default) is resolved from the training data; the job reports the numbers used' },
);
export type Hyperparameters = Static<typeof Hyperparameters>;

/** What the job reports: the numbers it trains with. */
export const ResolvedHyperparameters = Type.Object(
  { batch_size: Type.Integer(), learning_rate_multiplier: Type.Number(), n_epochs: Type.Integer() },
  { title: 'FineTuningJobHyperparameters' },
);
export type ResolvedHyperparameters = Static<typeof ResolvedHyperparameters>;

export const TRAINED_PARTS = ['weights', 'initial_state'] as const;
export type TrainedPart = (typeof TRAINED_PARTS)[number];

export const SupervisedMethod = Type.Object(
  {
    hyperparameters: Type.Optional(Hyperparameters),
    train: Type.Optional(
      Type.Union(
        [Type.Literal('weights'), Type.Literal('initial_state')],
        {
          description:
            'extension: "weights" (default) fine-tunes every weight; "initial_state" trains only the recurrent state a conversation starts from (state tuning): ' +
            'the result is a few KiB on top of the unchanged base graph, served as its own model',
        },
      ),
    ),
  },
  { title: 'FineTuneSupervisedMethod' },
);

export const Method = Type.Object(
  {
    type: Type.Union([Type.Literal('supervised'), Type.Literal('dpo'), Type.Literal('reinforcement')], { description: 'only supervised is supported' }),
    supervised: Type.Optional(SupervisedMethod),
    dpo: Type.Optional(Type.Unknown()),
    reinforcement: Type.Optional(Type.Unknown()),
  },
  { title: 'FineTuneMethod' },
);
export type Method = Static<typeof Method>;

export const CreateFineTuningJobRequest = Type.Object(
  {
    model: Type.String({ description: 'any served model, fine-tuned ones included' }),
    training_file: Type.String({ description: 'a file of purpose fine-tune: OpenAI chat JSONL' }),
    validation_file: Opt(Type.String()),
    suffix: Opt(Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.-]+$', description: 'letters, digits, _ . -; part of the model name' })),
    seed: Opt(Type.Integer({ minimum: 0, maximum: 2147483647 })),
    metadata: Type.Optional(Metadata),
    method: Type.Optional(Method),
    hyperparameters: Type.Optional(Hyperparameters),
    integrations: Opt(Type.Array(Type.Unknown(), { description: 'not supported: must be absent or empty' })),
  },
  { title: 'CreateFineTuningJobRequest' },
);
export type CreateFineTuningJobRequest = Static<typeof CreateFineTuningJobRequest>;

const JobStatus = Type.Union(
  [
    Type.Literal('validating_files'),
    Type.Literal('queued'),
    Type.Literal('running'),
    Type.Literal('succeeded'),
    Type.Literal('failed'),
    Type.Literal('cancelled'),
    Type.Literal('paused'),
  ],
  { description: 'paused is returned as OpenAI returns it, though its documented enum omits it' },
);

export const FineTuningJob = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal('fine_tuning.job'),
    created_at: Type.Integer(),
    error: Type.Union([Type.Object({ code: Type.String(), message: Type.String(), param: Type.Union([Type.String(), Type.Null()]) }), Type.Null()]),
    fine_tuned_model: Type.Union([Type.String(), Type.Null()]),
    finished_at: Type.Union([Type.Integer(), Type.Null()]),
    hyperparameters: Type.Object({
      batch_size: auto(Type.Integer()),
      learning_rate_multiplier: auto(Type.Number()),
      n_epochs: auto(Type.Integer()),
    }),
    model: Type.String(),
    organization_id: Type.String(),
    result_files: Type.Array(Type.String()),
    status: JobStatus,
    trained_tokens: Type.Union([Type.Integer(), Type.Null()]),
    training_file: Type.String(),
    validation_file: Type.Union([Type.String(), Type.Null()]),
    integrations: Type.Null(),
    seed: Type.Integer(),
    estimated_finish: Type.Union([Type.Integer(), Type.Null()]),
    method: Type.Object({
      type: Type.Literal('supervised'),
      supervised: Type.Object({
        hyperparameters: Type.Object({ batch_size: auto(Type.Integer()), learning_rate_multiplier: auto(Type.Number()), n_epochs: auto(Type.Integer()) }),
        train: Type.Optional(Type.String()),
      }),
    }),
    metadata: Type.Union([Type.Record(Type.String(), Type.String()), Type.Null()]),
  },
  { title: 'FineTuningJob' },
);
export type FineTuningJob = Static<typeof FineTuningJob>;

export const FineTuningJobEvent = Type.Object(
  {
    object: Type.Literal('fine_tuning.job.event'),
    id: Type.String(),
    created_at: Type.Integer(),
    level: Type.Union([Type.Literal('info'), Type.Literal('warn'), Type.Literal('error')]),
    message: Type.String(),
    type: Type.Union([Type.Literal('message'), Type.Literal('metrics')]),
    data: Type.Record(Type.String(), Type.Unknown()),
  },
  { title: 'FineTuningJobEvent' },
);
export type FineTuningJobEvent = Static<typeof FineTuningJobEvent>;

export const CheckpointMetrics = Type.Object(
  {
    step: Type.Number(),
    train_loss: Type.Optional(Type.Number()),
    train_mean_token_accuracy: Type.Optional(Type.Number()),
    valid_loss: Type.Optional(Type.Number()),
    valid_mean_token_accuracy: Type.Optional(Type.Number()),
    full_valid_loss: Type.Optional(Type.Number()),
    full_valid_mean_token_accuracy: Type.Optional(Type.Number()),
  },
  { title: 'FineTuningJobCheckpointMetrics' },
);

export const FineTuningJobCheckpoint = Type.Object(
  {
    object: Type.Literal('fine_tuning.job.checkpoint'),
    id: Type.String(),
    created_at: Type.Integer(),
    fine_tuned_model_checkpoint: Type.String({ description: 'a model name: it can be served, as any model' }),
    step_number: Type.Integer(),
    metrics: CheckpointMetrics,
    fine_tuning_job_id: Type.String(),
  },
  { title: 'FineTuningJobCheckpoint' },
);
export type FineTuningJobCheckpoint = Static<typeof FineTuningJobCheckpoint>;

export const ListFineTuningJobsResponse = Type.Object(
  { object: Type.Literal('list'), data: Type.Array(FineTuningJob), has_more: Type.Boolean() },
  { title: 'ListPaginatedFineTuningJobsResponse' },
);
export const ListFineTuningJobEventsResponse = Type.Object(
  { object: Type.Literal('list'), data: Type.Array(FineTuningJobEvent), has_more: Type.Boolean() },
  { title: 'ListFineTuningJobEventsResponse' },
);
export const ListFineTuningJobCheckpointsResponse = Type.Object(
  {
    object: Type.Literal('list'),
    data: Type.Array(FineTuningJobCheckpoint),
    first_id: Type.Union([Type.String(), Type.Null()]),
    last_id: Type.Union([Type.String(), Type.Null()]),
    has_more: Type.Boolean(),
  },
  { title: 'ListFineTuningJobCheckpointsResponse' },
);

export const JobParams = Type.Object({ fine_tuning_job_id: Type.String({ maxLength: 128 }) });
export const ListJobsQuery = Type.Object(pageFields, { description: 'limit: 1 to 100, default 20; metadata[key]=value filters' });
export const ListEventsQuery = Type.Object(pageFields, { description: 'limit: 1 to 100, default 20 (checkpoints: default 10)' });
export type PageQuery = Static<typeof ListEventsQuery>;
