/**
 * The metadata database: SQLite through better-sqlite3, behind Kysely so that
 * every query is written once for SQLite and PostgreSQL alike. Migrations run
 * at open. WAL journal: readers never wait for the writer, and a commit
 * survives a crash of this process (SIGKILL) the moment it returns.
 */
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect } from 'kysely';
import { migrations } from './migrations/index.ts';
import type { Database } from './tables.ts';

export async function openDatabase(path: string): Promise<Kysely<Database>> {
  const sqlite = new BetterSqlite3(path);
  sqlite.pragma('journal_mode = WAL');
  // NORMAL with WAL: a commit is durable against a process crash; only a power loss can lose the last ones.
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('busy_timeout = 5000');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
  // Migrations of different resources are independent (each creates its own tables): one added by a later
  // release with a lower number than one already applied still runs.
  const { error, results } = await new Migrator({ db, provider: migrations, allowUnorderedMigrations: true }).migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error || failed) {
    await db.destroy();
    throw new Error(`${path}: migration ${failed?.migrationName ?? ''} failed: ${(error as Error)?.message ?? error}`);
  }
  return db;
}
