/**
 * The Files API over the store: uploads (streamed, bounded), listing, content,
 * deletion, and the objects as OpenAI shapes them.
 */
import type { Readable } from 'node:stream';
import { ApiError } from '../protocol/errors.ts';
import { UPLOAD_PURPOSES, type ListFilesQuery, type OpenAIFile } from '../protocol/files.ts';
import { TooLargeError, UnknownCursorError, type Store } from '../store/store.ts';
import type { StoredFile } from '../store/files.ts';
import type { StagedBytes } from '../store/data-dir.ts';

export const DEFAULT_MAX_FILE_BYTES = 512 * 1024 * 1024;

export function toApiFile(f: StoredFile): OpenAIFile {
  const out: OpenAIFile = { id: f.id, object: 'file', bytes: f.bytes, created_at: f.createdAt, filename: f.filename, purpose: f.purpose, status: 'processed' };
  if (f.expiresAt !== null) out.expires_at = f.expiresAt;
  return out;
}

export function fileNotFound(id: string, param = 'file_id'): ApiError {
  return new ApiError(404, `No such File object: ${id}`, 'invalid_request_error', param, 'file_not_found');
}

/** A list query's `limit`: a digit string in [1, max], or the default. */
export function parseLimit(raw: string | undefined, max: number, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > max) throw ApiError.invalid(`Invalid 'limit': must be an integer from 1 to ${max} (got ${raw}).`, 'limit', 'invalid_value');
  return n;
}

export function cursorNotFound(e: UnknownCursorError): ApiError {
  return ApiError.invalid(`Invalid 'after': no object with id ${e.cursor} in this list.`, 'after', 'invalid_value');
}

export class FileService {
  constructor(
    private readonly store: Store,
    readonly maxFileBytes: number = DEFAULT_MAX_FILE_BYTES,
  ) {}

  /** Stages an upload's bytes (413 past the limit); nothing is listed until `commit`. */
  async stage(content: Readable): Promise<StagedBytes> {
    try {
      return await this.store.files.stage(content, this.maxFileBytes);
    } catch (e) {
      if (e instanceof TooLargeError) throw fileTooLarge(this.maxFileBytes);
      throw e;
    }
  }

  discard(staged: StagedBytes): void {
    this.store.files.discard(staged);
  }

  /** Checks the form's fields and records the staged file; 400 (and the bytes discarded) when a field is wrong. */
  async commit(staged: StagedBytes | undefined, filename: string, fields: Record<string, string>): Promise<OpenAIFile> {
    try {
      if (!staged) throw ApiError.invalid("Missing required parameter: 'file'.", 'file', 'missing_required_parameter');
      const purpose = fields.purpose;
      if (purpose === undefined) throw ApiError.invalid("Missing required parameter: 'purpose'.", 'purpose', 'missing_required_parameter');
      if (!(UPLOAD_PURPOSES as readonly string[]).includes(purpose)) {
        throw ApiError.invalid(`Invalid 'purpose': must be one of ${UPLOAD_PURPOSES.join(', ')} (got ${JSON.stringify(purpose)}).`, 'purpose', 'invalid_value');
      }
      const expiresAfterSeconds = expiry(fields);
      const file = await this.store.files.create(staged, { filename, purpose, expiresAfterSeconds });
      return toApiFile(file);
    } catch (e) {
      if (staged) this.store.files.discard(staged);
      throw e;
    }
  }

  async list(q: ListFilesQuery) {
    const limit = parseLimit(q.limit, 10000, 10000);
    try {
      const page = await this.store.files.list({ after: q.after, limit, order: q.order ?? 'desc', purpose: q.purpose });
      const data = page.data.map(toApiFile);
      return { object: 'list' as const, data, first_id: data[0]?.id ?? '', last_id: data[data.length - 1]?.id ?? '', has_more: page.hasMore };
    } catch (e) {
      if (e instanceof UnknownCursorError) throw cursorNotFound(e);
      throw e;
    }
  }

  async get(id: string): Promise<StoredFile> {
    const f = await this.store.files.get(id);
    if (!f) throw fileNotFound(id);
    return f;
  }

  async delete(id: string) {
    if (!(await this.store.files.delete(id))) throw fileNotFound(id);
    return { id, object: 'file' as const, deleted: true };
  }

  content(f: StoredFile): Readable {
    return this.store.files.content(f);
  }
}

export function fileTooLarge(limit: number): ApiError {
  return new ApiError(413, `File too large: this server accepts files of at most ${limit} bytes (--max-file-bytes).`, 'invalid_request_error', 'file', 'file_too_large');
}

/** OpenAI's `expires_after` ({anchor: "created_at", seconds: 3600…2592000}), as multipart sends it (`expires_after[anchor]`, `expires_after[seconds]`). */
function expiry(fields: Record<string, string>): number | undefined {
  const anchor = fields['expires_after[anchor]'];
  const seconds = fields['expires_after[seconds]'];
  if (anchor === undefined && seconds === undefined) return undefined;
  if (anchor !== 'created_at') throw ApiError.invalid(`Invalid 'expires_after.anchor': must be "created_at".`, 'expires_after.anchor', 'invalid_value');
  const n = Number(seconds);
  if (!/^\d+$/.test(seconds ?? '') || n < 3600 || n > 2592000) {
    throw ApiError.invalid(`Invalid 'expires_after.seconds': must be an integer from 3600 to 2592000 (got ${JSON.stringify(seconds)}).`, 'expires_after.seconds', 'invalid_value');
  }
  return n;
}
