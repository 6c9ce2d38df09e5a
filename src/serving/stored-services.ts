/**
 * The services that live on the store — files, fine-tuning jobs and the
 * models they publish — assembled for the server from its configuration.
 */
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Logger } from 'pino';
import type { ServerConfig } from '../config.ts';
import { findPython, type PythonFound, type PythonMissing } from '../jobs/python.ts';
import { DEFAULT_KIT_DIR } from '../jobs/fine-tuning/trainer.ts';
import { FineTuningWorker, type BaseModel } from '../jobs/fine-tuning/worker.ts';
import { BatchWorker } from '../jobs/batches/worker.ts';
import { BatchService } from './batches.ts';
import type { EngineOptions } from '../engine/engine.ts';
import type { Store } from '../store/store.ts';
import { prepareConstraints } from './constraints.ts';
import { FileService } from './files.ts';
import { FineTuningService } from './fine-tuning.ts';
import { EvalRunWorker } from '../jobs/evals/worker.ts';
import { internalGradingDeps } from '../evals/serving-deps.ts';
import { Admission } from './admission.ts';
import { grammarLimits, servingLimits } from './config-limits.ts';
import { ChatServing } from './chat.ts';
import { EmbeddingServing } from './embeddings.ts';
import { EvalService } from './evals.ts';
import { isStateTunedDir, loadServedModel } from './model-loading.ts';
import type { ModelRegistry, ServedModel } from './registry.ts';
import { storedModelLoader, storedModels } from './stored-models.ts';
import { DEFAULT_MAX_INPUT_CHARS } from '../metrics/index.ts';

export interface StoredServices {
  files: FileService;
  fineTuning: FineTuningService;
  worker: FineTuningWorker;
  batches: BatchService;
  batchWorker: BatchWorker;
  evals: EvalService;
  evalWorker: EvalRunWorker;
}

/** What a fine-tuning job needs to know of a model: a configured one, or a stored one (from its config.json, without loading it). */
async function describeModel(registry: ModelRegistry, id: string): Promise<BaseModel | undefined> {
  let info;
  try {
    info = await registry.describe(id);
  } catch {
    return undefined;
  }
  const dir = registry.isConfigured(id) ? registry.get(id).dir : await registry.storedDir(id);
  if (!dir) return undefined;
  const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { tokenizer: BaseModel['tokenizer']; vocab_size: number };
  // ft:<root>:<organization>:<suffix>:<job>[:ckpt-step-N]: the lineage's root is named second.
  const rootName = id.startsWith('ft:') ? id.split(':')[1] : id;
  return { id, dir, contextLength: info.contextLength, tokenizer: cfg.tokenizer, vocabSize: cfg.vocab_size, rootName };
}

export function createStoredServices(
  config: ServerConfig,
  store: Store,
  registry: ModelRegistry,
  log: Logger,
  engineOptions: (id: string) => Partial<EngineOptions>,
  evals: { evalEmbeddingModel: string },
): StoredServices {
  const organization = config.organization;
  const loadGraph = async (id: string, dir: string, ownedBy: string): Promise<ServedModel> => {
    const model = await loadServedModel(config, id, dir, engineOptions(id), log, ownedBy);
    prepareConstraints(model);
    log.info({ model: id, dir, execution_provider: model.info.executionProvider }, `model ${id} loaded from the store`);
    return model;
  };
  const loader = storedModelLoader(store, registry, loadGraph);
  registry.attachStore(storedModels(store, organization), loader, config.maxLoadedModels);

  let python: Promise<PythonFound | PythonMissing> | undefined;
  const findOnce = () => (python ??= findPython(config.python));
  const worker = new FineTuningWorker({
    store,
    settings: {
      maxJobs: config.maxTrainingJobs,
      threads: config.trainingThreads,
      niceness: config.trainingNiceness,
      kitDir: config.kitDir || DEFAULT_KIT_DIR,
      organization,
      keepCheckpoints: 3,
      validSample: 64,
    },
    python: findOnce,
    describeModel: (id) => describeModel(registry, id),
    // Scoring loads a checkpoint for a moment: no state cache (nothing to keep, nothing to save).
    loadForScoring: (dir) =>
      isStateTunedDir(dir)
        ? loader(`scoring:${basename(dir)}`, dir, organization)
        : loadServedModel(config, `scoring:${basename(dir)}`, dir, { stateCache: { maxBytes: 0 } }, log, organization),
    modelsChanged: (id) => registry.unload(id),
    log,
  });
  // Said at start, so a server without a usable Python tells before any job fails on it.
  void findOnce().then((p) =>
    p.ok ? log.info({ python: p.path, torch: p.torch, cuda: p.cuda }, `fine-tuning: ${p.path} (torch ${p.torch})`) : log.warn({ reason: p.reason }, `fine-tuning unavailable: ${p.reason}`),
  );
  const batchWorker = new BatchWorker({ store, settings: { maxLines: config.batchMaxLines, maxInFlight: config.batchMaxInFlight }, log });
  const evalServices = createEvalServices(config, store, registry, log, evals.evalEmbeddingModel);
  return {
    files: new FileService(store, config.maxFileBytes),
    fineTuning: new FineTuningService(store, worker, registry, organization),
    worker,
    batches: new BatchService(store, batchWorker, config.batchMaxInputBytes),
    batchWorker,
    ...evalServices,
  };
}

/**
 * Eval runs sample and grade through chat completions and embeddings made
 * inside the server, with the limits HTTP requests have; cosine embeds with
 * `embeddingModel` (config.ts resolveEvalEmbeddingModel).
 */
function createEvalServices(config: ServerConfig, store: Store, registry: ModelRegistry, log: Logger, embeddingModel: string): { evals: EvalService; evalWorker: EvalRunWorker } {
  const chat = new ChatServing({
    registry,
    // Internal requests take no admission slot (the run bounds its own concurrency); this one is never used.
    admission: new Admission(1, 0),
    limits: servingLimits(config),
    grammar: grammarLimits(config),
  });
  // No admission here either: cosine's texts are batched by the grading deps, bounded by the run's concurrency.
  const embeddings = {
    serving: new EmbeddingServing({ registry, limits: { maxInputs: config.maxEmbeddingInputs, maxInputTokens: config.maxEmbeddingInputTokens, maxTokens: config.maxEmbeddingTokens } }),
    model: embeddingModel,
  };
  const itemSchema = { maxSchemaBytes: config.evalMaxSchemaBytes, patternStates: config.maxPatternStates };
  const evalWorker = new EvalRunWorker({
    store,
    settings: {
      maxRuns: config.maxEvalRuns,
      concurrency: config.evalConcurrency,
      maxItems: config.evalMaxItems,
      maxItemBytes: config.evalMaxItemBytes,
      itemSchema,
      executor: { maxRenderChars: config.evalMaxItemBytes, defaultMaxTokens: config.maxTokens },
    },
    grading: internalGradingDeps({ chat, registry, maxRenderChars: config.evalMaxItemBytes, maxMetricChars: DEFAULT_MAX_INPUT_CHARS, maxTokens: config.maxTokens, embeddings }),
    modelExists: (name) => registry.describe(name).then(() => true, () => false),
    log,
  });
  const evals = new EvalService(store, evalWorker, registry, { maxCriteria: config.evalMaxCriteria, maxItems: config.evalMaxItems, itemSchema }, embeddings);
  return { evals, evalWorker };
}
