/**
 * Model directories → served models. A directory with a graph (model.onnx)
 * gets an engine of its own; a state-tuned model (config.json's
 * `initial_state`, no graph: see kit/README.md) is served by its base model's
 * engine, starting every conversation from its trained initial state, so its
 * whole cost is a few KiB of state.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { ServerConfig } from '../config.ts';
import { ChatTokenizer } from '../chat/tokenizer.ts';
import { loadEngine, type EngineOptions, type MMRecEngine } from '../engine/engine.ts';
import { readModelDir } from '../engine/model-dir.ts';
import type { RecurrentState } from '../engine/state.ts';
import type { Engine, InitialState } from '../engine/types.ts';
import { createServedModel, type ServedModel } from './registry.ts';


const engines = new WeakMap<ServedModel, MMRecEngine>();

/**
 * Load a model directory with a graph as a served model: its engine, its
 * tokenizer and defaults from config.json, and its id (given by the caller:
 * the directory name for configured models, the stored name for fine-tuned
 * ones). `engineOptions` adds to what the configuration sets (tests pass onStep).
 */
export async function loadServedModel(
  config: ServerConfig,
  id: string,
  dir: string,
  engineOptions: Partial<EngineOptions> = {},
  log?: Logger,
  ownedBy = 'mmrec',
): Promise<ServedModel> {
  const modelDir = readModelDir(dir);
  // The tokenizer's checks (special tokens that collide…) run before the model is loaded: a bad config.json fails fast.
  try {
    new ChatTokenizer(modelDir.config.tokenizer);
  } catch (e) {
    throw new Error(`${modelDir.configPath}: ${(e as Error).message}`);
  }
  const engine = await loadEngine(dir, {
    device: config.device,
    intraOpThreads: config.intraOpThreads || undefined,
    interOpThreads: config.interOpThreads || undefined,
    prefillChunkSize: config.prefillChunkSize || undefined,
    maxBatchSize: config.maxBatchSize,
    maxBackgroundRows: config.maxBackgroundRows || undefined,
    decodeLanes: config.decodeLanes === 2 ? 2 : 1,
    stateCache: { maxBytes: config.stateCacheBytes, dir: config.stateCacheDir ? resolve(config.stateCacheDir) : undefined },
    log,
    ...engineOptions,
  });
  const restored = engine.loadCache();
  if (restored.ignored || restored.dropped) {
    log?.warn(
      { model: id, entries: restored.entries, ignored: restored.ignored, dropped_non_finite: restored.dropped },
      restored.ignored ? `state cache file ignored: ${restored.ignored}` : `state cache: ${restored.dropped} states that were not finite dropped`,
    );
  }
  if (restored.entries > 0) {
    log?.info({ model: id, entries: restored.entries, bytes: engine.stats().stateCache?.bytes }, `state cache: ${restored.entries} conversation states loaded`);
  }
  const info = { ...engine.info, id };
  const served = createServedModel(
    {
      info,
      stateSpecs: engine.stateSpecs,
      generate: (r) => engine.generate(r),
      score: (r, signal) => engine.score(r, signal),
      embed: (r, signal) => engine.embed(r, signal),
      close: () => engine.close(),
      stats: () => engine.stats(),
    },
    modelDir.config.tokenizer,
    { temperature: modelDir.config.defaultSampling.temperature, top_p: modelDir.config.defaultSampling.topP },
    `${modelDir.createdAt}`,
    { dir: resolve(dir), ownedBy },
  );
  engines.set(served, engine);
  return served;
}

/** What config.json says of a state-tuned model (kit/README.md). */
export interface StateTunedConfig {
  initial_state: { file: string; dtype: 'float32'; shapes: number[][] };
  base_model: { path: string; sha256: string };
}

export function isStateTunedDir(dir: string): boolean {
  if (existsSync(join(dir, 'model.onnx'))) return false;
  try {
    return 'initial_state' in JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  } catch {
    return false;
  }
}

export async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * A state-tuned model on a base model that is already served (`base`): the
 * base's engine, with every request starting from the tuned state. Refuses a
 * base whose graph is not the one the state was trained on (its hash).
 */
export async function stateTunedModel(id: string, dir: string, base: ServedModel, ownedBy: string): Promise<ServedModel> {
  const cfgPath = join(dir, 'config.json');
  const cfg = JSON.parse(readFileSync(cfgPath, 'utf8')) as StateTunedConfig & { tokenizer: ChatTokenizer['spec']; default_sampling?: { temperature?: number; top_p?: number } };
  const engine = engines.get(base);
  if (!engine || !base.dir) throw new Error(`${cfgPath}: its base model ${base.id} has no engine of its own to share`);
  const digest = await sha256OfFile(join(base.dir, 'model.onnx'));
  if (digest !== cfg.base_model.sha256) {
    throw new Error(`${cfgPath}: trained on a base graph with sha256 ${cfg.base_model.sha256}, but ${base.dir}/model.onnx has ${digest}`);
  }
  const state = readInitialState(dir, cfg, engine);
  const initialState: InitialState = { key: `${id}@${digest.slice(0, 16)}`, state };
  const info = { ...base.info, id };
  const wrapped: Engine = {
    info,
    stateSpecs: engine.stateSpecs,
    // A request that continues a stored conversation brings that conversation's state (which began from this one).
    generate: (r) => engine.generate({ ...r, initialState: r.initialState ?? initialState }),
    score: (requests, signal) => engine.score(requests.map((q) => ({ ...q, initialState })), signal),
    embed: (requests, signal) => engine.embed(requests.map((q) => ({ ...q, initialState })), signal),
    stats: () => engine.stats(),
    // The base engine is not ours to close.
    close: async () => {},
  };
  return createServedModel(wrapped, cfg.tokenizer ?? base.tokenizer.spec, base.defaults, digest, { dir: resolve(dir), ownedBy });
}

/** The raw little-endian float32 tensors of initial_state.bin, one per state input of the base graph, checked against its shapes. */
function readInitialState(dir: string, cfg: StateTunedConfig, engine: MMRecEngine): RecurrentState {
  const specs = engine.stateSpecs;
  const file = join(dir, cfg.initial_state.file);
  const bytes = readFileSync(file);
  const expected = specs.reduce((n, s) => n + s.rowSize * 4, 0);
  if (cfg.initial_state.dtype !== 'float32' || bytes.length !== expected) {
    throw new Error(`${file}: ${bytes.length} bytes of ${cfg.initial_state.dtype}, but the base graph's states take ${expected} bytes of float32`);
  }
  let at = 0;
  const tensors = specs.map((s) => {
    if (s.dtype !== 'float32') throw new Error(`${file}: the base graph's state ${s.inputName} is ${s.dtype}; initial states are float32 only`);
    const t = new Float32Array(s.rowSize);
    for (let i = 0; i < s.rowSize; i++, at += 4) t[i] = bytes.readFloatLE(at);
    if (!t.every(Number.isFinite)) throw new Error(`${file}: the initial state is not finite`);
    return t;
  });
  return { batch: 1, tensors };
}

