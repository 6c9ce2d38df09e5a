/**
 * The Responses and Conversations APIs assembled for the server from its
 * configuration: the serving layer on the store, the background worker
 * beside it, and the retention limits, applied at start, after each stored
 * response and every hour.
 */
import type { Logger } from 'pino';
import type { ServerConfig } from '../config.ts';
import { BackgroundResponses } from '../jobs/responses/worker.ts';
import type { Store } from '../store/store.ts';
import type { Admission } from './admission.ts';
import type { ReplyConstraints } from './constraints.ts';
import { ConversationService } from './conversations.ts';
import type { Limits } from './params.ts';
import type { ModelRegistry } from './registry.ts';
import { ResponsesServing } from './responses.ts';

const RETENTION_INTERVAL_MS = 3600_000;

export interface ResponseServices {
  responses: ResponsesServing;
  conversations: ConversationService;
  background: BackgroundResponses;
  /** Recovers unfinished background responses and starts the worker and the retention timer (once models are served). */
  start(): Promise<void>;
  close(): Promise<void>;
}

export function createResponseServices(
  config: ServerConfig,
  store: Store,
  registry: ModelRegistry,
  shared: { admission: Admission; constraints: ReplyConstraints; limits: Limits },
  log: Logger,
): ResponseServices {
  const responses = new ResponsesServing({
    registry,
    store,
    ...shared,
    responses: {
      maxInputItems: config.maxInputItems,
      maxConversationItems: config.maxConversationItems,
      retention: { maxBytes: config.responseRetentionBytes, maxAgeSeconds: config.responseRetentionSeconds },
    },
    log,
  });
  const background = new BackgroundResponses({ store, run: (id, signal) => responses.runBackground(id, signal), maxInFlight: config.maxBackgroundResponses, log });
  responses.attachBackground(background);
  let timer: NodeJS.Timeout | undefined;
  return {
    responses,
    conversations: new ConversationService(store, responses.planner, config.maxJsonDepth),
    background,
    async start() {
      responses.evictSoon();
      timer = setInterval(() => responses.evictSoon(), RETENTION_INTERVAL_MS);
      timer.unref();
      await background.start();
    },
    async close() {
      if (timer) clearInterval(timer);
      await background.close();
      await responses.idle();
    },
  };
}
