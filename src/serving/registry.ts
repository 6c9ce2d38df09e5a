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
}

export function createServedModel(engine: Engine, tokenizerSpec: TokenizerSpec, defaults: SamplingDefaults = {}, weightsDigest = ''): ServedModel {
  const tokenizer = new ChatTokenizer(tokenizerSpec);
  const info = engine.info;
  const hash = createHash('sha256').update(`${info.id}|${info.executionProvider}|${info.createdAt}|${weightsDigest}`).digest('hex').slice(0, 10);
  return { id: info.id, info, engine, tokenizer, template: new ChatTemplate(tokenizer), defaults, fingerprint: `fp_${hash}` };
}

export type ServerState = 'loading' | 'ready' | 'shutting_down';

export class ModelRegistry {
  private readonly models = new Map<string, ServedModel>();
  private _state: ServerState = 'loading';

  /** `expected`: the ids being loaded, so a request for one that is not ready yet gets 503, not 404. */
  constructor(private readonly expected: readonly string[] = []) {}

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

  get(id: string): ServedModel {
    const m = this.models.get(id);
    if (m) return m;
    if (this._state === 'loading' && this.expected.includes(id)) throw ApiError.unavailable(`The model \`${id}\` is still loading. Retry shortly.`, 'model_loading');
    throw ApiError.modelNotFound(id);
  }

  list(): ServedModel[] {
    return [...this.models.values()];
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
