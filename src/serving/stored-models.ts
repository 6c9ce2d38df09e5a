/**
 * The store's models as the registry sees them: published fine-tuned models
 * (listed) and their checkpoints (served by name, not listed), and how to load
 * one — its own engine for a graph, the base's engine for a state-tuned model.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Store } from '../store/store.ts';
import { isStateTunedDir, stateTunedModel, type StateTunedConfig } from './model-loading.ts';
import type { ModelLoader, ModelRegistry, ServedModel, StoredModelInfo, StoredModels } from './registry.ts';

function contextLengthOf(dir: string): number {
  try {
    return Number(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).context_length) || 0;
  } catch {
    return 0;
  }
}

export function storedModels(store: Store, organization: string): StoredModels {
  return {
    async find(id) {
      const model = await store.models.get(id);
      if (model) {
        const dir = store.resolve(model.dir);
        return { id, dir, ownedBy: model.ownedBy, createdAt: model.createdAt, contextLength: contextLengthOf(dir) };
      }
      const checkpoint = await store.fineTuning.checkpointByName(id);
      if (checkpoint) {
        const dir = store.resolve(checkpoint.dir);
        return { id, dir, ownedBy: organization, createdAt: checkpoint.createdAt, contextLength: contextLengthOf(dir) };
      }
      return undefined;
    },
    async listed(): Promise<StoredModelInfo[]> {
      return (await store.models.list()).map((m) => ({ id: m.id, ownedBy: m.ownedBy, createdAt: m.createdAt, contextLength: contextLengthOf(store.resolve(m.dir)) }));
    },
  };
}

/**
 * How a stored model is loaded: `loadGraph` for a directory with a graph; a
 * state-tuned one goes on its base model, which is found among the served
 * models (configured or stored) by its directory and loaded if need be.
 */
export function storedModelLoader(store: Store, registry: ModelRegistry, loadGraph: ModelLoader): ModelLoader {
  return async (id, dir, ownedBy) => {
    if (!isStateTunedDir(dir)) return loadGraph(id, dir, ownedBy);
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as StateTunedConfig;
    const basePath = resolve(cfg.base_model.path);
    let base: ServedModel | undefined = registry.list().find((m) => m.dir === basePath && !isStateTunedDir(m.dir));
    if (!base) {
      const stored = (await store.models.list()).find((m) => store.resolve(m.dir) === basePath);
      const checkpoint = stored ? undefined : await findCheckpointByDir(store, basePath);
      const baseId = stored?.id ?? checkpoint;
      if (!baseId) throw new Error(`${dir}: its base model (${basePath}) is not served here`);
      base = await registry.resolve(baseId);
    }
    return stateTunedModel(id, dir, base, ownedBy);
  };
}

async function findCheckpointByDir(store: Store, abs: string): Promise<string | undefined> {
  for (const rel of await store.fineTuning.allCheckpointDirs()) {
    if (store.resolve(rel) === abs) {
      const page = await store.fineTuning.checkpointByDir(rel);
      return page?.name;
    }
  }
  return undefined;
}
