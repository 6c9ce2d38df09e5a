/**
 * The Responses API: /v1/responses and below, as OpenAI documents it. Items
 * and tools are checked loosely here (their `type` is any string) so that an
 * image, a reasoning item or a hosted tool reaches chat/response-items.ts,
 * which refuses it with a message that says why, instead of a schema error
 * listing every alternative. Fields this server does not implement (include,
 * reasoning, service_tier, prompt_cache_key…) are accepted and ignored, as
 * unknown fields are.
 */
import { Type, type Static } from 'typebox';
import { Opt } from './common.ts';
import { Metadata, Order, pageFields } from './lists.ts';

const loose = (description: string, title?: string) =>
  Type.Object({ type: Type.Optional(Type.String()) }, { additionalProperties: true, description, ...(title ? { title } : {}) });

export const ResponseInputItem = loose(
  'message (role user, assistant, system or developer; content a string or input_text/output_text parts), function_call, function_call_output or item_reference',
  'ResponseInputItem',
);

export const ResponseTool = Type.Object(
  {
    type: Type.String({ description: '"function", or "namespace": function tools grouped under a name, which the model sees (and calls) as <namespace>.<name>' }),
    name: Type.Optional(Type.String()),
    description: Opt(Type.String()),
    parameters: Opt(Type.Object({}, { additionalProperties: true, description: 'JSON Schema of the arguments object' })),
    strict: Opt(Type.Boolean({ description: 'default true (as OpenAI\'s Responses API): what the grammar cannot enforce of parameters is a 400; false: accepted and left unenforced' })),
    tools: Opt(Type.Array(Type.Object({}, { additionalProperties: true }), { description: 'a namespace\'s function tools, {type: "function", name, description, parameters, strict} each' })),
  },
  { title: 'ResponseTool', additionalProperties: true },
);

export const ResponseToolChoice = Type.Union(
  [
    Type.Literal('none'),
    Type.Literal('auto'),
    Type.Literal('required'),
    Type.Object(
      {
        type: Type.String({ description: '"function" (with name) or "allowed_tools" (with mode and tools: {type: "function", name} or {type: "namespace", name}, every function of it)' }),
        name: Type.Optional(Type.String({ description: 'a function of a namespace: its name with namespace, or <namespace>.<name>' })),
        namespace: Type.Optional(Type.String({ description: 'the namespace of the function named (an extension: OpenAI\'s function tool choice has name only)' })),
        mode: Type.Optional(Type.String()),
        tools: Type.Optional(Type.Array(Type.Object({}, { additionalProperties: true }))),
      },
      { additionalProperties: true },
    ),
  ],
  { title: 'ResponseToolChoice' },
);

export const ResponseTextFormat = Type.Object(
  {
    type: Type.Union([Type.Literal('text'), Type.Literal('json_object'), Type.Literal('json_schema')]),
    name: Type.Optional(Type.String({ pattern: '^[a-zA-Z0-9_-]{1,64}$' })),
    description: Type.Optional(Type.String()),
    schema: Type.Optional(Type.Object({}, { additionalProperties: true })),
    strict: Opt(Type.Boolean()),
  },
  { title: 'ResponseTextFormat', description: 'json_object: the text is a JSON object; json_schema: JSON valid against schema (enforced token by token, as chat completions\' response_format)' },
);

export const ResponseText = Type.Object({ format: Type.Optional(ResponseTextFormat), verbosity: Opt(Type.String()) }, { title: 'ResponseTextConfig', additionalProperties: true });

const ConversationRef = Type.Union([Type.String(), Type.Object({ id: Type.String() })], { description: 'a conversation id, or {id}' });

/** The fields POST /v1/responses and POST /v1/responses/input_tokens share. */
const contextFields = {
  input: Opt(Type.Union([Type.String(), Type.Array(ResponseInputItem)], { description: 'a string (one user message) or items' })),
  instructions: Opt(Type.String({ description: 'a system message first in the context, for this response only (not carried over by previous_response_id)' })),
  previous_response_id: Opt(Type.String({ description: 'continue from this stored response: its state at its end is restored, only the new input is prefilled' })),
  conversation: Opt(ConversationRef),
  tools: Opt(Type.Array(ResponseTool)),
  tool_choice: Opt(ResponseToolChoice),
  parallel_tool_calls: Opt(Type.Boolean()),
  text: Opt(ResponseText),
  truncation: Opt(Type.Union([Type.Literal('auto'), Type.Literal('disabled')], { description: 'disabled (default): an input that overflows the context is a 400; auto: the oldest items are dropped to fit' })),
};

export const CreateResponseRequest = Type.Object(
  {
    model: Type.String({ description: 'a served model id (GET /v1/models)' }),
    ...contextFields,
    store: Opt(Type.Boolean({ description: 'default true: the response, its items and its end state are kept (see retention)' })),
    metadata: Type.Optional(Metadata),
    max_output_tokens: Opt(Type.Integer({ minimum: 16 })),
    temperature: Opt(Type.Number({ minimum: 0, maximum: 2 })),
    top_p: Opt(Type.Number({ minimum: 0, maximum: 1 })),
    stream: Opt(Type.Boolean()),
    stream_options: Opt(Type.Object({ include_obfuscation: Opt(Type.Boolean()) }, { additionalProperties: true })),
    background: Opt(Type.Boolean({ description: 'generate beside the request: the response is returned queued, then retrieved (needs store)' })),
    reasoning: Opt(Type.Object({}, { additionalProperties: true, description: 'accepted and ignored: this model has no reasoning settings' })),
  },
  { title: 'CreateResponse' },
);
export type CreateResponseRequest = Static<typeof CreateResponseRequest>;

export const InputTokensRequest = Type.Object({ model: Opt(Type.String()), ...contextFields }, { title: 'TokenCountsBody' });
export type InputTokensRequest = Static<typeof InputTokensRequest>;

export const ResponseItem = loose('message, function_call or function_call_output, with its id and status', 'ResponseItem');

export const ResponseUsage = Type.Object(
  {
    input_tokens: Type.Integer({ description: 'the whole context: what the restored state covers and the new input' }),
    input_tokens_details: Type.Object({
      cached_tokens: Type.Integer({ description: 'input tokens restored from a state (a stored response\'s, or the prefix cache) instead of prefilled' }),
      cache_write_tokens: Type.Integer(),
    }),
    output_tokens: Type.Integer(),
    output_tokens_details: Type.Object({ reasoning_tokens: Type.Integer() }),
    total_tokens: Type.Integer(),
  },
  { title: 'ResponseUsage' },
);
export type ResponseUsage = Static<typeof ResponseUsage>;

export const ResponseStatus = Type.Union([
  Type.Literal('queued'),
  Type.Literal('in_progress'),
  Type.Literal('completed'),
  Type.Literal('incomplete'),
  Type.Literal('failed'),
  Type.Literal('cancelled'),
]);

export const ResponseObject = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal('response'),
    created_at: Type.Integer(),
    status: ResponseStatus,
    completed_at: Type.Union([Type.Integer(), Type.Null()]),
    background: Type.Boolean(),
    error: Type.Union([Type.Object({ code: Type.String(), message: Type.String() }), Type.Null()]),
    incomplete_details: Type.Union([Type.Object({ reason: Type.String() }), Type.Null()]),
    instructions: Type.Union([Type.String(), Type.Null()]),
    max_output_tokens: Type.Union([Type.Integer(), Type.Null()]),
    model: Type.String(),
    output: Type.Array(ResponseItem),
    parallel_tool_calls: Type.Boolean(),
    previous_response_id: Type.Union([Type.String(), Type.Null()]),
    conversation: Type.Union([Type.Object({ id: Type.String() }), Type.Null()]),
    reasoning: Type.Object({ effort: Type.Null(), summary: Type.Null() }),
    store: Type.Boolean(),
    temperature: Type.Number(),
    text: Type.Object({ format: Type.Object({ type: Type.String() }, { additionalProperties: true }) }),
    tool_choice: ResponseToolChoice,
    tools: Type.Array(ResponseTool),
    top_p: Type.Number(),
    truncation: Type.Union([Type.Literal('auto'), Type.Literal('disabled')]),
    usage: Type.Optional(ResponseUsage),
    metadata: Type.Record(Type.String(), Type.String()),
  },
  { title: 'Response' },
);
export type ResponseObject = Static<typeof ResponseObject>;

export const ResponseStreamEvent = Type.Object(
  { type: Type.String(), sequence_number: Type.Integer() },
  {
    additionalProperties: true,
    title: 'ResponseStreamEvent',
    description:
      'One server-sent event `event: <type>` / `data: <event>`: response.created, response.in_progress, response.output_item.added, response.content_part.added, ' +
      'response.output_text.delta…, response.output_text.done, response.content_part.done, response.function_call_arguments.delta…/.done, response.output_item.done, ' +
      'then response.completed, response.incomplete or response.failed',
  },
);

export const ResponseItemList = Type.Object(
  { object: Type.Literal('list'), data: Type.Array(ResponseItem), first_id: Type.Union([Type.String(), Type.Null()]), last_id: Type.Union([Type.String(), Type.Null()]), has_more: Type.Boolean() },
  { title: 'ResponseItemList' },
);

export const TokenCounts = Type.Object({ object: Type.Literal('response.input_tokens'), input_tokens: Type.Integer() }, { title: 'TokenCountsResource' });

export const DeletedResponse = Type.Object({ id: Type.String(), object: Type.Literal('response'), deleted: Type.Literal(true) }, { title: 'DeletedResponse' });

export const ResponseParams = Type.Object({ response_id: Type.String({ maxLength: 128 }) });
export const ItemsQuery = Type.Object({ ...pageFields, order: Type.Optional(Order) }, { description: 'limit: 1 to 100, default 20; order: desc (default) or asc' });
export type ItemsQuery = Static<typeof ItemsQuery>;
