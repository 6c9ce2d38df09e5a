/**
 * Per-request plumbing: an AbortSignal that fires when the client goes away
 * (or at the shutdown deadline), so generations stop stepping; and the one
 * access-log line per request, with the generation's numbers and no content.
 */
import { setMaxListeners } from 'node:events';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../protocol/errors.ts';
import { timing, type RequestStats } from '../serving/util.ts';
import type { ServerMetrics } from '../serving/metrics.ts';

declare module 'fastify' {
  interface FastifyRequest {
    stats: RequestStats;
    /** Aborted when the response closes before it is complete, or at the shutdown deadline. */
    clientSignal: AbortSignal;
  }
}

/** Counts requests between arrival and the end of their response, so shutdown knows when none is left. */
export class InFlight {
  private n = 0;
  private waiters: Array<() => void> = [];
  /** Connections of requests whose body is still arriving: nothing has started for them yet. */
  private readonly receiving = new Set<Socket>();

  startReceiving(socket: Socket): void {
    this.receiving.add(socket);
  }

  received(socket: Socket): void {
    this.receiving.delete(socket);
  }

  /** At shutdown: a request still sending its body is dropped at once rather than waited for. */
  dropReceiving(): number {
    const n = this.receiving.size;
    for (const socket of this.receiving) socket.destroy();
    this.receiving.clear();
    return n;
  }

  get count(): number {
    return this.n;
  }

  enter(): void {
    this.n++;
  }

  leave(): void {
    if (--this.n === 0) for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves when no request is in flight. */
  idle(): Promise<void> {
    return this.n === 0 ? Promise.resolve() : new Promise((r) => this.waiters.push(r));
  }
}

export function registerRequestContext(app: FastifyInstance, shutdownSignal?: AbortSignal, inFlight?: InFlight, metrics?: ServerMetrics): void {
  // The body has been read (or there is none): from here on the request is work to wait for at shutdown.
  if (inFlight) app.addHook('preValidation', async (request) => inFlight.received(request.raw.socket));
  // Every in-flight request listens to the shutdown signal: with a batch of 64 that is far above Node's warning threshold of 10.
  if (shutdownSignal) setMaxListeners(0, shutdownSignal);
  app.decorateRequest('stats', null as unknown as RequestStats);
  app.decorateRequest('clientSignal', null as unknown as AbortSignal);

  app.addHook('onRequest', async (request, reply) => {
    request.stats = { startedAt: performance.now() };
    if (metrics) request.stats.onInterToken = (model, seconds) => metrics.observeInterToken(model, seconds);
    inFlight?.enter();
    inFlight?.startReceiving(request.raw.socket);
    const controller = new AbortController();
    // A request's choices and its admission slot all listen to it: more than Node's warning threshold of 10 with n > 10.
    setMaxListeners(0, controller.signal);
    request.clientSignal = controller.signal;
    reply.header('x-request-id', request.id);

    const onShutdown = () => controller.abort(ApiError.unavailable('The server is shutting down.', 'server_shutting_down'));
    if (shutdownSignal?.aborted) onShutdown();
    else shutdownSignal?.addEventListener('abort', onShutdown, { once: true });

    // 'close' fires once per response: after it is sent, or when the connection drops first.
    reply.raw.once('close', () => {
      inFlight?.received(request.raw.socket);
      inFlight?.leave();
      shutdownSignal?.removeEventListener('abort', onShutdown);
      // writableEnded: the whole response was handed over (writableFinished also needs it flushed, which injected requests never report).
      const completed = reply.raw.writableFinished || reply.raw.writableEnded;
      // Also aborts after a normal end, which is harmless and releases anything still held.
      controller.abort(new ApiError(499, 'The client closed the request.', 'invalid_request_error', null, 'client_closed_request'));
      const s = request.stats;
      const fields: Record<string, unknown> = {
        method: request.method,
        url: request.url.split('?')[0],
        status: completed ? reply.statusCode : 499,
        duration_ms: Math.round(performance.now() - s.startedAt),
      };
      if (s.model !== undefined) fields.model = s.model;
      if (s.stream) fields.stream = true;
      if (s.promptTokens !== undefined) fields.prompt_tokens = s.promptTokens;
      if (s.completionTokens !== undefined) fields.completion_tokens = s.completionTokens;
      const t = timing(s);
      if (t.ttftMs !== undefined) fields.ttft_ms = t.ttftMs;
      if (t.tokensPerSecond !== undefined) fields.tokens_per_s = t.tokensPerSecond;
      if (s.finishReasons !== undefined) fields.finish_reason = [...new Set(s.finishReasons)].join(',');
      if (!completed) fields.aborted = true;
      if (s.cachedTokens) fields.cached_tokens = s.cachedTokens;
      metrics?.observeRequest({
        route: request.routeOptions.url ?? 'unmatched',
        status: fields.status as number,
        model: s.model,
        promptTokens: s.promptTokens,
        cachedTokens: s.cachedTokens,
        completionTokens: s.completionTokens,
        ttftSeconds: s.firstTokenAt !== undefined ? (s.firstTokenAt - s.startedAt) / 1000 : undefined,
      });
      if (s.error !== undefined) request.log.error({ ...fields, err: s.error }, 'request failed mid-stream');
      else request.log.info(fields, 'request');
    });
  });
}
