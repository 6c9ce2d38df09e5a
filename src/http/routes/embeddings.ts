/** POST /v1/embeddings */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { EmbeddingRequest, EmbeddingResponse } from '../../protocol/embeddings.ts';
import { ErrorResponse } from '../../protocol/errors.ts';
import type { EmbeddingServing } from '../../serving/embeddings.ts';
import { errorResponses } from './shared.ts';

export const embeddingRoutes: FastifyPluginAsyncTypebox<{ serving: EmbeddingServing }> = async (app, { serving }) => {
  app.post(
    '/v1/embeddings',
    {
      schema: {
        summary: "Create embeddings (last-state pooling of the model's recurrent memory)",
        tags: ['Embeddings'],
        body: EmbeddingRequest,
        response: { 200: { description: 'One vector per input, in input order', content: { 'application/json': { schema: EmbeddingResponse } } }, ...errorResponses(ErrorResponse) },
      },
    },
    async (request) => serving.create(request.body, request.clientSignal, request.stats),
  );
};
