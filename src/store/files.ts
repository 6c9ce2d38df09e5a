/** Uploaded and server-made files: a row per file, its bytes under the data directory. */
import type { Kysely } from 'kysely';
import type { Readable } from 'node:stream';
import type { DataDir, StagedBytes } from './data-dir.ts';
import { newId, nowSeconds } from './ids.ts';
import { toPage, UnknownCursorError, type Page, type PageRequest } from './pagination.ts';
import type { Database, FilesTable } from './tables.ts';

export interface StoredFile {
  id: string;
  filename: string;
  purpose: string;
  bytes: number;
  createdAt: number;
  expiresAt: number | null;
  sha256: string;
}

function toFile(row: Omit<FilesTable, 'seq'>): StoredFile {
  return { id: row.id, filename: row.filename, purpose: row.purpose, bytes: row.bytes, createdAt: row.created_at, expiresAt: row.expires_at, sha256: row.sha256 };
}

export class FilesRepository {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dir: DataDir,
  ) {}

  /** Streams bytes to a staging area (at most maxBytes: TooLargeError); `create` or `discard` follows. */
  stage(content: Readable | AsyncIterable<Uint8Array>, maxBytes: number): Promise<StagedBytes> {
    return this.dir.stageFile(content, maxBytes);
  }

  discard(staged: StagedBytes): void {
    this.dir.discard(staged);
  }

  /** Moves staged bytes into place, then records the file: the row exists only once the bytes are complete. */
  async create(staged: StagedBytes, input: { filename: string; purpose: string; expiresAfterSeconds?: number; id?: string }): Promise<StoredFile> {
    const id = input.id ?? newId('file-');
    const { bytes, sha256 } = staged;
    this.dir.commitFile(staged, id);
    const createdAt = nowSeconds();
    const row = {
      id,
      filename: input.filename,
      purpose: input.purpose,
      bytes,
      created_at: createdAt,
      expires_at: input.expiresAfterSeconds ? createdAt + input.expiresAfterSeconds : null,
      sha256,
    };
    try {
      await this.db.insertInto('files').values(row).execute();
    } catch (e) {
      this.dir.removeFile(id);
      throw e;
    }
    return toFile(row);
  }

  /**
   * A file the server writes itself (a results file, a batch's output): staged and recorded in one go.
   * `id`: one reserved beforehand (newFileId), so that a writer interrupted after recording it can tell it exists.
   */
  async createFrom(content: Readable | AsyncIterable<Uint8Array>, input: { filename: string; purpose: string; expiresAfterSeconds?: number; id?: string }): Promise<StoredFile> {
    const staged = await this.stage(content, Number.MAX_SAFE_INTEGER);
    return this.create(staged, input);
  }

  /** An id for a file to be created later (createFrom's `id`). */
  newFileId(): string {
    return newId('file-');
  }

  async get(id: string): Promise<StoredFile | undefined> {
    const row = await this.db.selectFrom('files').selectAll().where('id', '=', id).executeTakeFirst();
    return row && !expired(row) ? toFile(row) : undefined;
  }

  async list(req: PageRequest & { purpose?: string }): Promise<Page<StoredFile>> {
    let q = this.db.selectFrom('files').selectAll();
    if (req.purpose) q = q.where('purpose', '=', req.purpose);
    if (req.after) {
      const cursor = await this.db.selectFrom('files').select('seq').where('id', '=', req.after).executeTakeFirst();
      if (!cursor) throw new UnknownCursorError(req.after);
      q = q.where('seq', req.order === 'asc' ? '>' : '<', cursor.seq);
    }
    q = q.where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', nowSeconds())]));
    const rows = await q.orderBy('seq', req.order).limit(req.limit + 1).execute();
    return toPage(rows.map(toFile), req.limit);
  }

  /** Removes the row, then the bytes. False when there was no such file. */
  async delete(id: string): Promise<boolean> {
    const r = await this.db.deleteFrom('files').where('id', '=', id).executeTakeFirst();
    if (Number(r.numDeletedRows) === 0) return false;
    this.dir.removeFile(id);
    return true;
  }

  content(file: StoredFile, range?: { start: number; end: number }): Readable {
    return this.dir.readFile(file.id, range);
  }

  /** Files past their expiry are deleted (rows, then bytes); returns how many. */
  async deleteExpired(): Promise<number> {
    const rows = await this.db.selectFrom('files').select('id').where('expires_at', 'is not', null).where('expires_at', '<=', nowSeconds()).execute();
    for (const r of rows) await this.delete(r.id);
    return rows.length;
  }

  /** Bytes on disk that no row refers to: left by a crash between writing and recording. */
  async removeOrphans(): Promise<number> {
    const known = new Set((await this.db.selectFrom('files').select('id').execute()).map((r) => r.id));
    let removed = 0;
    for (const id of this.dir.fileIds()) {
      if (!known.has(id)) {
        this.dir.removeFile(id);
        removed++;
      }
    }
    return removed;
  }
}

function expired(row: { expires_at: number | null }): boolean {
  return row.expires_at !== null && row.expires_at <= nowSeconds();
}
