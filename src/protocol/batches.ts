/**
 * The Batch API: POST/GET /v1/batches, GET /v1/batches/{batch_id}, POST
 * /v1/batches/{batch_id}/cancel, and the input and output lines of its files,
 * as OpenAI documents them. Fields that have no value yet are left out rather
 * than null (OpenAI's schema types them as plain strings and integers).
 */
import { Type, type Static } from 'typebox';
import { Metadata, pageFields } from './lists.ts';

export const CompletionWindow = Type.Literal('24h', { description: 'the only window OpenAI offers; a batch still running after it expires' });

export const BatchFileExpiration = Type.Object(
  {
    anchor: Type.Literal('created_at', { description: "the output or error file's own creation time" }),
    seconds: Type.Integer({ minimum: 3600, maximum: 2592000 }),
  },
  { title: 'BatchFileExpirationAfter' },
);

export const CreateBatchRequest = Type.Object(
  {
    input_file_id: Type.String({ maxLength: 128, description: 'a file of purpose batch: one request per line (BatchRequestInput), at most --batch-max-lines lines and --batch-max-input-bytes bytes' }),
    endpoint: Type.String({ maxLength: 128, description: 'served: /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/responses; every line\'s url must be this endpoint' }),
    completion_window: CompletionWindow,
    metadata: Type.Optional(Metadata),
    output_expires_after: Type.Optional(BatchFileExpiration),
  },
  { title: 'CreateBatchRequest' },
);
export type CreateBatchRequest = Static<typeof CreateBatchRequest>;

export const BatchStatus = Type.Union(
  [
    Type.Literal('validating'),
    Type.Literal('failed'),
    Type.Literal('in_progress'),
    Type.Literal('finalizing'),
    Type.Literal('completed'),
    Type.Literal('expired'),
    Type.Literal('cancelling'),
    Type.Literal('cancelled'),
  ],
  { description: 'validating → in_progress → finalizing → completed; failed (the input file, see errors); cancelling → cancelled; expired' },
);

export const BatchError = Type.Object(
  {
    code: Type.String(),
    message: Type.String(),
    param: Type.Union([Type.String(), Type.Null()], { description: 'the field of the line at fault (body.… for the request body)' }),
    line: Type.Union([Type.Integer(), Type.Null()], { description: 'the line of the input file (1-based)' }),
  },
  { title: 'BatchError' },
);

const time = (description: string) => Type.Optional(Type.Integer({ description }));

export const Batch = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal('batch'),
    endpoint: Type.String(),
    model: Type.Optional(Type.String({ description: 'the model every line names, when they all name the same one' })),
    errors: Type.Optional(Type.Object({ object: Type.Literal('list'), data: Type.Array(BatchError) }, { description: 'why the input file was refused (failed)' })),
    input_file_id: Type.String(),
    completion_window: Type.String(),
    status: BatchStatus,
    output_file_id: Type.Optional(Type.String({ description: 'the successful lines (BatchRequestOutput), once the batch has ended' })),
    error_file_id: Type.Optional(Type.String({ description: 'the lines that failed, with their status and error body, once the batch has ended' })),
    created_at: Type.Integer(),
    in_progress_at: time('when its lines started'),
    expires_at: time('created_at + the completion window'),
    finalizing_at: time('when its last line finished'),
    completed_at: time('when its files were written'),
    failed_at: time('when its input file was refused'),
    expired_at: time('when it expired'),
    cancelling_at: time('when it was asked to cancel'),
    cancelled_at: time('when it was cancelled'),
    request_counts: Type.Object(
      { total: Type.Integer(), completed: Type.Integer(), failed: Type.Integer() },
      { title: 'BatchRequestCounts', description: 'current while the batch runs' },
    ),
    usage: Type.Object(
      {
        input_tokens: Type.Integer(),
        input_tokens_details: Type.Object({ cached_tokens: Type.Integer() }),
        output_tokens: Type.Integer(),
        output_tokens_details: Type.Object({ reasoning_tokens: Type.Integer() }),
        total_tokens: Type.Integer(),
      },
      { description: "the lines' usage, summed over the lines finished so far" },
    ),
    metadata: Type.Optional(Metadata),
  },
  { title: 'Batch' },
);
export type Batch = Static<typeof Batch>;

export const ListBatchesResponse = Type.Object(
  {
    object: Type.Literal('list'),
    data: Type.Array(Batch),
    first_id: Type.String({ description: 'empty when the page is' }),
    last_id: Type.String({ description: 'empty when the page is' }),
    has_more: Type.Boolean(),
  },
  { title: 'ListBatchesResponse' },
);

export const BatchParams = Type.Object({ batch_id: Type.String({ maxLength: 128 }) });
export const ListBatchesQuery = Type.Object(pageFields, { description: 'newest first; limit: 1 to 100, default 20' });
export type ListBatchesQuery = Static<typeof ListBatchesQuery>;

/** A line of the input file. */
export interface BatchRequestInput {
  custom_id: string;
  method: 'POST';
  url: string;
  body: Record<string, unknown>;
}

/** A line of the output or error file. */
export interface BatchRequestOutput {
  id: string;
  custom_id: string;
  /** The endpoint's answer: 200 and its body (output file), or an error status and OpenAI's error body (error file). */
  response: { status_code: number; request_id: string; body: unknown } | null;
  /** Set when the line got no answer at all (batch_expired). */
  error: { code: string; message: string } | null;
}
