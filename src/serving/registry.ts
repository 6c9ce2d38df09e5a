/**
 * The served models and the server's life-cycle state. The HTTP layer asks it
 * for a model by id; start-up fills it while the server already answers
 * /health (503 until every model is loaded).
 */
import { createHash } from 'node:crypto';
import type { Engine, ModelInfo } from '../engine/types.ts';
import { ChatTokenizer, type TokenizerSpec } from '../chat/tokenizer.ts';
import { ChatTemplate } from '../chat/template.ts';
import { ApiError } from '../protocol/errors.ts';

/** Default sampling settings a model's config.json may carry; the request overrides them. */
export interface SamplingDefaults {
  temperature?: number;
  top_p?: number;
  top_k?: number;
  min_p?: number;
  repetition_penalty?: number;
}

export interface ServedModel {
  id: string;
  info: ModelInfo;
  engine: Engine;
  tokenizer: ChatTokenizer;
  template: ChatTemplate;
  defaults: SamplingDefaults;
  /** OpenAI's system_fingerprint: changes when the model or the backend changes. */
  fingerprint: string;
  /** The model directory it was loaded from (absent for models made in memory, as in tests). */
  dir?: string;
  /** Who owns it, as GET /v1/models says: "mmrec" for configured models, the organization for fine-tuned ones. */
  ownedBy: string;
}

export function createServedModel(
  engine: Engine,
  tokenizerSpec: TokenizerSpec,
  defaults: SamplingDefaults = {},
  weightsDigest = '',
  more: { dir?: string; ownedBy?: string } = {},
): ServedModel {
  const tokenizer = new ChatTokenizer(tokenizerSpec);
  const info = engine.info;
  const hash = createHash('sha256').update(`${info.id}|${info.executionProvider}|${info.createdAt}|${weightsDigest}`).digest('hex').slice(0, 10);
  return { id: info.id, info, engine, tokenizer, template: new ChatTemplate(tokenizer), defaults, fingerprint: `fp_${hash}`, dir: more.dir, ownedBy: more.ownedBy ?? 'mmrec' };
}

/** Models the server made and keeps in its store (fine-tuned models, their checkpoints): found by name, loaded when first asked for. */
export interface StoredModelInfo {
  id: string;
  ownedBy: string;
  createdAt: number;
  contextLength: number;
  /** For a configured model and its aliases: the model's id (vLLM's `root`). */
  root?: string;
}

export interface StoredModels {
  find(id: string): Promise<(StoredModelInfo & { dir: string }) | undefined>;
  /** The ones GET /v1/models lists (published fine-tuned models; checkpoints are served by name but not listed). */
  listed(): Promise<StoredModelInfo[]>;
}

export type ModelLoader = (id: string, dir: string, ownedBy: string) => Promise<ServedModel>;

interface Loaded {
  model?: ServedModel;
  loading?: Promise<ServedModel>;
  lastUsed: number;
}

/** Seconds an evicted model's engine lives on, so a request that resolved it just before can still start. */
const EVICTION_GRACE_MS = 10_000;

function describeServed(m: ServedModel): StoredModelInfo {
  return { id: m.id, ownedBy: m.ownedBy, createdAt: m.info.createdAt, contextLength: m.info.contextLength, root: m.id };
}

export type ServerState = 'loading' | 'ready' | 'shutting_down';

export class ModelRegistry {
  private readonly models = new Map<string, ServedModel>();
  private _state: ServerState = 'loading';
  private stored?: { source: StoredModels; load: ModelLoader; maxLoaded: number };
  private readonly loaded = new Map<string, Loaded>();

  /** Serve the store's models too, at most `maxLoaded` of them loaded at once (least recently used unloaded first). */
  attachStore(source: StoredModels, load: ModelLoader, maxLoaded: number): void {
    this.stored = { source, load, maxLoaded };
  }

  /**
   * A served model by name: a configured one, or a stored one, loaded now if
   * it is not (the first request to a new fine-tuned model waits for its load).
   */
  async resolve(name: string): Promise<ServedModel> {
    const id = this.aliasOf.get(name) ?? name;
    const configured = this.models.get(id);
    if (configured || !this.stored || this.aliasOf.has(name)) return this.get(name);
    if (this._state === 'loading') throw ApiError.unavailable(`The model \`${id}\` is not available while the server is starting. Retry shortly.`, 'model_loading');
    const entry = this.loaded.get(id);
    if (entry) {
      entry.lastUsed = performance.now();
      return entry.model ?? entry.loading!;
    }
    const found = await this.stored.source.find(id);
    if (!found) throw ApiError.modelNotFound(id);
    const again = this.loaded.get(id); // another request started loading it meanwhile
    if (again) return again.model ?? again.loading!;
    const record: Loaded = { lastUsed: performance.now() };
    record.loading = this.stored.load(id, found.dir, found.ownedBy).then(
      (model) => {
        record.model = model;
        record.loading = undefined;
        this.evictBeyondLimit(id);
        return model;
      },
      (e) => {
        this.loaded.delete(id);
        throw e;
      },
    );
    this.loaded.set(id, record);
    return record.loading;
  }

  /** Unloads stored models past the limit, least recently used first, sparing `keep`. */
  private evictBeyondLimit(keep: string): void {
    const max = this.stored?.maxLoaded ?? Infinity;
    const candidates = [...this.loaded.entries()].filter(([id, l]) => id !== keep && l.model).sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    for (const [id] of candidates) {
      if (this.loaded.size <= max) break;
      this.unload(id);
    }
  }

  /** Stops serving a stored model (deleted, or evicted): new requests load it again or get 404; its engine closes once its work is done. */
  unload(id: string): void {
    const entry = this.loaded.get(id);
    if (!entry) return;
    this.loaded.delete(id);
    const model = entry.model;
    if (model) setTimeout(() => void model.engine.close().catch(() => {}), EVICTION_GRACE_MS).unref();
    else void entry.loading?.then((m) => m.engine.close()).catch(() => {});
  }

  /** Every model GET /v1/models lists: the configured ones (each followed by its aliases, as models of their own), then the store's. */
  async listAll(): Promise<StoredModelInfo[]> {
    const out: StoredModelInfo[] = [...this.models.values()].flatMap((m) => [describeServed(m), ...(this.aliases[m.id] ?? []).map((alias) => ({ ...describeServed(m), id: alias }))]);
    if (this.stored) out.push(...(await this.stored.source.listed()));
    return out;
  }

  /** One model as GET /v1/models/{model} describes it, without loading it; 404 when there is none. */
  async describe(id: string): Promise<StoredModelInfo> {
    const alias = this.aliasOf.get(id);
    if (alias !== undefined) return { ...describeServed(this.get(alias)), id };
    const configured = this.models.get(id);
    if (configured || !this.stored) return describeServed(this.get(id));
    const found = await this.stored.source.find(id);
    if (!found) throw ApiError.modelNotFound(id);
    return { id: found.id, ownedBy: found.ownedBy, createdAt: found.createdAt, contextLength: found.contextLength };
  }

  /** A stored model's directory (undefined for configured or unknown models). */
  async storedDir(id: string): Promise<string | undefined> {
    return (await this.stored?.source.find(id))?.dir;
  }

  /** True for the models given at start (they cannot be deleted through the API). */
  isConfigured(id: string): boolean {
    return this.models.has(id) || this.expected.includes(id) || this.aliasOf.has(id);
  }

  /** alias → the id of the configured model it names. */
  private readonly aliasOf = new Map<string, string>();

  /**
   * `expected`: the ids being loaded, so a request for one that is not ready yet gets 503, not 404.
   * `aliases`: more names per configured model id (--served-model-name); they resolve to it everywhere.
   */
  constructor(
    private readonly expected: readonly string[] = [],
    private readonly aliases: Readonly<Record<string, readonly string[]>> = {},
  ) {
    for (const [id, names] of Object.entries(aliases)) for (const name of names) this.aliasOf.set(name, id);
  }

  /** The names a configured model answers to besides its id. */
  aliasesOf(id: string): readonly string[] {
    return this.aliases[id] ?? [];
  }

  get state(): ServerState {
    return this._state;
  }

  add(model: ServedModel): void {
    if (this.models.has(model.id)) throw new Error(`model id "${model.id}" is already served`);
    this.models.set(model.id, model);
  }

  markReady(): void {
    if (this._state === 'loading') this._state = 'ready';
  }

  markShuttingDown(): void {
    this._state = 'shutting_down';
  }

  /** A model that is loaded now (configured, or a stored one already loaded); resolve() also loads stored ones. */
  get(name: string): ServedModel {
    const id = this.aliasOf.get(name) ?? name;
    const m = this.models.get(id) ?? this.loaded.get(id)?.model;
    if (m) return m;
    if (this._state === 'loading' && this.expected.includes(id)) throw ApiError.unavailable(`The model \`${name}\` is still loading. Retry shortly.`, 'model_loading');
    throw ApiError.modelNotFound(name);
  }

  /** Every loaded model, configured and stored (metrics, shutdown). */
  list(): ServedModel[] {
    return [...this.models.values(), ...[...this.loaded.values()].flatMap((l) => (l.model ? [l.model] : []))];
  }

  health() {
    const ids = [...new Set([...this.expected, ...this.models.keys()])];
    return {
      status: this._state === 'ready' ? ('ok' as const) : this._state,
      models: ids.map((id) => {
        const m = this.models.get(id);
        return { id, ready: m !== undefined, execution_provider: m?.info.executionProvider ?? null };
      }),
    };
  }
}
