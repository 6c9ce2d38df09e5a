/** The Evals API: evals, their runs, and each run's output items (one row per data source item, written before the run starts). */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('evals')
    .addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('id', 'text', (c) => c.notNull().unique())
    .addColumn('created_at', 'integer', (c) => c.notNull())
    .addColumn('updated_at', 'integer', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('metadata', 'text')
    .addColumn('data_source_config', 'text', (c) => c.notNull())
    .addColumn('testing_criteria', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('evals_by_update').on('evals').columns(['updated_at', 'seq']).execute();

  await db.schema
    .createTable('eval_runs')
    .addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('id', 'text', (c) => c.notNull().unique())
    .addColumn('eval_id', 'text', (c) => c.notNull())
    .addColumn('created_at', 'integer', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('model', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('data_source', 'text', (c) => c.notNull())
    .addColumn('metadata', 'text')
    .addColumn('error', 'text')
    .addColumn('result_counts', 'text', (c) => c.notNull())
    .addColumn('per_model_usage', 'text', (c) => c.notNull())
    .addColumn('per_testing_criteria_results', 'text', (c) => c.notNull())
    .addColumn('items_ready', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.createIndex('eval_runs_by_eval').on('eval_runs').columns(['eval_id', 'seq']).execute();
  await db.schema.createIndex('eval_runs_by_status').on('eval_runs').columns(['status', 'seq']).execute();

  await db.schema
    .createTable('eval_run_items')
    .addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('id', 'text', (c) => c.notNull().unique())
    .addColumn('run_id', 'text', (c) => c.notNull())
    .addColumn('eval_id', 'text', (c) => c.notNull())
    .addColumn('created_at', 'integer', (c) => c.notNull())
    .addColumn('item_index', 'integer', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('source', 'text')
    .addColumn('source_error', 'text')
    .addColumn('sample', 'text')
    .addColumn('results', 'text')
    .execute();
  await db.schema.createIndex('eval_run_items_by_run').on('eval_run_items').columns(['run_id', 'status', 'seq']).execute();
  await db.schema.createIndex('eval_run_items_by_run_seq').on('eval_run_items').columns(['run_id', 'seq']).execute();
}
