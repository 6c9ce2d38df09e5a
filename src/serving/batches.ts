/**
 * The Batch API over the store and the worker: requests checked and recorded,
 * batches as OpenAI shapes them. The work itself (validating the input file,
 * running the lines, writing the output files) is the worker's
 * (src/jobs/batches/worker.ts); a route only records and returns.
 */
import type { BatchWorker } from '../jobs/batches/worker.ts';
import type { LineServing } from '../jobs/batches/lines.ts';
import type { Batch, CreateBatchRequest, ListBatchesQuery } from '../protocol/batches.ts';
import { ApiError } from '../protocol/errors.ts';
import { FINISHED_BATCH, type BatchRecord } from '../store/batches.ts';
import { UnknownCursorError, type Store } from '../store/store.ts';
import { UNSERVED_BATCH_ENDPOINTS } from './batch-endpoints.ts';
import { cursorNotFound, parseLimit } from './files.ts';

export const DEFAULT_BATCH_MAX_INPUT_BYTES = 200 * 1024 * 1024;
/** OpenAI's only completion window. */
const WINDOW_SECONDS = { '24h': 24 * 3600 } as const;

export function toApiBatch(b: BatchRecord): Batch {
  const out: Batch = {
    id: b.id,
    object: 'batch',
    endpoint: b.endpoint,
    input_file_id: b.inputFileId,
    completion_window: b.completionWindow,
    status: b.status,
    created_at: b.createdAt,
    expires_at: b.expiresAt,
    request_counts: { ...b.counts },
    usage: {
      input_tokens: b.usage.inputTokens,
      input_tokens_details: { cached_tokens: b.usage.cachedTokens },
      output_tokens: b.usage.outputTokens,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: b.usage.inputTokens + b.usage.outputTokens,
    },
  };
  if (b.model !== null) out.model = b.model;
  if (b.errors) out.errors = { object: 'list', data: b.errors };
  // The ids are reserved before the files are written: shown once the batch has ended and they exist.
  if (FINISHED_BATCH.includes(b.status)) {
    if (b.outputFileId) out.output_file_id = b.outputFileId;
    if (b.errorFileId) out.error_file_id = b.errorFileId;
  }
  const times = {
    in_progress_at: b.inProgressAt,
    finalizing_at: b.finalizingAt,
    completed_at: b.completedAt,
    failed_at: b.failedAt,
    expired_at: b.expiredAt,
    cancelling_at: b.cancellingAt,
    cancelled_at: b.cancelledAt,
  };
  for (const [k, v] of Object.entries(times)) if (v !== null) out[k as keyof typeof times] = v;
  if (b.metadata) out.metadata = b.metadata;
  return out;
}

function batchNotFound(id: string): ApiError {
  return new ApiError(404, `No batch found with id '${id}'.`, 'invalid_request_error', 'batch_id', 'batch_not_found');
}

export class BatchService {
  constructor(
    private readonly store: Store,
    private readonly worker: BatchWorker,
    readonly maxInputBytes: number = DEFAULT_BATCH_MAX_INPUT_BYTES,
  ) {}

  /** The endpoints, as the HTTP layer checks and serves them (once the app is ready). */
  attach(serving: LineServing): void {
    this.worker.attach(serving);
  }

  async create(req: CreateBatchRequest): Promise<Batch> {
    const served = this.worker.endpoints;
    if (!served.includes(req.endpoint)) {
      const why = UNSERVED_BATCH_ENDPOINTS[req.endpoint];
      throw ApiError.invalid(
        `Invalid 'endpoint': ${JSON.stringify(req.endpoint)} ${why ? `is not supported: ${why}` : 'is not an endpoint a batch can run'}. Supported: ${served.join(', ')}.`,
        'endpoint',
        why ? 'unsupported_value' : 'invalid_value',
      );
    }
    const file = await this.store.files.get(req.input_file_id);
    if (!file) throw new ApiError(400, `Invalid 'input_file_id': no such file ${req.input_file_id}.`, 'invalid_request_error', 'input_file_id', 'file_not_found');
    if (file.purpose !== 'batch') {
      throw ApiError.invalid(`Invalid 'input_file_id': ${file.id} was uploaded with purpose "${file.purpose}"; a batch's input needs purpose "batch".`, 'input_file_id', 'invalid_file_purpose');
    }
    if (file.bytes > this.maxInputBytes) {
      throw ApiError.invalid(`Invalid 'input_file_id': ${file.id} has ${file.bytes} bytes; a batch's input file may have at most ${this.maxInputBytes} (--batch-max-input-bytes).`, 'input_file_id', 'file_too_large');
    }
    const batch = await this.store.batches.create({
      endpoint: req.endpoint,
      inputFileId: file.id,
      completionWindow: req.completion_window,
      windowSeconds: WINDOW_SECONDS[req.completion_window],
      metadata: req.metadata ?? null,
      outputExpiresAfter: req.output_expires_after?.seconds ?? null,
    });
    this.worker.notify();
    return toApiBatch(batch);
  }

  async get(id: string): Promise<Batch> {
    const b = await this.store.batches.get(id);
    if (!b) throw batchNotFound(id);
    return toApiBatch(b);
  }

  async list(q: ListBatchesQuery) {
    try {
      const page = await this.store.batches.list({ after: q.after, limit: parseLimit(q.limit, 100, 20) });
      const data = page.data.map(toApiBatch);
      return { object: 'list' as const, data, first_id: data[0]?.id ?? '', last_id: data[data.length - 1]?.id ?? '', has_more: page.hasMore };
    } catch (e) {
      if (e instanceof UnknownCursorError) throw cursorNotFound(e);
      throw e;
    }
  }

  async cancel(id: string): Promise<Batch> {
    const b = await this.worker.cancel(id);
    if (b) return toApiBatch(b);
    const current = await this.store.batches.get(id);
    if (!current) throw batchNotFound(id);
    if (current.status === 'cancelling' || current.status === 'cancelled') return toApiBatch(current);
    throw ApiError.invalid(`Batch ${id} cannot be cancelled: it is ${current.status}.`, 'batch_id', 'batch_not_cancellable');
  }
}
