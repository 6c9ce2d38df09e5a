/**
 * The Responses and Conversations APIs: stored responses with their input and
 * output items and the recurrent state at their end (a BLOB of a few KiB),
 * and conversations with their items and the response whose state covers them.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('responses')
    .addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('id', 'text', (c) => c.notNull().unique())
    .addColumn('created_at', 'integer', (c) => c.notNull())
    .addColumn('completed_at', 'integer')
    .addColumn('model', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('background', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('previous_response_id', 'text')
    .addColumn('conversation_id', 'text')
    .addColumn('conversation_seq', 'integer')
    .addColumn('request', 'text', (c) => c.notNull())
    .addColumn('usage', 'text')
    .addColumn('error', 'text')
    .addColumn('incomplete_details', 'text')
    .addColumn('bytes', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.createIndex('responses_by_status').on('responses').columns(['status', 'seq']).execute();
  await db.schema.createIndex('responses_by_created').on('responses').columns(['created_at']).execute();

  await db.schema
    .createTable('response_items')
    .addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('response_id', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('call_id', 'text')
    .addColumn('data', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('response_items_by_response').on('response_items').columns(['response_id', 'kind', 'seq']).execute();
  await db.schema.createIndex('response_items_by_id').on('response_items').columns(['id']).execute();

  await db.schema
    .createTable('response_states')
    .addColumn('response_id', 'text', (c) => c.primaryKey())
    .addColumn('model_key', 'text', (c) => c.notNull())
    .addColumn('context_key', 'text', (c) => c.notNull())
    .addColumn('layout', 'text', (c) => c.notNull())
    .addColumn('tokens', 'integer', (c) => c.notNull())
    .addColumn('state', 'blob', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('conversations')
    .addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('id', 'text', (c) => c.notNull().unique())
    .addColumn('created_at', 'integer', (c) => c.notNull())
    .addColumn('metadata', 'text')
    .addColumn('state_response_id', 'text')
    .addColumn('state_seq', 'integer')
    .execute();

  await db.schema
    .createTable('conversation_items')
    .addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('conversation_id', 'text', (c) => c.notNull())
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('call_id', 'text')
    .addColumn('response_id', 'text')
    .addColumn('data', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('conversation_items_by_conversation').on('conversation_items').columns(['conversation_id', 'seq']).execute();
  await db.schema.createIndex('conversation_items_by_id').on('conversation_items').columns(['id']).execute();
}
