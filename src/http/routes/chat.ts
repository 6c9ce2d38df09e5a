/** POST /v1/chat/completions */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse } from '../../protocol/chat.ts';
import { ErrorResponse } from '../../protocol/errors.ts';
import type { ChatServing } from '../../serving/chat.ts';
import { sendEventStream } from '../sse.ts';
import { errorResponses } from './shared.ts';

export const chatRoutes: FastifyPluginAsyncTypebox<{ serving: ChatServing }> = async (app, { serving }) => {
  app.post(
    '/v1/chat/completions',
    {
      schema: {
        summary: 'Create a chat completion',
        tags: ['Chat'],
        body: ChatCompletionRequest,
        response: {
          200: {
            description: 'The completion (JSON), or with "stream": true a text/event-stream of chunks ending with `data: [DONE]`',
            content: { 'application/json': { schema: ChatCompletionResponse }, 'text/event-stream': { schema: ChatCompletionChunk } },
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
