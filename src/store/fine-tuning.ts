/**
 * Fine-tuning jobs, their events and their checkpoints. The repository stores
 * and reads; the job's state machine (src/jobs/fine-tuning/) decides what
 * changes, and changes a job's status only through `transition`, a
 * conditional update: it takes effect only from the statuses it names, so two
 * actors (a cancel and the worker finishing) can never both win.
 */
import type { Kysely, Selectable, Updateable } from 'kysely';
import { newId, nowSeconds } from './ids.ts';
import { toPage, UnknownCursorError, type Page, type PageRequest } from './pagination.ts';
import type { Database, FineTuningCheckpointsTable, FineTuningEventsTable, FineTuningJobsTable } from './tables.ts';

export type JobStatus = 'validating_files' | 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'paused';
export const FINISHED: readonly JobStatus[] = ['succeeded', 'failed', 'cancelled'];

export interface JobError {
  code: string;
  message: string;
  param: string | null;
}

export interface JobRecord<Method = unknown, Hyperparameters = unknown> {
  id: string;
  createdAt: number;
  model: string;
  trainingFile: string;
  validationFile: string | null;
  suffix: string | null;
  seed: number;
  metadata: Record<string, string> | null;
  method: Method;
  hyperparameters: Hyperparameters | null;
  status: JobStatus;
  error: JobError | null;
  fineTunedModel: string | null;
  finishedAt: number | null;
  trainedTokens: number | null;
  estimatedFinish: number | null;
  resultFiles: string[];
  pauseRequested: boolean;
  attempts: number;
}

export interface JobEvent {
  id: string;
  createdAt: number;
  level: 'info' | 'warn' | 'error';
  message: string;
  type: 'message' | 'metrics';
  data: Record<string, unknown> | null;
}

export interface JobCheckpoint {
  id: string;
  jobId: string;
  createdAt: number;
  stepNumber: number;
  metrics: Record<string, number>;
  name: string;
  /** Relative to the data directory. */
  dir: string;
}

type JobPatch = Partial<Pick<JobRecord, 'hyperparameters' | 'error' | 'fineTunedModel' | 'finishedAt' | 'trainedTokens' | 'estimatedFinish' | 'resultFiles' | 'pauseRequested' | 'attempts'>>;

const json = (v: unknown) => (v === null || v === undefined ? null : JSON.stringify(v));

function toJob(r: Selectable<FineTuningJobsTable>): JobRecord {
  return {
    id: r.id,
    createdAt: r.created_at,
    model: r.model,
    trainingFile: r.training_file,
    validationFile: r.validation_file,
    suffix: r.suffix,
    seed: r.seed,
    metadata: r.metadata ? JSON.parse(r.metadata) : null,
    method: JSON.parse(r.method),
    hyperparameters: r.hyperparameters ? JSON.parse(r.hyperparameters) : null,
    status: r.status as JobStatus,
    error: r.error ? JSON.parse(r.error) : null,
    fineTunedModel: r.fine_tuned_model,
    finishedAt: r.finished_at,
    trainedTokens: r.trained_tokens,
    estimatedFinish: r.estimated_finish,
    resultFiles: JSON.parse(r.result_files),
    pauseRequested: r.pause_requested === 1,
    attempts: r.attempts,
  };
}

function patchColumns(patch: JobPatch): Updateable<FineTuningJobsTable> {
  const out: Updateable<FineTuningJobsTable> = {};
  if ('hyperparameters' in patch) out.hyperparameters = json(patch.hyperparameters);
  if ('error' in patch) out.error = json(patch.error);
  if ('fineTunedModel' in patch) out.fine_tuned_model = patch.fineTunedModel ?? null;
  if ('finishedAt' in patch) out.finished_at = patch.finishedAt ?? null;
  if ('trainedTokens' in patch) out.trained_tokens = patch.trainedTokens ?? null;
  if ('estimatedFinish' in patch) out.estimated_finish = patch.estimatedFinish ?? null;
  if ('resultFiles' in patch) out.result_files = JSON.stringify(patch.resultFiles ?? []);
  if ('pauseRequested' in patch) out.pause_requested = patch.pauseRequested ? 1 : 0;
  if ('attempts' in patch) out.attempts = patch.attempts ?? 0;
  return out;
}

function toEvent(r: Selectable<FineTuningEventsTable>): JobEvent {
  return { id: r.id, createdAt: r.created_at, level: r.level as JobEvent['level'], message: r.message, type: r.type as JobEvent['type'], data: r.data ? JSON.parse(r.data) : null };
}

function toCheckpoint(r: Selectable<FineTuningCheckpointsTable>): JobCheckpoint {
  return { id: r.id, jobId: r.job_id, createdAt: r.created_at, stepNumber: r.step_number, metrics: JSON.parse(r.metrics), name: r.fine_tuned_model_checkpoint, dir: r.dir };
}

export class FineTuningRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async create(input: { model: string; trainingFile: string; validationFile: string | null; suffix: string | null; seed: number; metadata: Record<string, string> | null; method: unknown }): Promise<JobRecord> {
    const row = {
      id: newId('ftjob-'),
      created_at: nowSeconds(),
      model: input.model,
      training_file: input.trainingFile,
      validation_file: input.validationFile,
      suffix: input.suffix,
      seed: input.seed,
      metadata: json(input.metadata),
      method: JSON.stringify(input.method),
      hyperparameters: null,
      status: 'validating_files',
      error: null,
      fine_tuned_model: null,
      finished_at: null,
      trained_tokens: null,
      estimated_finish: null,
      result_files: '[]',
      pause_requested: 0,
      attempts: 0,
    };
    await this.db.insertInto('fine_tuning_jobs').values(row).execute();
    return (await this.get(row.id))!;
  }

  async get(id: string): Promise<JobRecord | undefined> {
    const r = await this.db.selectFrom('fine_tuning_jobs').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toJob(r);
  }

  /** Newest first, optionally only jobs whose metadata has every given key/value. */
  async list(req: Omit<PageRequest, 'order'> & { metadata?: Record<string, string> }): Promise<Page<JobRecord>> {
    let q = this.db.selectFrom('fine_tuning_jobs').selectAll();
    if (req.after) {
      const cursor = await this.db.selectFrom('fine_tuning_jobs').select('seq').where('id', '=', req.after).executeTakeFirst();
      if (!cursor) throw new UnknownCursorError(req.after);
      q = q.where('seq', '<', cursor.seq);
    }
    const filter = Object.entries(req.metadata ?? {});
    // Metadata is filtered here rather than in SQL (JSON functions differ between SQLite and PostgreSQL); the scan is bounded by reading in pages.
    const out: JobRecord[] = [];
    let before = Infinity;
    for (;;) {
      let pageQuery = q;
      if (before !== Infinity) pageQuery = pageQuery.where('seq', '<', before);
      const rows = await pageQuery.orderBy('seq', 'desc').limit(200).execute();
      for (const r of rows) {
        const job = toJob(r);
        if (filter.every(([k, v]) => job.metadata?.[k] === v)) out.push(job);
        if (out.length > req.limit) return toPage(out, req.limit);
      }
      if (rows.length < 200) return toPage(out, req.limit);
      before = rows[rows.length - 1].seq;
    }
  }

  /** Jobs in one of `statuses`, oldest first (the worker's queue, and recovery at start). */
  async withStatus(statuses: readonly JobStatus[]): Promise<JobRecord[]> {
    const rows = await this.db.selectFrom('fine_tuning_jobs').selectAll().where('status', 'in', statuses as JobStatus[]).orderBy('seq', 'asc').execute();
    return rows.map(toJob);
  }

  /** Moves the job to `to` (with `patch`) if its status is one of `from`; returns the updated job, or undefined when it was not. */
  async transition(id: string, from: readonly JobStatus[], to: JobStatus, patch: JobPatch = {}): Promise<JobRecord | undefined> {
    const r = await this.db
      .updateTable('fine_tuning_jobs')
      .set({ status: to, ...patchColumns(patch) })
      .where('id', '=', id)
      .where('status', 'in', from as JobStatus[])
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0 ? this.get(id) : undefined;
  }

  /** Updates fields other than the status. */
  async update(id: string, patch: JobPatch): Promise<void> {
    const columns = patchColumns(patch);
    if (Object.keys(columns).length === 0) return;
    await this.db.updateTable('fine_tuning_jobs').set(columns).where('id', '=', id).execute();
  }

  async addEvent(jobId: string, e: Omit<JobEvent, 'id' | 'createdAt'>): Promise<JobEvent> {
    const row = { id: newId('ftevent-'), job_id: jobId, created_at: nowSeconds(), level: e.level, message: e.message, type: e.type, data: json(e.data) };
    await this.db.insertInto('fine_tuning_events').values(row).execute();
    return { id: row.id, createdAt: row.created_at, level: e.level, message: e.message, type: e.type, data: e.data };
  }

  /** Newest first, as OpenAI lists them. */
  async events(jobId: string, req: Omit<PageRequest, 'order'>): Promise<Page<JobEvent>> {
    let q = this.db.selectFrom('fine_tuning_events').selectAll().where('job_id', '=', jobId);
    if (req.after) {
      const cursor = await this.db.selectFrom('fine_tuning_events').select('seq').where('id', '=', req.after).where('job_id', '=', jobId).executeTakeFirst();
      if (!cursor) throw new UnknownCursorError(req.after);
      q = q.where('seq', '<', cursor.seq);
    }
    const rows = await q.orderBy('seq', 'desc').limit(req.limit + 1).execute();
    return toPage(rows.map(toEvent), req.limit);
  }

  async addCheckpoint(c: Omit<JobCheckpoint, 'id' | 'createdAt'>): Promise<JobCheckpoint> {
    const row = { id: newId('ftckpt_'), job_id: c.jobId, created_at: nowSeconds(), step_number: c.stepNumber, metrics: JSON.stringify(c.metrics), fine_tuned_model_checkpoint: c.name, dir: c.dir };
    await this.db.insertInto('fine_tuning_checkpoints').values(row).execute();
    return toCheckpoint({ ...row, seq: 0 });
  }

  async updateCheckpointMetrics(id: string, metrics: Record<string, number>): Promise<void> {
    await this.db.updateTable('fine_tuning_checkpoints').set({ metrics: JSON.stringify(metrics) }).where('id', '=', id).execute();
  }

  /** Newest first. */
  async checkpoints(jobId: string, req: Omit<PageRequest, 'order'>): Promise<Page<JobCheckpoint>> {
    let q = this.db.selectFrom('fine_tuning_checkpoints').selectAll().where('job_id', '=', jobId);
    if (req.after) {
      const cursor = await this.db.selectFrom('fine_tuning_checkpoints').select('seq').where('id', '=', req.after).where('job_id', '=', jobId).executeTakeFirst();
      if (!cursor) throw new UnknownCursorError(req.after);
      q = q.where('seq', '<', cursor.seq);
    }
    const rows = await q.orderBy('seq', 'desc').limit(req.limit + 1).execute();
    return toPage(rows.map(toCheckpoint), req.limit);
  }

  async checkpointByName(name: string): Promise<JobCheckpoint | undefined> {
    const r = await this.db.selectFrom('fine_tuning_checkpoints').selectAll().where('fine_tuned_model_checkpoint', '=', name).executeTakeFirst();
    return r && toCheckpoint(r);
  }

  async checkpointAtStep(jobId: string, step: number): Promise<JobCheckpoint | undefined> {
    const r = await this.db.selectFrom('fine_tuning_checkpoints').selectAll().where('job_id', '=', jobId).where('step_number', '=', step).executeTakeFirst();
    return r && toCheckpoint(r);
  }

  /** All but the newest `keep` checkpoints of a job: the caller removes them (rows here, then their directories). */
  async removeOldCheckpoints(jobId: string, keep: number): Promise<JobCheckpoint[]> {
    const rows = await this.db.selectFrom('fine_tuning_checkpoints').selectAll().where('job_id', '=', jobId).orderBy('seq', 'desc').execute();
    const old = rows.slice(keep).map(toCheckpoint);
    if (old.length > 0) await this.db.deleteFrom('fine_tuning_checkpoints').where('id', 'in', old.map((c) => c.id)).execute();
    return old;
  }

  async checkpointByDir(dir: string): Promise<JobCheckpoint | undefined> {
    const r = await this.db.selectFrom('fine_tuning_checkpoints').selectAll().where('dir', '=', dir).executeTakeFirst();
    return r && toCheckpoint(r);
  }

  async allCheckpointDirs(): Promise<string[]> {
    return (await this.db.selectFrom('fine_tuning_checkpoints').select('dir').execute()).map((r) => r.dir);
  }
}
