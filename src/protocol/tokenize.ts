/** POST /tokenize and POST /detokenize, as vLLM offers them. */
import { Type, type Static } from 'typebox';
import { ChatMessageParam, FunctionTool } from './chat.ts';
import { Opt } from './common.ts';

export const TokenizeRequest = Type.Object(
  {
    model: Type.String(),
    prompt: Type.Optional(Type.String({ description: 'raw text (give prompt or messages)' })),
    messages: Type.Optional(Type.Array(ChatMessageParam, { minItems: 1, description: 'a conversation, rendered with the chat template' })),
    add_generation_prompt: Opt(Type.Boolean({ description: 'with messages: end with the assistant turn opener (default true)' })),
    tools: Opt(Type.Array(FunctionTool)),
  },
  { title: 'TokenizeRequest', description: 'Exactly one of prompt and messages.' },
);
export type TokenizeRequest = Static<typeof TokenizeRequest>;

export const TokenizeResponse = Type.Object(
  { tokens: Type.Array(Type.Integer()), count: Type.Integer(), max_model_len: Type.Integer() },
  { title: 'TokenizeResponse' },
);
export type TokenizeResponse = Static<typeof TokenizeResponse>;

export const DetokenizeRequest = Type.Object({ model: Type.String(), tokens: Type.Array(Type.Integer({ minimum: 0 })) }, { title: 'DetokenizeRequest' });
export type DetokenizeRequest = Static<typeof DetokenizeRequest>;

export const DetokenizeResponse = Type.Object({ prompt: Type.String() }, { title: 'DetokenizeResponse' });
export type DetokenizeResponse = Static<typeof DetokenizeResponse>;
