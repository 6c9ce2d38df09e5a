/**
 * The schema's versions, applied in order at start (Kysely's Migrator records
 * which ran in its own table). A migration is never edited once released: a
 * change is a new file with the next number.
 */
import type { Migration, MigrationProvider } from 'kysely';
import * as m0001 from './0001-files-and-fine-tuning.ts';
import * as m0002 from './0002-evals.ts';
import * as m0003 from './0003-batches.ts';
import * as m0004 from './0004-responses.ts';

const MIGRATIONS: Record<string, Migration> = {
  '0001-files-and-fine-tuning': m0001,
  '0002-evals': m0002,
  '0003-batches': m0003,
  '0004-responses': m0004,
};

export const migrations: MigrationProvider = {
  async getMigrations() {
    return MIGRATIONS;
  },
};
