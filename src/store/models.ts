/** Models the server made (fine-tuned models): name → model directory under the data directory. */
import type { Kysely, Selectable } from 'kysely';
import { nowSeconds } from './ids.ts';
import type { Database, ModelsTable } from './tables.ts';

export interface StoredModel {
  id: string;
  createdAt: number;
  ownedBy: string;
  kind: 'fine-tuned';
  /** Relative to the data directory. */
  dir: string;
  baseModel: string;
  jobId: string | null;
}

function toModel(r: Selectable<ModelsTable>): StoredModel {
  return { id: r.id, createdAt: r.created_at, ownedBy: r.owned_by, kind: r.kind as StoredModel['kind'], dir: r.dir, baseModel: r.base_model, jobId: r.job_id };
}

export class ModelsRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async add(m: Omit<StoredModel, 'createdAt'>): Promise<StoredModel> {
    const row = { id: m.id, created_at: nowSeconds(), owned_by: m.ownedBy, kind: m.kind, dir: m.dir, base_model: m.baseModel, job_id: m.jobId };
    await this.db.insertInto('models').values(row).execute();
    return { ...m, createdAt: row.created_at };
  }

  async get(id: string): Promise<StoredModel | undefined> {
    const r = await this.db.selectFrom('models').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toModel(r);
  }

  async list(): Promise<StoredModel[]> {
    return (await this.db.selectFrom('models').selectAll().orderBy('seq', 'asc').execute()).map(toModel);
  }

  async delete(id: string): Promise<StoredModel | undefined> {
    const m = await this.get(id);
    if (!m) return undefined;
    await this.db.deleteFrom('models').where('id', '=', id).execute();
    return m;
  }
}
