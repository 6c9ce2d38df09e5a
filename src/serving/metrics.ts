/**
 * Prometheus metrics (prom-client), served at GET /metrics. Request numbers are
 * observed as requests end (request-context.ts) and as tokens arrive; batch sizes
 * as the engine steps (EngineOptions.onStep); queue depth, running generations
 * and the state cache are read from the admission queue and the engines at
 * scrape time. Knows nothing about Fastify.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { StepInfo } from '../engine/engine.ts';
import type { Admission } from './admission.ts';
import type { ModelRegistry } from './registry.ts';

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 10, 20, 40, 80];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256];

export interface FinishedRequest {
  /** The route pattern, e.g. /v1/chat/completions (or "unmatched"). */
  route: string;
  status: number;
  model?: string;
  promptTokens?: number;
  cachedTokens?: number;
  completionTokens?: number;
  /** Request arrival → first token. */
  ttftSeconds?: number;
}

export class ServerMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'route' | 'status'>;
  private readonly promptTokens: Counter<'model'>;
  private readonly cachedTokens: Counter<'model'>;
  private readonly generatedTokens: Counter<'model'>;
  private readonly ttft: Histogram<'model'>;
  private readonly itl: Histogram<'model'>;
  private readonly batchSize: Histogram<'model'>;
  private readonly prefillTokens: Counter<'model'>;
  private sources: { models?: ModelRegistry; admission?: Admission } = {};

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'mmrec_' });
    this.requests = new Counter({ name: 'mmrec_requests_total', help: 'HTTP requests by route and status (499: the client left first)', labelNames: ['route', 'status'], registers });
    this.promptTokens = new Counter({ name: 'mmrec_prompt_tokens_total', help: 'Prompt tokens of finished requests', labelNames: ['model'], registers });
    this.cachedTokens = new Counter({ name: 'mmrec_prompt_tokens_cached_total', help: 'Prompt tokens restored from the state cache instead of prefilled', labelNames: ['model'], registers });
    this.generatedTokens = new Counter({ name: 'mmrec_generation_tokens_total', help: 'Generated tokens', labelNames: ['model'], registers });
    this.prefillTokens = new Counter({ name: 'mmrec_prefill_tokens_total', help: 'Prompt tokens the model actually prefilled', labelNames: ['model'], registers });
    this.ttft = new Histogram({ name: 'mmrec_time_to_first_token_seconds', help: 'Request arrival to its first generated token', labelNames: ['model'], buckets: LATENCY_BUCKETS, registers });
    this.itl = new Histogram({ name: 'mmrec_inter_token_latency_seconds', help: 'Time between consecutive tokens of one choice', labelNames: ['model'], buckets: LATENCY_BUCKETS, registers });
    this.batchSize = new Histogram({ name: 'mmrec_batch_size', help: 'Rows (generations) per batched decode step', labelNames: ['model'], buckets: BATCH_BUCKETS, registers });

    const self = this;
    new Gauge({
      name: 'mmrec_queue_depth',
      help: 'Requests waiting: for admission (stage="admission"), or admitted and waiting for a place in the batch (stage="engine")',
      labelNames: ['stage'],
      registers,
      collect() {
        this.set({ stage: 'admission' }, self.sources.admission?.stats.waiting ?? 0);
        this.set({ stage: 'engine' }, self.engineStats().reduce((n, e) => n + e.stats.waiting, 0));
      },
    });
    new Gauge({
      name: 'mmrec_requests_running',
      help: 'Requests admitted and generating',
      registers,
      collect() {
        this.set(self.sources.admission?.stats.running ?? 0);
      },
    });
    new Gauge({
      name: 'mmrec_sequences',
      help: 'Generations in the engine by phase',
      labelNames: ['model', 'phase'],
      registers,
      collect() {
        this.reset();
        for (const { model, stats } of self.engineStats()) {
          this.set({ model, phase: 'prefilling' }, stats.prefilling);
          this.set({ model, phase: 'decoding' }, stats.decoding);
        }
      },
    });
    const cacheCounter = (name: string, help: string, pick: (c: NonNullable<ReturnType<ServerMetrics['engineStats']>[number]['stats']['stateCache']>) => number) =>
      new Counter({
        name,
        help,
        labelNames: ['model'],
        registers,
        collect() {
          // The engine keeps the running totals; mirror them.
          this.reset();
          for (const { model, stats } of self.engineStats()) if (stats.stateCache) this.inc({ model }, pick(stats.stateCache));
        },
      });
    cacheCounter('mmrec_state_cache_hits_total', 'Requests that restored a cached conversation state', (c) => c.hits);
    cacheCounter('mmrec_state_cache_misses_total', 'Requests that found no cached prefix of their prompt', (c) => c.misses);
    cacheCounter('mmrec_state_cache_evictions_total', 'Cached states evicted (least recently used) to stay within the budget', (c) => c.evictions);
    const cacheGauge = (name: string, help: string, pick: (c: { bytes: number; entries: number; maxBytes: number }) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['model'],
        registers,
        collect() {
          this.reset();
          for (const { model, stats } of self.engineStats()) if (stats.stateCache) this.set({ model }, pick(stats.stateCache));
        },
      });
    cacheGauge('mmrec_state_cache_bytes', 'Bytes held by the state cache (states, key tokens, bookkeeping)', (c) => c.bytes);
    cacheGauge('mmrec_state_cache_max_bytes', 'The state cache budget', (c) => c.maxBytes);
    cacheGauge('mmrec_state_cache_entries', 'Conversation states in the cache', (c) => c.entries);
  }

  /** Where scrape-time numbers come from. */
  bind(sources: { models?: ModelRegistry; admission?: Admission }): void {
    this.sources = { ...this.sources, ...sources };
  }

  private engineStats() {
    const out = [];
    for (const m of this.sources.models?.list() ?? []) {
      const stats = m.engine.stats?.();
      if (stats) out.push({ model: m.id, stats });
    }
    return out;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  observeRequest(r: FinishedRequest): void {
    this.requests.inc({ route: r.route, status: String(r.status) });
    if (!r.model) return;
    const model = r.model;
    if (r.promptTokens) this.promptTokens.inc({ model }, r.promptTokens);
    if (r.cachedTokens) this.cachedTokens.inc({ model }, r.cachedTokens);
    if (r.completionTokens) this.generatedTokens.inc({ model }, r.completionTokens);
    if (r.ttftSeconds !== undefined) this.ttft.observe({ model }, r.ttftSeconds);
  }

  observeInterToken(model: string, seconds: number): void {
    this.itl.observe({ model }, seconds);
  }

  /** Engine steps: decode batch sizes and prefilled tokens. */
  observeStep(model: string, step: StepInfo): void {
    if (step.phase === 'decode') this.batchSize.observe({ model }, step.rows);
    else this.prefillTokens.inc({ model }, step.tokens * step.rows);
  }
}
