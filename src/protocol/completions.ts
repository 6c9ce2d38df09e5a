/** POST /v1/completions (legacy completions: a raw prompt, no chat template). */
import { Type, type Static } from 'typebox';
import { completionHeader, CompletionUsage, Opt, samplingFields } from './common.ts';

export const CompletionRequest = Type.Object(
  {
    model: Type.String(),
    prompt: Type.Union(
      [
        Type.String(),
        Type.Array(Type.String(), { minItems: 1 }),
        Type.Array(Type.Integer({ minimum: 0 }), { minItems: 1 }),
        Type.Array(Type.Array(Type.Integer({ minimum: 0 }), { minItems: 1 }), { minItems: 1 }),
      ],
      { description: 'text, a batch of texts, token ids, or a batch of token id lists; each prompt gets n choices' },
    ),
    ...samplingFields,
    max_tokens: Opt(Type.Integer({ minimum: 1, description: 'default 16, as OpenAI' })),
    logprobs: Opt(Type.Integer({ minimum: 0, maximum: 5, description: 'alternatives to return per position' })),
    echo: Opt(Type.Boolean({ description: 'prepend the prompt to the completion' })),
    best_of: Opt(Type.Integer({ minimum: 1, description: 'only best_of = n is supported' })),
    suffix: Opt(Type.String({ description: 'not supported (must be absent or empty)' })),
  },
  { title: 'CreateCompletionRequest' },
);
export type CompletionRequest = Static<typeof CompletionRequest>;

export const CompletionLogprobs = Type.Object({
  tokens: Type.Array(Type.String()),
  token_logprobs: Type.Array(Type.Number()),
  top_logprobs: Type.Array(Type.Record(Type.String(), Type.Number())),
  text_offset: Type.Array(Type.Integer()),
});
export type CompletionLogprobs = Static<typeof CompletionLogprobs>;

const CompletionChoice = Type.Object({
  index: Type.Integer(),
  text: Type.String(),
  logprobs: Type.Union([CompletionLogprobs, Type.Null()]),
  finish_reason: Type.Union([Type.Literal('stop'), Type.Literal('length'), Type.Null()], { description: 'null in stream chunks before the last' }),
});

export const CompletionResponse = Type.Object(
  {
    ...completionHeader('text_completion'),
    choices: Type.Array(CompletionChoice),
    usage: Type.Optional(Type.Union([CompletionUsage, Type.Null()])),
  },
  { title: 'CreateCompletionResponse', description: 'The response, and (streamed) each chunk `data: <chunk>`; the stream ends with `data: [DONE]`.' },
);
export type CompletionResponse = Static<typeof CompletionResponse>;
