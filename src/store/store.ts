/**
 * The store: everything the server keeps beyond a request, in one place.
 * Repositories per resource over one database, and the data directory for
 * bytes. Operations that touch both (publishing a model, removing a job's
 * checkpoints) live here, so the ordering that makes them crash-safe (see
 * data-dir.ts) is written once.
 */
import type { Kysely } from 'kysely';
import { BatchesRepository } from './batches.ts';
import { DataDir } from './data-dir.ts';
import { openDatabase } from './database.ts';
import { EvalsRepository } from './evals.ts';
import { FilesRepository } from './files.ts';
import { FineTuningRepository, type JobCheckpoint } from './fine-tuning.ts';
import { ModelsRepository, type StoredModel } from './models.ts';
import { ConversationsRepository } from './conversations.ts';
import { ResponsesRepository } from './responses.ts';
import type { Database } from './tables.ts';

export { TooLargeError } from './data-dir.ts';
export { UnknownCursorError, type Page } from './pagination.ts';

export const DEFAULT_MAX_CONVERSATION_ITEMS = 10_000;

export interface StoreOptions {
  /** Items one conversation may hold (--max-conversation-items). */
  maxConversationItems?: number;
}

export interface StoreOpenReport {
  orphanFiles: number;
  orphanModelDirs: number;
  orphanJobDirs: number;
  expiredFiles: number;
}

export class Store {
  readonly files: FilesRepository;
  readonly fineTuning: FineTuningRepository;
  readonly models: ModelsRepository;
  readonly batches: BatchesRepository;
  readonly evals: EvalsRepository;
  readonly responses: ResponsesRepository;
  readonly conversations: ConversationsRepository;

  private constructor(
    private readonly db: Kysely<Database>,
    readonly dataDir: DataDir,
    options: StoreOptions,
  ) {
    this.files = new FilesRepository(db, dataDir);
    this.fineTuning = new FineTuningRepository(db);
    this.models = new ModelsRepository(db);
    this.batches = new BatchesRepository(db);
    this.evals = new EvalsRepository(db);
    this.responses = new ResponsesRepository(db);
    this.conversations = new ConversationsRepository(db, options.maxConversationItems ?? DEFAULT_MAX_CONVERSATION_ITEMS);
  }

  /** Opens (creating) the data directory and its database, applies migrations, and removes what a crash left behind. */
  static async open(root: string, options: StoreOptions = {}): Promise<{ store: Store; report: StoreOpenReport }> {
    const dataDir = new DataDir(root);
    const db = await openDatabase(dataDir.databasePath);
    const store = new Store(db, dataDir, options);
    const report = await store.removeOrphans();
    return { store, report };
  }

  private async removeOrphans(): Promise<StoreOpenReport> {
    const orphanFiles = await this.files.removeOrphans();
    const expiredFiles = await this.files.deleteExpired();
    const published = new Set((await this.models.list()).map((m) => m.dir));
    let orphanModelDirs = 0;
    for (const dir of this.dataDir.modelDirs()) {
      if (!published.has(dir)) {
        this.dataDir.removeDir(dir);
        orphanModelDirs++;
      }
    }
    const jobs = new Set((await this.fineTuning.withStatus(['validating_files', 'queued', 'running', 'succeeded', 'failed', 'cancelled', 'paused'])).map((j) => j.id));
    let orphanJobDirs = 0;
    for (const id of this.dataDir.jobIds()) {
      if (!jobs.has(id)) {
        this.dataDir.removeJobDir(id);
        orphanJobDirs++;
      }
    }
    return { orphanFiles, orphanModelDirs, orphanJobDirs, expiredFiles };
  }

  /** The absolute work directory of a job (its trainer writes there). */
  jobDir(jobId: string): string {
    return this.dataDir.jobDir(jobId);
  }

  removeJobDir(jobId: string): void {
    this.dataDir.removeJobDir(jobId);
  }

  /** An absolute path from a stored relative one. */
  resolve(rel: string): string {
    return this.dataDir.resolve(rel);
  }

  /** Moves a finished model directory (under a job's directory) into models/ and records it under `model.id`. */
  async publishModel(source: string, model: Omit<StoredModel, 'createdAt' | 'dir'>): Promise<StoredModel> {
    const dir = this.dataDir.publishModel(source, model.id);
    try {
      return await this.models.add({ ...model, dir });
    } catch (e) {
      this.dataDir.removeDir(dir);
      throw e;
    }
  }

  /** Removes a published model: its row, then its directory. */
  async deleteModel(id: string): Promise<StoredModel | undefined> {
    const m = await this.models.delete(id);
    if (m) this.dataDir.removeDir(m.dir);
    return m;
  }

  /** Records a checkpoint whose directory (under the job's) is complete, and drops all but the newest `keep`, rows then directories. */
  async addCheckpoint(c: Omit<JobCheckpoint, 'id' | 'createdAt' | 'dir'> & { absoluteDir: string }, keep: number): Promise<{ added: JobCheckpoint; removed: JobCheckpoint[] }> {
    const added = await this.fineTuning.addCheckpoint({ jobId: c.jobId, stepNumber: c.stepNumber, metrics: c.metrics, name: c.name, dir: this.dataDir.relative(c.absoluteDir) });
    const removed = await this.fineTuning.removeOldCheckpoints(c.jobId, keep);
    for (const r of removed) this.dataDir.removeDir(r.dir);
    return { added, removed };
  }

  async close(): Promise<void> {
    await this.db.destroy();
  }
}
