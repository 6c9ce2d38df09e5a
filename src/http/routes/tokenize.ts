/** POST /tokenize, POST /detokenize (vLLM's extension endpoints) */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ErrorResponse } from '../../protocol/errors.ts';
import { DetokenizeRequest, DetokenizeResponse, TokenizeRequest, TokenizeResponse } from '../../protocol/tokenize.ts';
import type { TokenizeServing } from '../../serving/tokenize.ts';

export const tokenizeRoutes: FastifyPluginAsyncTypebox<{ serving: TokenizeServing }> = async (app, { serving }) => {
  const json = (schema: unknown, description: string) => ({ description, content: { 'application/json': { schema } } });
  const errors = { 400: json(ErrorResponse, 'Invalid request'), 401: json(ErrorResponse, 'Missing or wrong API key'), 404: json(ErrorResponse, 'Unknown model') };
  app.post(
    '/tokenize',
    { schema: { summary: 'Text or messages → token ids', tags: ['Tokens'], body: TokenizeRequest, response: { 200: json(TokenizeResponse, 'The token ids'), ...errors } } },
    async (request) => serving.tokenize(request.body),
  );
  app.post(
    '/detokenize',
    { schema: { summary: 'Token ids → text', tags: ['Tokens'], body: DetokenizeRequest, response: { 200: json(DetokenizeResponse, 'The text'), ...errors } } },
    async (request) => serving.detokenize(request.body),
  );
};
