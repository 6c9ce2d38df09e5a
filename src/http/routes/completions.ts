/** POST /v1/completions */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { CompletionRequest, CompletionResponse } from '../../protocol/completions.ts';
import { ErrorResponse } from '../../protocol/errors.ts';
import type { CompletionServing } from '../../serving/completions.ts';
import { sendEventStream } from '../sse.ts';
import { errorResponses } from './shared.ts';

export const completionRoutes: FastifyPluginAsyncTypebox<{ serving: CompletionServing }> = async (app, { serving }) => {
  app.post(
    '/v1/completions',
    {
      schema: {
        summary: 'Create a completion (raw prompt, no chat template)',
        tags: ['Completions'],
        body: CompletionRequest,
        response: {
          200: {
            description: 'The completion (JSON), or with "stream": true a text/event-stream of chunks of the same shape ending with `data: [DONE]`',
            content: { 'application/json': { schema: CompletionResponse }, 'text/event-stream': { schema: CompletionResponse } },
          },
          ...errorResponses(ErrorResponse),
        },
      },
    },
    async (request, reply) => {
      const result = await serving.create(request.body, request.clientSignal, request.stats);
      if (result.stream) return sendEventStream(reply, result.events);
      return result.body;
    },
  );
};
