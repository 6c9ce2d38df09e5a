/**
 * The process: parse configuration, listen (so /health answers 503 while
 * models load), load every model, then serve until SIGTERM/SIGINT, when it
 * stops accepting, lets in-flight requests finish within the shutdown
 * deadline, aborts what is left, and exits 0.
 *
 *   npm start -- --port 8001 --host 0.0.0.0
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pino, type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import { buildApp } from './app.ts';
import { parseAllowedOrigins } from './http/cors.ts';
import { ConfigError, helpText, parseConfig, redactedConfig, resolveEvalEmbeddingModel, resolveModelDirs, resolveServedNames, type ServerConfig } from './config.ts';
import { ApiError } from './protocol/errors.ts';
import { Admission } from './serving/admission.ts';
import { ModelRegistry } from './serving/registry.ts';
import { createStoredServices } from './serving/stored-services.ts';
import { createResponseServices } from './serving/response-services.ts';
import { ReplyConstraints } from './serving/constraints.ts';
import { Store } from './store/store.ts';
import { loadServedModel } from './serving/model-loading.ts';
import { prepareConstraints } from './serving/constraints.ts';
import { InFlight } from './http/request-context.ts';
import { ServerMetrics } from './serving/metrics.ts';
import { stopModelWorkers } from './engine/worker-model.ts';
import { grammarLimits, servingLimits } from './serving/config-limits.ts';

export interface RunningServer {
  app: FastifyInstance;
  registry: ModelRegistry;
  /** e.g. http://127.0.0.1:8000 */
  url: string;
  /** Resolves when every model is loaded (rejects if one fails). */
  ready: Promise<void>;
  /** Graceful stop: refuse new work, wait up to the shutdown deadline, abort the rest, close the engines. */
  shutdown(): Promise<void>;
  /** Before an immediate exit: the fine-tuning trainers killed (their jobs resume from the last checkpoint at the next start). */
  killTrainers(): void;
}

/** Why a model runs where it does, for the start-up log. */
function providerReason(device: ServerConfig['device'], provider: string, engineReason?: string): string {
  if (engineReason) return engineReason;
  if (device !== 'auto') return `--device ${device}`;
  return provider === 'cpu' ? 'device auto: no GPU execution provider is available here' : `device auto: the ${provider} execution provider is available`;
}

async function loadModels(config: ServerConfig, models: Array<{ id: string; dir: string }>, registry: ModelRegistry, log: Logger, metrics: ServerMetrics): Promise<void> {
  for (const { id, dir } of models) {
    const started = performance.now();
    const served = await loadServedModel(config, id, dir, { onStep: (step) => metrics.observeStep(id, step) }, log);
    const vocabularyMs = prepareConstraints(served);
    registry.add(served);
    const { info } = served;
    log.info(
      {
        model: id,
        dir,
        execution_provider: info.executionProvider,
        context_length: info.contextLength,
        load_ms: Math.round(performance.now() - started),
        constraint_vocabulary_ms: Math.round(vocabularyMs),
        ...(registry.aliasesOf(id).length > 0 ? { aliases: registry.aliasesOf(id) } : {}),
      },
      `model ${id} runs on ${info.executionProvider} (${providerReason(config.device, info.executionProvider, info.providerReason)})`,
    );
  }
  registry.markReady();
  log.info({ models: models.map((m) => m.id) }, 'ready');
}

export async function startServer(config: ServerConfig, log: Logger): Promise<RunningServer> {
  const models = resolveModelDirs(config);
  const aliases = resolveServedNames(config, models);
  const registry = new ModelRegistry(models.map((m) => m.id), aliases);
  const evalEmbeddingModel = resolveEvalEmbeddingModel(config, models, aliases);
  const shutdownController = new AbortController();
  const inFlight = new InFlight();
  const metrics = new ServerMetrics();
  const { store, report } = await Store.open(config.dataDir, { maxConversationItems: config.maxConversationItems });
  log.info({ data_dir: store.dataDir.root, ...report }, `data directory ${store.dataDir.root}`);
  const stored = createStoredServices(config, store, registry, log, (id) => ({ onStep: (step) => metrics.observeStep(id, step) }), { evalEmbeddingModel });
  const limits = servingLimits(config);
  const grammar = grammarLimits(config);
  const admission = new Admission(config.maxConcurrency, config.maxQueue);
  const constraints = new ReplyConstraints(grammar, (fields, message) => log.warn(fields, message));
  const responseServices = createResponseServices(config, store, registry, { admission, constraints, limits }, log);
  const app = await buildApp({
    files: stored.files,
    fineTuning: stored.fineTuning,
    responses: responseServices.responses,
    conversations: responseServices.conversations,
    constraints,
    batches: stored.batches,
    evals: stored.evals,
    registry,
    limits,
    embeddingLimits: { maxInputs: config.maxEmbeddingInputs, maxInputTokens: config.maxEmbeddingInputTokens, maxTokens: config.maxEmbeddingTokens },
    grammarLimits: grammar,
    admission,
    metrics,
    apiKeys: config.apiKeys,
    allowedOrigins: parseAllowedOrigins(config.allowedOrigins),
    maxBodySize: config.maxBodySize,
    maxJsonDepth: config.maxJsonDepth,
    requestTimeout: config.requestTimeout,
    logger: log,
    shutdownSignal: shutdownController.signal,
    inFlight,
  });
  await app.listen({ host: config.host, port: config.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${host}:${port}`;
  log.info({ url, port, config: redactedConfig(config) }, `listening on ${url} (OpenAI API under ${url}/v1)`);

  // Jobs start once the models they may be based on are served.
  const ready = loadModels(config, models, registry, log, metrics)
    .then(() => Promise.all([stored.worker.start(), stored.batchWorker.start(), stored.evalWorker.start(), responseServices.start()]))
    .then(() => {});
  ready.catch(() => {}); // the caller handles it; this only keeps it from counting as unhandled meanwhile

  let stopping: Promise<void> | undefined;
  const shutdown = () =>
    (stopping ??= (async () => {
      registry.markShuttingDown();
      // Batch lines in flight go on while requests drain; no new one starts.
      stored.batchWorker.stop();
      // Eval runs stop their items in flight (left pending) and go back to the queue; they resume at the next start.
      const evalsStopped = stored.evalWorker.close();
      log.info({ deadline_s: config.shutdownTimeout, in_flight: inFlight.count }, 'shutting down: no new requests; waiting for in-flight requests');
      // Stops listening at once; requests on open connections get 503 from here on.
      const closed = app.close();
      // A request still sending its body has not started: dropped now, not waited for until the deadline.
      const dropped = inFlight.dropReceiving();
      if (dropped > 0) log.info({ dropped }, 'shutting down: dropped connections still sending a request body');
      const sleep = (ms: number) => new Promise<'deadline'>((r) => setTimeout(() => r('deadline'), ms).unref());
      if ((await Promise.race([inFlight.idle().then(() => 'idle' as const), sleep(config.shutdownTimeout * 1000)])) === 'deadline') {
        log.warn({ in_flight: inFlight.count }, 'shutdown deadline reached: aborting in-flight generations');
        shutdownController.abort(ApiError.unavailable('The server is shutting down.', 'server_shutting_down'));
        // A moment for the aborted streams to send their error event and end.
        await Promise.race([inFlight.idle(), sleep(1000)]);
      }
      // Connections still open carry no request now (keep-alive, or opened and never used): close them.
      app.server.closeAllConnections();
      await closed;
      await ready.catch(() => {});
      // Trainers save their state and stop; their jobs resume at the next start.
      await stored.worker.close();
      // Lines still in flight stop unrecorded: they run again at the next start.
      await stored.batchWorker.close();
      await evalsStopped;
      // Background responses still generating stay in progress: they are generated again at the next start.
      await responseServices.close();
      await Promise.allSettled(registry.list().map((m) => m.engine.close()));
      await store.close();
      log.info('stopped');
    })());

  return { app, registry, url, ready, shutdown, killTrainers: () => stored.worker.killTrainers() };
}

/** Signals closer together than this are one delivery (see onSignal). */
const DUPLICATE_SIGNAL_MS = 100;

/** Set once the process is exiting at once (exitNow): a graceful shutdown finishing meanwhile exits with it too. */
let exitingWith: number | undefined;

/**
 * Exits now with `code`, the model workers stopped first (each after the call
 * it is running, at most a second in all): see stopModelWorkers for why.
 */
function exitNow(code: number): void {
  exitingWith ??= code;
  const cap = new Promise((r) => setTimeout(r, 1000).unref());
  void Promise.race([stopModelWorkers(), cap]).finally(() => process.exit(exitingWith));
}

async function main(): Promise<void> {
  let config: ServerConfig;
  try {
    const parsed = parseConfig(process.argv.slice(2), process.env);
    if (parsed.help) {
      console.log(helpText());
      return;
    }
    config = parsed.config;
    // Fail on a bad model list, alias or embedding model before anything starts.
    const models = resolveModelDirs(config);
    resolveEvalEmbeddingModel(config, models, resolveServedNames(config, models));
    parseAllowedOrigins(config.allowedOrigins);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`mmrec-server: invalid configuration: ${e.message}`);
      process.exit(2);
    }
    throw e;
  }
  const log = pino({ level: config.logLevel, base: { pid: process.pid } });
  let server: RunningServer;
  try {
    server = await startServer(config, log);
  } catch (e) {
    log.fatal({ err: e }, 'start-up failed');
    console.error(`mmrec-server: cannot start: ${(e as Error).message}`);
    process.exit(1);
  }
  server.ready.catch((e) => {
    log.fatal({ err: e }, 'model loading failed');
    console.error(`mmrec-server: cannot load models: ${(e as Error).message}`);
    // Models loaded before the one that failed may be serving requests already.
    exitNow(1);
  });
  let firstSignalAt: number | undefined;
  const onSignal = (signal: string) => {
    if (firstSignalAt !== undefined) {
      // A terminal's Ctrl-C reaches the whole process group and npm forwards it too: the same press arrives
      // twice within milliseconds. Only a signal sent after DUPLICATE_SIGNAL_MS means "stop now".
      if (performance.now() - firstSignalAt < DUPLICATE_SIGNAL_MS) return;
      log.warn({ signal }, 'second signal: exiting now');
      server.killTrainers();
      exitNow(1);
      return;
    }
    firstSignalAt = performance.now();
    log.info({ signal }, 'signal received');
    server.shutdown().then(
      () => process.exit(exitingWith ?? 0),
      (e) => {
        log.error({ err: e }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
