/**
 * Builds the Fastify app from services that already exist (the model
 * registry, admission control, limits). It does not listen and loads nothing,
 * so tests and the OpenAPI generator build it freely; src/server.ts is what
 * parses configuration, loads models, listens and handles signals.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type RouteOptions } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { randomUUID } from 'node:crypto';
import { registerAuth } from './http/auth.ts';
import { registerCors, type AllowedOrigins } from './http/cors.ts';
import { registerJsonBody } from './http/body.ts';
import { registerErrorHandlers } from './http/errors.ts';
import { clientErrorHandler, frameworkErrors, registerExpectationHandler } from './http/framework-errors.ts';
import { registerRequestContext, type InFlight } from './http/request-context.ts';
import { chatRoutes } from './http/routes/chat.ts';
import { completionRoutes } from './http/routes/completions.ts';
import { embeddingRoutes } from './http/routes/embeddings.ts';
import { healthRoutes } from './http/routes/health.ts';
import { metricsRoutes } from './http/routes/metrics.ts';
import { modelRoutes } from './http/routes/models.ts';
import { fileRoutes } from './http/routes/files.ts';
import { fineTuningRoutes } from './http/routes/fine-tuning.ts';
import { batchRoutes } from './http/routes/batches.ts';
import { batchEndpoints } from './serving/batch-endpoints.ts';
import type { BatchService } from './serving/batches.ts';
import { evalRoutes } from './http/routes/evals.ts';
import type { EvalService } from './serving/evals.ts';
import { responseRoutes } from './http/routes/responses.ts';
import { conversationRoutes } from './http/routes/conversations.ts';
import type { ResponsesServing } from './serving/responses.ts';
import type { ConversationService } from './serving/conversations.ts';
import type { FileService } from './serving/files.ts';
import type { FineTuningService } from './serving/fine-tuning.ts';
import { tokenizeRoutes } from './http/routes/tokenize.ts';
import { ApiError } from './protocol/errors.ts';
import { DEFAULT_MAX_JSON_DEPTH } from './chat/json-depth.ts';
import { Admission } from './serving/admission.ts';
import { ChatServing } from './serving/chat.ts';
import { CompletionServing } from './serving/completions.ts';
import { EmbeddingServing, type EmbeddingLimits } from './serving/embeddings.ts';
import { ServerMetrics } from './serving/metrics.ts';
import type { Limits } from './serving/params.ts';
import { ReplyConstraints, type GrammarLimits } from './serving/constraints.ts';
import type { ModelRegistry } from './serving/registry.ts';
import { TokenizeServing } from './serving/tokenize.ts';

export interface AppOptions {
  registry: ModelRegistry;
  limits: Limits;
  /** /v1/embeddings input limits; absent: DEFAULT_EMBEDDING_LIMITS. */
  embeddingLimits?: EmbeddingLimits;
  /** Tools and structured outputs cost limits; absent: DEFAULT_GRAMMAR_LIMITS. */
  grammarLimits?: GrammarLimits;
  admission?: Admission;
  /** Empty or absent: no authentication. */
  apiKeys?: readonly string[];
  /** CORS (http/cors.ts); absent or false: no CORS headers. */
  allowedOrigins?: AllowedOrigins;
  /** Bytes; larger bodies get 413. */
  maxBodySize?: number;
  /** Deepest nesting of a JSON body; deeper gets 400. */
  maxJsonDepth?: number;
  /** Seconds a client has to send a whole request; 0 or absent: Node's default (300 s). */
  requestTimeout?: number;
  /** A pino logger; absent: silent. */
  logger?: FastifyBaseLogger;
  /** Aborting it ends every in-flight generation (the shutdown deadline). */
  shutdownSignal?: AbortSignal;
  /** Counts in-flight requests (graceful shutdown waits for it to reach 0). */
  inFlight?: InFlight;
  /** Prometheus metrics; absent: the app makes its own. */
  metrics?: ServerMetrics;
  /** Called for every route as it is registered (the OpenAPI generator listens here). */
  onRoute?: (route: RouteOptions) => void;
  /** The Files API (needs the store); absent: no /v1/files routes. */
  files?: FileService;
  /** The fine-tuning API (needs the store and its worker); absent: no /v1/fine_tuning routes, and no model can be deleted. */
  fineTuning?: FineTuningService;
  /** The Batch API (needs the store and its worker); absent: no /v1/batches routes. */
  batches?: BatchService;
  /** The Evals API (needs the store and its worker); absent: no /v1/evals routes. */
  evals?: EvalService;
  /** Compiled reply constraints, shared with services made outside (the Responses API); absent: the app makes its own. */
  constraints?: ReplyConstraints;
  /** The Responses and Conversations APIs (need the store); absent: no /v1/responses or /v1/conversations routes. */
  responses?: ResponsesServing;
  conversations?: ConversationService;
}

export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const requestTimeoutMs = (options.requestTimeout ?? 0) * 1000;
  const app = Fastify({
    loggerInstance: options.logger,
    bodyLimit: options.maxBodySize ?? 1 << 20,
    // A client must send its whole request within the timeout (408 otherwise); checked every second, not Node's default 30 s.
    requestTimeout: requestTimeoutMs,
    http: requestTimeoutMs > 0 ? { headersTimeout: Math.min(requestTimeoutMs, 60_000), connectionsCheckingInterval: 1000 } : {},
    frameworkErrors,
    clientErrorHandler,
    // One log line per request, written by request-context.ts with the generation's numbers.
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: () => randomUUID(),
    // While shutting down, the hook below answers 503 in OpenAI's error shape instead of Fastify's own.
    return503OnClosing: false,
    ajv: {
      customOptions: {
        // A string where a number belongs is a 400, never silently converted.
        coerceTypes: false,
        // Unknown fields are ignored, and schemas that forbid extra keys (logit_bias) must refuse them, not drop them.
        removeAdditional: false,
        useDefaults: false,
      },
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  // Responses are built to match their schemas (and tests validate them against
  // OpenAI's); the schemas document them but do not filter them.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  if (options.onRoute) app.addHook('onRoute', options.onRoute);

  registerErrorHandlers(app);
  registerExpectationHandler(app.server);
  registerJsonBody(app, options.maxJsonDepth);
  const admission = options.admission ?? new Admission(64, 64);
  const metrics = options.metrics ?? new ServerMetrics();
  metrics.bind({ models: options.registry, admission });
  registerRequestContext(app, options.shutdownSignal, options.inFlight, metrics);
  // Before the hooks that may refuse a request, so that preflights pass and refusals stay readable by the browser.
  await registerCors(app, options.allowedOrigins ?? false);
  app.addHook('onRequest', async (request) => {
    if (options.registry.state === 'shutting_down' && request.url.split('?')[0] !== '/health') {
      throw ApiError.unavailable('The server is shutting down.', 'server_shutting_down');
    }
  });
  registerAuth(app, options.apiKeys ?? []);

  const deps = {
    registry: options.registry,
    admission,
    limits: options.limits,
    grammar: options.grammarLimits,
    warn: options.logger ? (fields: Record<string, unknown>, message: string) => options.logger!.warn(fields, message) : undefined,
  };
  const constraints = options.constraints ?? new ReplyConstraints(options.grammarLimits, deps.warn);
  await app.register(healthRoutes, { registry: options.registry });
  await app.register(metricsRoutes, { metrics });
  const fineTuning = options.fineTuning;
  await app.register(modelRoutes, { registry: options.registry, deleteModel: fineTuning && ((id) => fineTuning.deleteModel(id)) });
  if (options.files) await app.register(fileRoutes, { service: options.files });
  if (fineTuning) await app.register(fineTuningRoutes, { service: fineTuning });
  const chat = new ChatServing({ ...deps, constraints });
  const completions = new CompletionServing(deps);
  const embeddings = new EmbeddingServing({ registry: options.registry, admission, limits: options.embeddingLimits });
  if (options.batches) {
    const limits = { maxBodyBytes: options.maxBodySize ?? 1 << 20, maxJsonDepth: options.maxJsonDepth ?? DEFAULT_MAX_JSON_DEPTH };
    await app.register(batchRoutes, { service: options.batches, endpoints: batchEndpoints({ chat, completions, embeddings, responses: options.responses }), ...limits });
  }
  await app.register(chatRoutes, { serving: chat });
  if (options.responses) await app.register(responseRoutes, { serving: options.responses });
  if (options.conversations) await app.register(conversationRoutes, { service: options.conversations });
  await app.register(completionRoutes, { serving: completions });
  if (options.evals) await app.register(evalRoutes, { service: options.evals });
  await app.register(embeddingRoutes, { serving: embeddings });
  await app.register(tokenizeRoutes, { serving: new TokenizeServing(options.registry, options.limits) });
  return app;
}
