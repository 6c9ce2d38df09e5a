/**
 * Schemas shared by the chat and completions endpoints: the sampling fields
 * (OpenAI's, plus vLLM's extensions), stop sequences, usage.
 *
 * OpenAI marks most optional request fields nullable, and clients do send
 * `"temperature": null`; null always means "use the default".
 */
import { Type, type Static, type TSchema } from 'typebox';

/** An optional field that may also be null. */
export function Opt<T extends TSchema>(schema: T) {
  return Type.Optional(Type.Union([schema, Type.Null()]));
}

export const MAX_STOP_SEQUENCES = 4;

export const Stop = Type.Union(
  [Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { maxItems: MAX_STOP_SEQUENCES })],
  { title: 'StopConfiguration', description: `Up to ${MAX_STOP_SEQUENCES} sequences where generation stops; the sequence is not part of the output.` },
);

export const LogitBias = Type.Record(Type.String({ pattern: '^[0-9]+$' }), Type.Number({ minimum: -100, maximum: 100 }), {
  additionalProperties: false,
  description: 'token id (as a string) → bias from -100 to 100 added to its logit; -100 bans the token',
});

export const StreamOptions = Type.Object(
  { include_usage: Type.Optional(Type.Boolean({ description: 'send a last chunk with usage and empty choices' })) },
  { title: 'ChatCompletionStreamOptions' },
);

/** Sampling fields common to /v1/chat/completions and /v1/completions. */
export const samplingFields = {
  temperature: Opt(Type.Number({ minimum: 0, maximum: 2, description: '0 = greedy' })),
  top_p: Opt(Type.Number({ minimum: 0, maximum: 1 })),
  n: Opt(Type.Integer({ minimum: 1, maximum: 128, description: 'choices to generate (the server may set a lower limit)' })),
  stop: Opt(Stop),
  seed: Opt(Type.Integer({ minimum: Number.MIN_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER, description: 'same seed, parameters and prompt → same output' })),
  presence_penalty: Opt(Type.Number({ minimum: -2, maximum: 2 })),
  frequency_penalty: Opt(Type.Number({ minimum: -2, maximum: 2 })),
  logit_bias: Opt(LogitBias),
  stream: Opt(Type.Boolean()),
  stream_options: Opt(StreamOptions),
  user: Opt(Type.String()),
  // Extensions (vLLM's names).
  top_k: Opt(Type.Integer({ minimum: -1, description: 'extension: sample from the k most likely tokens; 0 or -1 = off' })),
  min_p: Opt(Type.Number({ minimum: 0, maximum: 1, description: 'extension: drop tokens less likely than min_p × the most likely one' })),
  repetition_penalty: Opt(
    Type.Number({ exclusiveMinimum: 0, maximum: 10, description: 'extension: > 1 discourages tokens already in the prompt or output; 1 = off' }),
  ),
  ignore_eos: Opt(Type.Boolean({ description: 'extension: keep generating past the end-of-text token (benchmarks)' })),
};

export const CompletionUsage = Type.Object(
  {
    prompt_tokens: Type.Integer(),
    completion_tokens: Type.Integer(),
    total_tokens: Type.Integer(),
    prompt_tokens_details: Type.Optional(
      Type.Object(
        { cached_tokens: Type.Integer({ description: 'prompt tokens whose recurrent state came from the conversation state cache instead of being prefilled' }) },
        { title: 'PromptTokensDetails' },
      ),
    ),
  },
  { title: 'CompletionUsage' },
);
export type CompletionUsage = Static<typeof CompletionUsage>;

export const FinishReason = Type.Union([Type.Literal('stop'), Type.Literal('length'), Type.Literal('tool_calls'), Type.Literal('function_call')], {
  description: 'function_call (deprecated) when the request used functions',
});
export type FinishReason = Static<typeof FinishReason>;

/** The fields every completion object and streamed chunk starts with; `object` names its kind. */
export function completionHeader<O extends string>(object: O) {
  return { id: Type.String(), object: Type.Literal(object), created: Type.Integer(), model: Type.String(), system_fingerprint: Type.String() };
}
