/** Batches: a row per batch, and a row per finished input line (its output line, until the batch's files are written). */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('batches')
    .addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('id', 'text', (c) => c.notNull().unique())
    .addColumn('created_at', 'integer', (c) => c.notNull())
    .addColumn('endpoint', 'text', (c) => c.notNull())
    .addColumn('input_file_id', 'text', (c) => c.notNull())
    .addColumn('completion_window', 'text', (c) => c.notNull())
    .addColumn('metadata', 'text')
    .addColumn('output_expires_after', 'integer')
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('outcome', 'text')
    .addColumn('errors', 'text')
    .addColumn('model', 'text')
    .addColumn('output_file_id', 'text')
    .addColumn('error_file_id', 'text')
    .addColumn('total', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('completed', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('failed', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('input_tokens', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('cached_tokens', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('output_tokens', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('expires_at', 'integer', (c) => c.notNull())
    .addColumn('in_progress_at', 'integer')
    .addColumn('finalizing_at', 'integer')
    .addColumn('completed_at', 'integer')
    .addColumn('failed_at', 'integer')
    .addColumn('expired_at', 'integer')
    .addColumn('cancelling_at', 'integer')
    .addColumn('cancelled_at', 'integer')
    .execute();
  await db.schema.createIndex('batches_by_status').on('batches').columns(['status', 'seq']).execute();

  await db.schema
    .createTable('batch_results')
    .addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('batch_id', 'text', (c) => c.notNull())
    .addColumn('line', 'integer', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('text', 'text', (c) => c.notNull())
    .execute();
  // One result per input line: a line finished twice (before and after a restart) can never be recorded twice.
  await db.schema.createIndex('batch_results_by_line').on('batch_results').columns(['batch_id', 'line']).unique().execute();
  await db.schema.createIndex('batch_results_by_kind').on('batch_results').columns(['batch_id', 'kind', 'line']).execute();
}
