/**
 * What grading uses of the server, without HTTP: chat completions through
 * ChatServing as internal, background work (no admission slot: the run bounds
 * its own concurrency; interactive traffic goes first in the engine's batch);
 * teacher-forced scores, gathered from items in flight into one engine.score
 * call per model (the engine batches the rows of a call); and cosine's
 * embeddings, gathered the same way into one engine.embed call, each text
 * framed and checked by EmbeddingServing as POST /v1/embeddings does it.
 */
import type { ChatServing } from '../serving/chat.ts';
import type { EmbeddingServing } from '../serving/embeddings.ts';
import type { ModelRegistry, ServedModel } from '../serving/registry.ts';
import type { ScoreRequest, ScoreResult } from '../engine/types.ts';
import type { TextEmbedder } from './cosine.ts';
import { GRADER_MAX_TOKENS, type ChatTurn, type GradingDeps } from './graders.ts';
import { conversationScoreRequest, type ScoreTotals } from './teacher-forcing.ts';

interface Waiting {
  request: ScoreRequest;
  resolve: (r: { totals: ScoreTotals; tokens: number }) => void;
  reject: (e: unknown) => void;
}

/** Score requests of one event-loop turn, grouped by model, sent together (at most `maxBatch` per call). */
export class ScoreBatcher {
  private readonly waiting = new Map<ServedModel, Waiting[]>();
  private scheduled = false;

  constructor(
    private readonly registry: ModelRegistry,
    private readonly maxBatch = 64,
  ) {}

  async score(modelName: string, conversation: ChatTurn[], signal: AbortSignal): Promise<{ totals: ScoreTotals; tokens: number }> {
    const model = await this.registry.resolve(modelName);
    if (!model.engine.score) throw new Error(`the model ${modelName} cannot score sequences`);
    const request = conversationScoreRequest(model.template, conversation);
    signal.throwIfAborted();
    return new Promise((resolve, reject) => {
      const list = this.waiting.get(model) ?? [];
      list.push({ request, resolve, reject });
      this.waiting.set(model, list);
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const groups = [...this.waiting.entries()];
    this.waiting.clear();
    for (const [model, list] of groups) {
      for (let i = 0; i < list.length; i += this.maxBatch) {
        const chunk = list.slice(i, i + this.maxBatch);
        model.engine.score!(chunk.map((w) => w.request)).then(
          (results: ScoreResult[]) => chunk.forEach((w, k) => w.resolve({ totals: results[k], tokens: w.request.ids.length })),
          (e) => chunk.forEach((w) => w.reject(e)),
        );
      }
    }
  }
}

interface WaitingText {
  ids: number[];
  signal: AbortSignal;
  resolve: (v: Float32Array) => void;
  reject: (e: unknown) => void;
}

/**
 * Cosine's embeddings: the texts of one event-loop turn sent together (at
 * most `maxBatch` per engine call), as ScoreBatcher sends scores. Each text
 * is framed and checked on its own, so one over the embedding limits errs
 * only its own item. engine.embed takes no priority: its calls queue between
 * the scheduler's at the model worker.
 */
export class EmbedBatcher implements TextEmbedder {
  private readonly waiting = new Map<ServedModel, WaitingText[]>();
  private scheduled = false;

  constructor(
    private readonly serving: EmbeddingServing,
    readonly model: string,
    private readonly maxBatch = 64,
  ) {}

  async embed(text: string, signal: AbortSignal): Promise<{ vector: Float32Array; tokens: number }> {
    const served = await this.serving.embeddingModel(this.model);
    const [ids] = await this.serving.inputs(served, text);
    signal.throwIfAborted();
    const vector = await new Promise<Float32Array>((resolve, reject) => {
      const list = this.waiting.get(served) ?? [];
      list.push({ ids, signal, resolve, reject });
      this.waiting.set(served, list);
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
    return { vector, tokens: ids.length };
  }

  private flush(): void {
    this.scheduled = false;
    const groups = [...this.waiting.entries()];
    this.waiting.clear();
    for (const [model, list] of groups) {
      for (let i = 0; i < list.length; i += this.maxBatch) this.send(model, list.slice(i, i + this.maxBatch));
    }
  }

  /** One engine call; a text whose item stops is let go at once, and the call stops once no text in it is wanted. */
  private send(model: ServedModel, chunk: WaitingText[]): void {
    const live: WaitingText[] = [];
    for (const w of chunk) {
      if (w.signal.aborted) w.reject(w.signal.reason);
      else live.push(w);
    }
    if (live.length === 0) return;
    const call = new AbortController();
    let wanted = live.length;
    const detach = live.map((w) => {
      const onAbort = () => {
        w.reject(w.signal.reason);
        if (--wanted === 0) call.abort();
      };
      w.signal.addEventListener('abort', onAbort, { once: true });
      return () => w.signal.removeEventListener('abort', onAbort);
    });
    this.serving
      .vectors(model, live.map((w) => w.ids), call.signal, { admission: false })
      .then(
        (vectors) => live.forEach((w, k) => w.resolve(vectors[k])),
        (e) => live.forEach((w) => w.reject(e)),
      )
      .finally(() => detach.forEach((d) => d()));
  }
}

export interface InternalServingOptions {
  chat: ChatServing;
  registry: ModelRegistry;
  maxRenderChars: number;
  maxMetricChars: number;
  /** The server's --max-tokens: model graders default to GRADER_MAX_TOKENS within it. */
  maxTokens: number;
  /** Cosine's embeddings: the served model that embeds (--eval-embedding-model); absent: cosine is refused. */
  embeddings?: { serving: EmbeddingServing; model: string };
}

export function internalGradingDeps(o: InternalServingOptions): GradingDeps {
  const batcher = new ScoreBatcher(o.registry);
  return {
    async chat(req, signal) {
      const r = await o.chat.create({ ...req, stream: false }, signal, { startedAt: performance.now() }, { admission: false, priority: 'background' });
      if (r.stream) throw new Error('unexpected stream');
      return r.body;
    },
    score: (model, conversation, signal) => batcher.score(model, conversation, signal),
    embedder: o.embeddings && new EmbedBatcher(o.embeddings.serving, o.embeddings.model),
    maxRenderChars: o.maxRenderChars,
    maxMetricChars: o.maxMetricChars,
    graderMaxTokens: Math.min(GRADER_MAX_TOKENS, o.maxTokens),
  };
}
