/** POST /v1/responses, GET/DELETE /v1/responses/{id}, POST /v1/responses/{id}/cancel, GET /v1/responses/{id}/input_items, POST /v1/responses/input_tokens */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ErrorResponse } from '../../protocol/errors.ts';
import {
  CreateResponseRequest,
  DeletedResponse,
  InputTokensRequest,
  ItemsQuery,
  ResponseItemList,
  ResponseObject,
  ResponseParams,
  ResponseStreamEvent,
  TokenCounts,
} from '../../protocol/responses.ts';
import type { ResponsesServing } from '../../serving/responses.ts';
import { sendEventStream } from '../sse.ts';
import { errorResponses } from './shared.ts';

const json = (schema: unknown, description: string) => ({ description, content: { 'application/json': { schema } } });
const errors = { 400: json(ErrorResponse, 'Invalid request'), 401: json(ErrorResponse, 'Missing or wrong API key'), 404: json(ErrorResponse, 'No such response') };
const tags = ['Responses'];

export const responseRoutes: FastifyPluginAsyncTypebox<{ serving: ResponsesServing }> = async (app, { serving }) => {
  app.post(
    '/v1/responses',
    {
      schema: {
        summary: 'Create a response; with previous_response_id or conversation, continue from the stored state',
        tags,
        body: CreateResponseRequest,
        response: {
          200: {
            description: 'The response (JSON; queued with "background": true), or with "stream": true a text/event-stream of named events',
            content: { 'application/json': { schema: ResponseObject }, 'text/event-stream': { schema: ResponseStreamEvent } },
          },
          ...errorResponses(ErrorResponse),
        },
      },
    },
    async (request, reply) => {
      const result = await serving.create(request.body, request.clientSignal, request.stats);
      if (result.stream) return sendEventStream(reply, result.events, { named: true });
      return result.body;
    },
  );
  app.post(
    '/v1/responses/input_tokens',
    { schema: { summary: 'Count the input tokens a response would have', tags, body: InputTokensRequest, response: { 200: json(TokenCounts, 'The count'), ...errors } } },
    async (request) => serving.inputTokens(request.body),
  );
  app.get(
    '/v1/responses/:response_id',
    { schema: { summary: 'Retrieve a stored response (a running background one shows its output so far)', tags, params: ResponseParams, response: { 200: json(ResponseObject, 'The response'), ...errors } } },
    async (request) => serving.get(request.params.response_id),
  );
  app.delete(
    '/v1/responses/:response_id',
    { schema: { summary: 'Delete a stored response, its items and its state', tags, params: ResponseParams, response: { 200: json(DeletedResponse, 'Deleted'), ...errors } } },
    async (request) => serving.delete(request.params.response_id),
  );
  app.post(
    '/v1/responses/:response_id/cancel',
    { schema: { summary: 'Cancel a background response', tags, params: ResponseParams, response: { 200: json(ResponseObject, 'The response'), ...errors } } },
    async (request) => serving.cancel(request.params.response_id),
  );
  app.get(
    '/v1/responses/:response_id/input_items',
    { schema: { summary: "A stored response's input items", tags, params: ResponseParams, querystring: ItemsQuery, response: { 200: json(ResponseItemList, 'A page of items'), ...errors } } },
    async (request) => serving.inputItems(request.params.response_id, request.query),
  );
};
