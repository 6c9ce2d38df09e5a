/**
 * The fine-tuning API over the store and the worker: requests checked and
 * recorded, jobs and their events and checkpoints as OpenAI shapes them. The
 * work itself (validation, training, publishing) is the worker's
 * (src/jobs/fine-tuning/worker.ts); a route only records and returns.
 */
import { randomInt } from 'node:crypto';
import type { FineTuningWorker, Job } from '../jobs/fine-tuning/worker.ts';
import { normaliseMethod } from '../jobs/fine-tuning/worker.ts';
import { ApiError } from '../protocol/errors.ts';
import type {
  CreateFineTuningJobRequest,
  FineTuningJob,
  FineTuningJobCheckpoint,
  FineTuningJobEvent,
  PageQuery,
} from '../protocol/fine-tuning.ts';
import type { JobCheckpoint, JobEvent } from '../store/fine-tuning.ts';
import { UnknownCursorError, type Store } from '../store/store.ts';
import { cursorNotFound, parseLimit } from './files.ts';
import type { ModelRegistry } from './registry.ts';

export function toApiJob(job: Job, organization: string): FineTuningJob {
  const requested = job.method.hyperparameters;
  const h = job.hyperparameters;
  // Before validation resolves "auto", the job shows what was asked for.
  const hyperparameters = {
    batch_size: h?.batch_size ?? requested.batch_size ?? 'auto',
    learning_rate_multiplier: h?.learning_rate_multiplier ?? requested.learning_rate_multiplier ?? 'auto',
    n_epochs: h?.n_epochs ?? requested.n_epochs ?? 'auto',
  } as FineTuningJob['hyperparameters'];
  return {
    id: job.id,
    object: 'fine_tuning.job',
    created_at: job.createdAt,
    error: job.error,
    fine_tuned_model: job.fineTunedModel,
    finished_at: job.finishedAt,
    hyperparameters,
    model: job.model,
    organization_id: organization,
    result_files: job.resultFiles,
    status: job.status,
    trained_tokens: job.trainedTokens,
    training_file: job.trainingFile,
    validation_file: job.validationFile,
    integrations: null,
    seed: job.seed,
    estimated_finish: job.estimatedFinish,
    method: { type: 'supervised', supervised: { hyperparameters, ...(job.method.train !== 'weights' ? { train: job.method.train } : {}) } },
    metadata: job.metadata,
  };
}

function toApiEvent(e: JobEvent): FineTuningJobEvent {
  return { object: 'fine_tuning.job.event', id: e.id, created_at: e.createdAt, level: e.level, message: e.message, type: e.type, data: e.data ?? {} };
}

function toApiCheckpoint(c: JobCheckpoint): FineTuningJobCheckpoint {
  return {
    object: 'fine_tuning.job.checkpoint',
    id: c.id,
    created_at: c.createdAt,
    fine_tuned_model_checkpoint: c.name,
    step_number: c.stepNumber,
    metrics: { step: c.stepNumber, ...c.metrics },
    fine_tuning_job_id: c.jobId,
  };
}

function jobNotFound(id: string): ApiError {
  return new ApiError(404, `No such fine-tuning job: ${id}`, 'invalid_request_error', 'fine_tuning_job_id', 'fine_tuning_job_not_found');
}

export class FineTuningService {
  constructor(
    private readonly store: Store,
    private readonly worker: FineTuningWorker,
    private readonly registry: ModelRegistry,
    readonly organization: string,
  ) {}

  async create(req: CreateFineTuningJobRequest): Promise<FineTuningJob> {
    if (req.method && req.method.type !== 'supervised') {
      throw ApiError.invalid(`method.type "${req.method.type}" is not supported: only "supervised" fine-tuning is.`, 'method.type', 'unsupported_value');
    }
    if (req.integrations && req.integrations.length > 0) throw ApiError.invalid('integrations are not supported.', 'integrations', 'unsupported_value');
    if (req.method?.supervised?.hyperparameters && req.hyperparameters) {
      throw ApiError.invalid('Give the hyperparameters in method.supervised.hyperparameters or in the deprecated hyperparameters, not both.', 'hyperparameters', 'invalid_value');
    }
    await this.registry.describe(req.model).catch((e) => {
      throw e instanceof ApiError && e.status === 404 ? new ApiError(404, `The model \`${req.model}\` does not exist or cannot be fine-tuned here.`, 'invalid_request_error', 'model', 'model_not_found') : e;
    });
    await this.checkFile(req.training_file, 'training_file');
    if (req.validation_file) await this.checkFile(req.validation_file, 'validation_file');
    const job = await this.store.fineTuning.create({
      model: req.model,
      trainingFile: req.training_file,
      validationFile: req.validation_file ?? null,
      suffix: req.suffix ?? null,
      seed: req.seed ?? randomInt(0, 2147483647),
      metadata: req.metadata ?? null,
      method: normaliseMethod(req.method, req.hyperparameters),
    });
    await this.store.fineTuning.addEvent(job.id, { level: 'info', type: 'message', message: `Created fine-tuning job: ${job.id}`, data: null });
    this.worker.notify();
    return toApiJob(job as Job, this.organization);
  }

  private async checkFile(id: string, param: string): Promise<void> {
    const file = await this.store.files.get(id);
    if (!file) throw new ApiError(400, `Invalid ${param}: no such file ${id}.`, 'invalid_request_error', param, 'file_not_found');
    if (file.purpose !== 'fine-tune') throw ApiError.invalid(`Invalid ${param}: ${id} was uploaded with purpose "${file.purpose}"; fine-tuning data needs purpose "fine-tune".`, param, 'invalid_file_purpose');
  }

  async list(q: PageQuery, query: Record<string, unknown>) {
    const metadata: Record<string, string> = {};
    for (const [k, v] of Object.entries(query)) {
      const m = /^metadata\[(.+)\]$/.exec(k);
      if (m && typeof v === 'string') metadata[m[1]] = v;
    }
    try {
      const page = await this.store.fineTuning.list({ after: q.after, limit: parseLimit(q.limit, 100, 20), metadata });
      return { object: 'list' as const, data: page.data.map((j) => toApiJob(j as Job, this.organization)), has_more: page.hasMore };
    } catch (e) {
      if (e instanceof UnknownCursorError) throw cursorNotFound(e);
      throw e;
    }
  }

  async get(id: string): Promise<FineTuningJob> {
    const job = await this.store.fineTuning.get(id);
    if (!job) throw jobNotFound(id);
    return toApiJob(job as Job, this.organization);
  }

  async cancel(id: string): Promise<FineTuningJob> {
    const job = await this.worker.cancel(id);
    if (job) return toApiJob(job, this.organization);
    const current = await this.get(id);
    throw ApiError.invalid(`Job ${id} has already ${current.status === 'cancelled' ? 'been cancelled' : 'finished'} (${current.status}).`, 'fine_tuning_job_id', 'job_not_cancellable');
  }

  async pause(id: string): Promise<FineTuningJob> {
    const current = await this.get(id);
    if (current.status === 'succeeded' || current.status === 'failed' || current.status === 'cancelled') {
      throw ApiError.invalid(`Job ${id} has finished (${current.status}) and cannot be paused.`, 'fine_tuning_job_id', 'job_not_pausable');
    }
    return toApiJob((await this.worker.pause(id))!, this.organization);
  }

  async resume(id: string): Promise<FineTuningJob> {
    const job = await this.worker.resume(id);
    if (job) return toApiJob(job, this.organization);
    const current = await this.get(id);
    throw ApiError.invalid(`Job ${id} is ${current.status}, not paused: only a paused job can be resumed.`, 'fine_tuning_job_id', 'job_not_paused');
  }

  async events(id: string, q: PageQuery) {
    await this.get(id);
    try {
      const page = await this.store.fineTuning.events(id, { after: q.after, limit: parseLimit(q.limit, 100, 20) });
      return { object: 'list' as const, data: page.data.map(toApiEvent), has_more: page.hasMore };
    } catch (e) {
      if (e instanceof UnknownCursorError) throw cursorNotFound(e);
      throw e;
    }
  }

  async checkpoints(id: string, q: PageQuery) {
    await this.get(id);
    try {
      const page = await this.store.fineTuning.checkpoints(id, { after: q.after, limit: parseLimit(q.limit, 100, 10) });
      const data = page.data.map(toApiCheckpoint);
      return { object: 'list' as const, data, first_id: data[0]?.id ?? null, last_id: data[data.length - 1]?.id ?? null, has_more: page.hasMore };
    } catch (e) {
      if (e instanceof UnknownCursorError) throw cursorNotFound(e);
      throw e;
    }
  }

  /** DELETE /v1/models/{model} for a fine-tuned model: the registry stops serving it, then the store removes it. */
  async deleteModel(id: string): Promise<boolean> {
    const model = await this.store.models.get(id);
    if (!model) return false;
    this.registry.unload(id);
    await this.store.deleteModel(id);
    return true;
  }
}
