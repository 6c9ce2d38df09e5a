/**
 * POST /v1/chat/completions: request, response and stream chunk, as OpenAI
 * documents them (fields this server does not implement are left out, which
 * means they are accepted and ignored, as unknown fields are).
 */
import { Type, type Static } from 'typebox';
import { completionHeader, CompletionUsage, FinishReason, Opt, samplingFields } from './common.ts';

/**
 * Content parts are checked loosely here (any `type`) so that an image or audio
 * part reaches the message converter, which refuses it with a message that says
 * why, instead of a schema error listing every alternative.
 */
export const ContentPart = Type.Object(
  { type: Type.String({ description: 'only "text" (and "refusal" in assistant messages) is accepted' }), text: Type.Optional(Type.String()) },
  { title: 'ChatCompletionContentPart' },
);

export const ToolCall = Type.Object(
  {
    id: Type.String(),
    type: Type.Literal('function'),
    function: Type.Object({ name: Type.String(), arguments: Type.String({ description: 'JSON text' }) }),
  },
  { title: 'ChatCompletionMessageToolCall' },
);
export type ToolCall = Static<typeof ToolCall>;

export const ChatMessageParam = Type.Object(
  {
    role: Type.Union(
      [Type.Literal('system'), Type.Literal('developer'), Type.Literal('user'), Type.Literal('assistant'), Type.Literal('tool'), Type.Literal('function')],
      { description: 'developer is treated as system; function (deprecated, with name) as tool' },
    ),
    content: Opt(Type.Union([Type.String(), Type.Array(ContentPart)])),
    name: Opt(Type.String()),
    tool_calls: Opt(Type.Array(Type.Object({ id: Type.Optional(Type.String()), type: Type.Optional(Type.String()), function: Type.Object({ name: Type.String(), arguments: Type.Optional(Type.String()) }) }))),
    tool_call_id: Opt(Type.String()),
    function_call: Opt(Type.Object({ name: Type.String(), arguments: Type.Optional(Type.String()) }, { description: 'deprecated: an assistant message\'s one call, as tool_calls' })),
  },
  { title: 'ChatCompletionRequestMessage' },
);

/** OpenAI's rule for function and schema names. */
const NAME = { pattern: '^[a-zA-Z0-9_-]{1,64}$', description: 'letters, digits, _ and -, at most 64' };

export const FunctionTool = Type.Object(
  {
    type: Type.Literal('function'),
    function: Type.Object({
      name: Type.String(NAME),
      description: Type.Optional(Type.String()),
      parameters: Type.Optional(
        Type.Object({}, { description: 'JSON Schema of the arguments object; the arguments generated always validate against what the grammar enforces of it (see strict)' }),
      ),
      strict: Opt(Type.Boolean({ description: 'true: what the grammar cannot enforce of parameters is a 400; false or absent: it is accepted and left unenforced' })),
    }),
  },
  { title: 'ChatCompletionTool' },
);

/**
 * A tool of another type than function: accepted by the schema only so that
 * the request is refused with a message that says what is not supported,
 * rather than with a schema error about a missing `function`.
 */
export const UnsupportedTool = Type.Object(
  { type: Type.Literal('custom'), custom: Type.Optional(Type.Object({ name: Type.Optional(Type.String()) })) },
  { title: 'CustomTool', description: 'refused with a 400: only function tools are supported' },
);

/** OpenAI's deprecated `functions`: the function objects of tools. */
export const FunctionDefinition = Type.Object(
  {
    name: Type.String(NAME),
    description: Type.Optional(Type.String()),
    parameters: Type.Optional(Type.Object({}, { description: 'JSON Schema of the arguments object' })),
  },
  { title: 'ChatCompletionFunctions' },
);

export const ResponseFormat = Type.Object(
  {
    type: Type.Union([Type.Literal('text'), Type.Literal('json_object'), Type.Literal('json_schema')]),
    json_schema: Type.Optional(
      Type.Object({
        name: Type.String(NAME),
        description: Type.Optional(Type.String()),
        schema: Type.Optional(Type.Object({}, { description: 'JSON Schema the content must be valid against (for what the grammar enforces: see strict)' })),
        strict: Opt(Type.Boolean({ description: 'true: what the grammar cannot enforce of schema is a 400; false or absent: it is accepted and left unenforced' })),
      }),
    ),
  },
  { title: 'ResponseFormat', description: 'json_object: the content is a JSON object; json_schema: JSON valid against json_schema.schema (enforced token by token; see strict)' },
);

export const ChatCompletionRequest = Type.Object(
  {
    model: Type.String({ description: 'a served model id (GET /v1/models)' }),
    messages: Type.Array(ChatMessageParam, { minItems: 1 }),
    ...samplingFields,
    max_tokens: Opt(Type.Integer({ minimum: 1, description: 'deprecated by OpenAI in favour of max_completion_tokens; both work' })),
    max_completion_tokens: Opt(Type.Integer({ minimum: 1 })),
    logprobs: Opt(Type.Boolean()),
    top_logprobs: Opt(Type.Integer({ minimum: 0, maximum: 20 })),
    tools: Opt(
      Type.Array(Type.Union([FunctionTool, UnsupportedTool]), { description: 'rendered into the prompt; calls are constrained to these names and parameter schemas' }),
    ),
    tool_choice: Opt(
      Type.Union([
        Type.Literal('none'),
        Type.Literal('auto'),
        Type.Literal('required'),
        Type.Object({ type: Type.Literal('function'), function: Type.Object({ name: Type.String() }) }),
      ]),
    ),
    parallel_tool_calls: Opt(Type.Boolean({ description: 'default true: the model may make several calls in one reply' })),
    response_format: Opt(ResponseFormat),
    functions: Opt(
      Type.Array(FunctionDefinition, {
        description: 'deprecated (use tools): mapped onto tools as OpenAI does; the reply then carries message.function_call and finish_reason function_call',
      }),
    ),
    function_call: Opt(
      Type.Union([Type.Literal('none'), Type.Literal('auto'), Type.Object({ name: Type.String() })], { description: 'deprecated (use tool_choice): with functions; default auto' }),
    ),
  },
  { title: 'CreateChatCompletionRequest' },
);
export type ChatCompletionRequest = Static<typeof ChatCompletionRequest>;

export const TopLogprob = Type.Object({
  token: Type.String(),
  logprob: Type.Number(),
  bytes: Type.Union([Type.Array(Type.Integer()), Type.Null()]),
});

export const TokenLogprob = Type.Object(
  {
    token: Type.String(),
    logprob: Type.Number(),
    bytes: Type.Union([Type.Array(Type.Integer()), Type.Null()]),
    top_logprobs: Type.Array(TopLogprob),
  },
  { title: 'ChatCompletionTokenLogprob' },
);
export type TokenLogprob = Static<typeof TokenLogprob>;

export const ChoiceLogprobs = Type.Object({
  content: Type.Union([Type.Array(TokenLogprob), Type.Null()]),
  refusal: Type.Union([Type.Array(TokenLogprob), Type.Null()]),
});
export type ChoiceLogprobs = Static<typeof ChoiceLogprobs>;

export const ChatCompletionResponseMessage = Type.Object(
  {
    role: Type.Literal('assistant'),
    content: Type.Union([Type.String(), Type.Null()]),
    refusal: Type.Union([Type.String(), Type.Null()]),
    tool_calls: Type.Optional(Type.Array(ToolCall)),
    function_call: Type.Optional(Type.Object({ name: Type.String(), arguments: Type.String() }, { description: 'deprecated: the call, when the request used functions' })),
  },
  { title: 'ChatCompletionResponseMessage' },
);

export const ChatCompletionResponse = Type.Object(
  {
    ...completionHeader('chat.completion'),
    choices: Type.Array(
      Type.Object({
        index: Type.Integer(),
        message: ChatCompletionResponseMessage,
        logprobs: Type.Union([ChoiceLogprobs, Type.Null()]),
        finish_reason: FinishReason,
      }),
    ),
    usage: CompletionUsage,
  },
  { title: 'CreateChatCompletionResponse' },
);
export type ChatCompletionResponse = Static<typeof ChatCompletionResponse>;

export const ToolCallChunk = Type.Object({
  index: Type.Integer(),
  id: Type.Optional(Type.String()),
  type: Type.Optional(Type.Literal('function')),
  function: Type.Optional(Type.Object({ name: Type.Optional(Type.String()), arguments: Type.Optional(Type.String()) })),
});
export type ToolCallChunk = Static<typeof ToolCallChunk>;

export const ChatCompletionChunk = Type.Object(
  {
    ...completionHeader('chat.completion.chunk'),
    choices: Type.Array(
      Type.Object({
        index: Type.Integer(),
        delta: Type.Object({
          role: Type.Optional(Type.Literal('assistant')),
          content: Type.Optional(Type.Union([Type.String(), Type.Null()])),
          tool_calls: Type.Optional(Type.Array(ToolCallChunk)),
          function_call: Type.Optional(Type.Object({ name: Type.Optional(Type.String()), arguments: Type.Optional(Type.String()) })),
        }),
        logprobs: Type.Optional(Type.Union([ChoiceLogprobs, Type.Null()])),
        finish_reason: Type.Union([FinishReason, Type.Null()]),
      }),
    ),
    usage: Type.Optional(Type.Union([CompletionUsage, Type.Null()])),
  },
  {
    title: 'CreateChatCompletionStreamResponse',
    description: 'One server-sent event `data: <chunk>`; the stream ends with `data: [DONE]`.',
  },
);
export type ChatCompletionChunk = Static<typeof ChatCompletionChunk>;
