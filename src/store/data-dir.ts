/**
 * The data directory's layout, and every write under it: the store is the
 * only code that creates, moves or removes anything there.
 *
 *   <data>/mmrec.sqlite   metadata (SQLite, WAL)
 *   <data>/files/<id>     bytes of uploaded and server-made files
 *   <data>/jobs/<id>/     a fine-tuning job's work: prepared data, the trainer's checkpoints
 *   <data>/models/<dir>/  published fine-tuned models
 *   <data>/tmp/           writes in progress; emptied at start
 *
 * Crash safety comes from ordering: bytes are written under tmp/, flushed,
 * and renamed into place before the database row that refers to them is
 * committed; things are removed after their row is. So a SIGKILL at any
 * moment can leave an orphan (cleaned at the next start), never a row that
 * points at something half-written or missing.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, createReadStream, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync, type ReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';

/** A write stopped because the source was larger than allowed. */
export class TooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`larger than ${limit} bytes`);
  }
}

const SAFE_NAME = /^[A-Za-z0-9._:-]+$/;

/** Bytes written under tmp/, complete and flushed, not yet a file. */
export interface StagedBytes {
  path: string;
  bytes: number;
  sha256: string;
}

export class DataDir {
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
    for (const d of ['files', 'jobs', 'models', 'tmp']) mkdirSync(join(this.root, d), { recursive: true });
    // Whatever is in tmp/ was being written when the process stopped.
    for (const name of readdirSync(join(this.root, 'tmp'))) rmSync(join(this.root, 'tmp', name), { recursive: true, force: true });
  }

  get databasePath(): string {
    return join(this.root, 'mmrec.sqlite');
  }

  /** A path under the data directory from one relative to it; refuses anything that would leave it. */
  resolve(rel: string): string {
    const abs = resolve(this.root, rel);
    if (abs !== this.root && !abs.startsWith(this.root + sep)) throw new Error(`${rel} is outside the data directory`);
    return abs;
  }

  relative(abs: string): string {
    const rel = relative(this.root, abs);
    if (rel.startsWith('..') || isAbsolute(rel)) throw new Error(`${abs} is outside the data directory`);
    return rel;
  }

  private filePath(id: string): string {
    if (!SAFE_NAME.test(id)) throw new Error(`bad file id ${id}`);
    return join(this.root, 'files', id);
  }

  /**
   * Streams `source` to a staging file under tmp/: at most `maxBytes`
   * (TooLargeError otherwise, nothing kept), hashed as it goes, flushed to
   * disk. Never holds the whole file in memory. commitFile moves it into place.
   */
  async stageFile(source: Readable | AsyncIterable<Uint8Array>, maxBytes: number): Promise<StagedBytes> {
    const path = join(this.root, 'tmp', `${randomBytes(8).toString('hex')}.part`);
    const hash = createHash('sha256');
    let bytes = 0;
    const handle = await open(path, 'w');
    try {
      for await (const chunk of source) {
        const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Uint8Array);
        bytes += buf.byteLength;
        if (bytes > maxBytes) throw new TooLargeError(maxBytes);
        hash.update(buf);
        await handle.write(buf);
      }
      await handle.sync();
    } catch (e) {
      await handle.close();
      rmSync(path, { force: true });
      throw e;
    }
    await handle.close();
    return { path, bytes, sha256: hash.digest('hex') };
  }

  /** Moves staged bytes to files/<id> (atomic rename). */
  commitFile(staged: StagedBytes, id: string): void {
    renameSync(staged.path, this.filePath(id));
    syncDirectory(join(this.root, 'files'));
  }

  discard(staged: StagedBytes): void {
    rmSync(staged.path, { force: true });
  }

  readFile(id: string, range?: { start: number; end: number }): ReadStream {
    return createReadStream(this.filePath(id), range);
  }

  hasFile(id: string): boolean {
    return existsSync(this.filePath(id));
  }

  removeFile(id: string): void {
    rmSync(this.filePath(id), { force: true });
  }

  /** The ids of every file's bytes on disk (to find orphans). */
  fileIds(): string[] {
    return readdirSync(join(this.root, 'files'));
  }

  /** The work directory of a job (created), absolute: its trainer writes there. */
  jobDir(jobId: string): string {
    if (!SAFE_NAME.test(jobId)) throw new Error(`bad job id ${jobId}`);
    const dir = join(this.root, 'jobs', jobId);
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  removeJobDir(jobId: string): void {
    if (!SAFE_NAME.test(jobId)) throw new Error(`bad job id ${jobId}`);
    rmSync(join(this.root, 'jobs', jobId), { recursive: true, force: true });
  }

  jobIds(): string[] {
    return readdirSync(join(this.root, 'jobs'));
  }

  /** Moves a finished model directory (somewhere under the data directory) to models/<name>, atomically; returns its relative path. */
  publishModel(source: string, name: string): string {
    const dirName = name.replace(/[^A-Za-z0-9._-]/g, '_');
    const target = join(this.root, 'models', dirName);
    this.relative(source); // must be ours
    rmSync(target, { recursive: true, force: true }); // an orphan of an earlier, interrupted publish
    renameSync(source, target);
    syncDirectory(join(this.root, 'models'));
    return this.relative(target);
  }

  removeDir(rel: string): void {
    const abs = this.resolve(rel);
    if (abs === this.root) throw new Error('refusing to remove the data directory');
    rmSync(abs, { recursive: true, force: true });
  }

  modelDirs(): string[] {
    return readdirSync(join(this.root, 'models')).map((n) => join('models', n));
  }

  /** A scratch path under tmp/ (removed at the next start if left there). */
  scratch(name: string): string {
    return join(this.root, 'tmp', `${randomBytes(6).toString('hex')}-${name}`);
  }

  size(rel: string): number {
    return statSync(this.resolve(rel)).size;
  }
}

/** Makes a rename in `dir` durable (the rename itself survives a process crash without it; a power loss may not). */
function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
