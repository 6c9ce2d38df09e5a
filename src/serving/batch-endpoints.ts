/**
 * The endpoints a batch may name, one entry each: the route's body schema
 * (a line is validated by the route's own validator, see
 * http/routes/batches.ts), how a body is served without HTTP, and where its
 * response keeps its token counts. Adding an endpoint is adding an entry.
 *
 * Lines run as background work: no admission slot (the worker bounds its own
 * lines in flight, and they are never refused with 429), and the engine
 * admits them only into the rows interactive requests leave.
 */
import type { TSchema } from 'typebox';
import { ChatCompletionRequest } from '../protocol/chat.ts';
import type { CompletionUsage } from '../protocol/common.ts';
import { CompletionRequest } from '../protocol/completions.ts';
import { EmbeddingRequest } from '../protocol/embeddings.ts';
import { CreateResponseRequest, type ResponseUsage } from '../protocol/responses.ts';
import { ApiError } from '../protocol/errors.ts';
import type { LineUsage } from '../store/batches.ts';
import type { RunOptions } from './admission.ts';
import type { ChatServing } from './chat.ts';
import type { CompletionServing } from './completions.ts';
import type { EmbeddingServing } from './embeddings.ts';
import type { ResponsesServing } from './responses.ts';
import type { RequestStats } from './util.ts';

export interface BatchEndpointSpec {
  /** The body schema of the endpoint's route. */
  schema: TSchema;
  /** Serves a body that passed the schema: its response body (ApiError and other errors are thrown, as to the route). */
  run(body: Record<string, unknown>, signal: AbortSignal): Promise<unknown>;
  /** The token counts of a response body. */
  usage(body: unknown): LineUsage | undefined;
}

const BACKGROUND: RunOptions = { admission: false, priority: 'background' };

/** Endpoints OpenAI runs in batches that this server does not serve: refused with a 400 that says so. */
export const UNSERVED_BATCH_ENDPOINTS: Readonly<Record<string, string>> = {
  '/v1/moderations': 'this server serves no moderations',
  '/v1/images/generations': 'this server serves no images',
  '/v1/images/edits': 'this server serves no images',
  '/v1/videos': 'this server serves no videos',
};

function completionUsage(body: unknown): LineUsage | undefined {
  const u = (body as { usage?: CompletionUsage } | undefined)?.usage;
  if (!u) return undefined;
  return { inputTokens: u.prompt_tokens, cachedTokens: u.prompt_tokens_details?.cached_tokens ?? 0, outputTokens: u.completion_tokens };
}

function responseUsage(body: unknown): LineUsage | undefined {
  const u = (body as { usage?: ResponseUsage | null } | undefined)?.usage;
  if (!u) return undefined;
  return { inputTokens: u.input_tokens, cachedTokens: u.input_tokens_details.cached_tokens, outputTokens: u.output_tokens };
}

function embeddingUsage(body: unknown): LineUsage | undefined {
  const u = (body as { usage?: { prompt_tokens: number } } | undefined)?.usage;
  return u ? { inputTokens: u.prompt_tokens, cachedTokens: 0, outputTokens: 0 } : undefined;
}

function stats(): RequestStats {
  return { startedAt: performance.now() };
}

/** A batch line is never streamed (checked before it runs): a stream here is a bug. */
function notStreamed<T>(r: { stream: false; body: T } | { stream: true }): T {
  if (r.stream) throw ApiError.internal('a batch line was streamed');
  return r.body;
}

export function batchEndpoints(serving: {
  chat: ChatServing;
  completions: CompletionServing;
  embeddings: EmbeddingServing;
  responses?: ResponsesServing;
}): Record<string, BatchEndpointSpec> {
  const { responses } = serving;
  return {
    '/v1/chat/completions': {
      schema: ChatCompletionRequest,
      run: async (body, signal) => notStreamed(await serving.chat.create(body as ChatCompletionRequest, signal, stats(), BACKGROUND)),
      usage: completionUsage,
    },
    '/v1/completions': {
      schema: CompletionRequest,
      run: async (body, signal) => notStreamed(await serving.completions.create(body as CompletionRequest, signal, stats(), BACKGROUND)),
      usage: completionUsage,
    },
    '/v1/embeddings': {
      schema: EmbeddingRequest,
      run: (body, signal) => serving.embeddings.create(body as EmbeddingRequest, signal, stats(), BACKGROUND),
      usage: embeddingUsage,
    },
    // A line is a response created as a request would create it (stored unless `store: false`, so it can be continued).
    ...(responses && {
      '/v1/responses': {
        schema: CreateResponseRequest,
        run: async (body: Record<string, unknown>, signal: AbortSignal) => notStreamed(await responses.create(body as CreateResponseRequest, signal, stats(), BACKGROUND)),
        usage: responseUsage,
      },
    }),
  };
}
