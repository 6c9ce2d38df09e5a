/** The Files API and fine-tuning jobs: files, jobs with their events and checkpoints, and the models they publish. */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('files')
    .addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('id', 'text', (c) => c.notNull().unique())
    .addColumn('filename', 'text', (c) => c.notNull())
    .addColumn('purpose', 'text', (c) => c.notNull())
    .addColumn('bytes', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'integer', (c) => c.notNull())
    .addColumn('expires_at', 'integer')
    .addColumn('sha256', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('files_by_purpose').on('files').columns(['purpose', 'seq']).execute();

  await db.schema
    .createTable('fine_tuning_jobs')
    .addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('id', 'text', (c) => c.notNull().unique())
    .addColumn('created_at', 'integer', (c) => c.notNull())
    .addColumn('model', 'text', (c) => c.notNull())
    .addColumn('training_file', 'text', (c) => c.notNull())
    .addColumn('validation_file', 'text')
    .addColumn('suffix', 'text')
    .addColumn('seed', 'integer', (c) => c.notNull())
    .addColumn('metadata', 'text')
    .addColumn('method', 'text', (c) => c.notNull())
    .addColumn('hyperparameters', 'text')
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('error', 'text')
    .addColumn('fine_tuned_model', 'text')
    .addColumn('finished_at', 'integer')
    .addColumn('trained_tokens', 'integer')
    .addColumn('estimated_finish', 'integer')
    .addColumn('result_files', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('pause_requested', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.createIndex('fine_tuning_jobs_by_status').on('fine_tuning_jobs').columns(['status', 'seq']).execute();

  await db.schema
    .createTable('fine_tuning_events')
    .addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('id', 'text', (c) => c.notNull().unique())
    .addColumn('job_id', 'text', (c) => c.notNull())
    .addColumn('created_at', 'integer', (c) => c.notNull())
    .addColumn('level', 'text', (c) => c.notNull())
    .addColumn('message', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('data', 'text')
    .execute();
  await db.schema.createIndex('fine_tuning_events_by_job').on('fine_tuning_events').columns(['job_id', 'seq']).execute();

  await db.schema
    .createTable('fine_tuning_checkpoints')
    .addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('id', 'text', (c) => c.notNull().unique())
    .addColumn('job_id', 'text', (c) => c.notNull())
    .addColumn('created_at', 'integer', (c) => c.notNull())
    .addColumn('step_number', 'integer', (c) => c.notNull())
    .addColumn('metrics', 'text', (c) => c.notNull())
    .addColumn('fine_tuned_model_checkpoint', 'text', (c) => c.notNull().unique())
    .addColumn('dir', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('fine_tuning_checkpoints_by_job').on('fine_tuning_checkpoints').columns(['job_id', 'seq']).execute();

  await db.schema
    .createTable('models')
    .addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('id', 'text', (c) => c.notNull().unique())
    .addColumn('created_at', 'integer', (c) => c.notNull())
    .addColumn('owned_by', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('dir', 'text', (c) => c.notNull())
    .addColumn('base_model', 'text', (c) => c.notNull())
    .addColumn('job_id', 'text')
    .execute();
}
