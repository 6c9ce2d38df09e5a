/** /v1/conversations and below: conversations, their metadata and items. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import {
  Conversation,
  ConversationItemList,
  ConversationItemParams,
  ConversationItemsQuery,
  ConversationParams,
  CreateConversationItemsRequest,
  CreateConversationRequest,
  DeletedConversation,
  UpdateConversationRequest,
} from '../../protocol/conversations.ts';
import { ErrorResponse } from '../../protocol/errors.ts';
import { ResponseItem } from '../../protocol/responses.ts';
import type { ConversationService } from '../../serving/conversations.ts';

const json = (schema: unknown, description: string) => ({ description, content: { 'application/json': { schema } } });
const errors = { 400: json(ErrorResponse, 'Invalid request'), 401: json(ErrorResponse, 'Missing or wrong API key'), 404: json(ErrorResponse, 'No such conversation or item') };
const tags = ['Conversations'];

export const conversationRoutes: FastifyPluginAsyncTypebox<{ service: ConversationService }> = async (app, { service }) => {
  app.post(
    '/v1/conversations',
    { schema: { summary: 'Create a conversation, with up to 20 initial items', tags, body: CreateConversationRequest, response: { 200: json(Conversation, 'The conversation'), ...errors } } },
    async (request) => service.create(request.body ?? {}),
  );
  app.get(
    '/v1/conversations/:conversation_id',
    { schema: { summary: 'Retrieve a conversation', tags, params: ConversationParams, response: { 200: json(Conversation, 'The conversation'), ...errors } } },
    async (request) => service.get(request.params.conversation_id),
  );
  app.post(
    '/v1/conversations/:conversation_id',
    { schema: { summary: "Update a conversation's metadata", tags, params: ConversationParams, body: UpdateConversationRequest, response: { 200: json(Conversation, 'The conversation'), ...errors } } },
    async (request) => service.update(request.params.conversation_id, request.body.metadata),
  );
  app.delete(
    '/v1/conversations/:conversation_id',
    { schema: { summary: 'Delete a conversation and its items', tags, params: ConversationParams, response: { 200: json(DeletedConversation, 'Deleted'), ...errors } } },
    async (request) => service.delete(request.params.conversation_id),
  );
  app.get(
    '/v1/conversations/:conversation_id/items',
    { schema: { summary: "A conversation's items", tags, params: ConversationParams, querystring: ConversationItemsQuery, response: { 200: json(ConversationItemList, 'A page of items'), ...errors } } },
    async (request) => service.listItems(request.params.conversation_id, request.query),
  );
  app.post(
    '/v1/conversations/:conversation_id/items',
    { schema: { summary: 'Add up to 20 items to a conversation', tags, params: ConversationParams, body: CreateConversationItemsRequest, response: { 200: json(ConversationItemList, 'The items added'), ...errors } } },
    async (request) => service.addItems(request.params.conversation_id, request.body.items),
  );
  app.get(
    '/v1/conversations/:conversation_id/items/:item_id',
    { schema: { summary: 'Retrieve an item of a conversation', tags, params: ConversationItemParams, response: { 200: json(ResponseItem, 'The item'), ...errors } } },
    async (request) => service.getItem(request.params.conversation_id, request.params.item_id),
  );
  app.delete(
    '/v1/conversations/:conversation_id/items/:item_id',
    { schema: { summary: 'Delete an item of a conversation', tags, params: ConversationItemParams, response: { 200: json(Conversation, 'The conversation'), ...errors } } },
    async (request) => service.deleteItem(request.params.conversation_id, request.params.item_id),
  );
};
