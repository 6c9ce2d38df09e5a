/**
 * What grading uses of the server, without HTTP: chat completions through
 * ChatServing as internal, background work (no admission slot: the run bounds
 * its own concurrency; interactive traffic goes first in the engine's batch),
 * and teacher-forced scores, gathered from items in flight into one
 * engine.score call per model (the engine batches the rows of a call).
 */
import type { ChatServing } from '../serving/chat.ts';
import type { ModelRegistry, ServedModel } from '../serving/registry.ts';
import type { ScoreRequest, ScoreResult } from '../engine/types.ts';
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

export interface InternalServingOptions {
  chat: ChatServing;
  registry: ModelRegistry;
  maxRenderChars: number;
  maxMetricChars: number;
  /** The server's --max-tokens: model graders default to GRADER_MAX_TOKENS within it. */
  maxTokens: number;
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
    maxRenderChars: o.maxRenderChars,
    maxMetricChars: o.maxMetricChars,
    graderMaxTokens: Math.min(GRADER_MAX_TOKENS, o.maxTokens),
  };
}
