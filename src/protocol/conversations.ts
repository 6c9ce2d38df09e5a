/** The Conversations API: /v1/conversations and below, as OpenAI documents it. */
import { Type, type Static } from 'typebox';
import { Opt } from './common.ts';
import { Metadata, Order, pageFields } from './lists.ts';
import { ResponseInputItem, ResponseItem } from './responses.ts';

/** OpenAI's limit on the items one request adds. */
export const MAX_ITEMS_PER_REQUEST = 20;

export const CreateConversationRequest = Type.Object(
  {
    metadata: Opt(Metadata),
    items: Opt(Type.Array(ResponseInputItem, { maxItems: MAX_ITEMS_PER_REQUEST, description: `initial items, at most ${MAX_ITEMS_PER_REQUEST}` })),
  },
  { title: 'CreateConversationBody' },
);
export type CreateConversationRequest = Static<typeof CreateConversationRequest>;

export const UpdateConversationRequest = Type.Object({ metadata: Metadata }, { title: 'UpdateConversationBody' });
export type UpdateConversationRequest = Static<typeof UpdateConversationRequest>;

export const CreateConversationItemsRequest = Type.Object(
  { items: Type.Array(ResponseInputItem, { minItems: 1, maxItems: MAX_ITEMS_PER_REQUEST, description: `at most ${MAX_ITEMS_PER_REQUEST} items at a time` }) },
  { title: 'CreateConversationItemsBody' },
);
export type CreateConversationItemsRequest = Static<typeof CreateConversationItemsRequest>;

export const Conversation = Type.Object(
  { id: Type.String(), object: Type.Literal('conversation'), created_at: Type.Integer(), metadata: Type.Record(Type.String(), Type.String()) },
  { title: 'ConversationResource' },
);
export type Conversation = Static<typeof Conversation>;

export const DeletedConversation = Type.Object({ id: Type.String(), object: Type.Literal('conversation.deleted'), deleted: Type.Boolean() }, { title: 'DeletedConversationResource' });

export const ConversationItemList = Type.Object(
  { object: Type.Literal('list'), data: Type.Array(ResponseItem), first_id: Type.Union([Type.String(), Type.Null()]), last_id: Type.Union([Type.String(), Type.Null()]), has_more: Type.Boolean() },
  { title: 'ConversationItemList' },
);

export const ConversationParams = Type.Object({ conversation_id: Type.String({ maxLength: 128 }) });
export const ConversationItemParams = Type.Object({ conversation_id: Type.String({ maxLength: 128 }), item_id: Type.String({ maxLength: 128 }) });
export const ConversationItemsQuery = Type.Object({ ...pageFields, order: Type.Optional(Order) }, { description: 'limit: 1 to 100, default 20; order: desc (default) or asc' });
export type ConversationItemsQuery = Static<typeof ConversationItemsQuery>;
