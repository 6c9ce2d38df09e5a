/** POST /v1/embeddings, as OpenAI documents it. */
import { Type, type Static } from 'typebox';
import { Opt } from './common.ts';

export const EmbeddingRequest = Type.Object(
  {
    model: Type.String({ description: 'a served model id or alias (GET /v1/models)' }),
    input: Type.Union(
      [
        Type.String(),
        Type.Array(Type.String(), { minItems: 1 }),
        Type.Array(Type.Integer({ minimum: 0 }), { minItems: 1 }),
        Type.Array(Type.Array(Type.Integer({ minimum: 0 }), { minItems: 1 }), { minItems: 1 }),
      ],
      {
        description:
          'text, texts, token ids or lists of token ids; no text may be empty. Bounded by --max-embedding-inputs items, ' +
          '--max-embedding-input-tokens tokens each and --max-embedding-tokens tokens in all',
      },
    ),
    encoding_format: Opt(
      Type.Union([Type.Literal('float'), Type.Literal('base64')], { description: 'base64: the little-endian float32 bytes of each vector, base64-encoded' }),
    ),
    dimensions: Opt(
      Type.Integer({
        minimum: 1,
        description: "the vector's length: the model's full dimension, or a prefix of whole state blocks (the same pooling over fewer layers)",
      }),
    ),
    user: Opt(Type.String()),
  },
  { title: 'CreateEmbeddingRequest' },
);
export type EmbeddingRequest = Static<typeof EmbeddingRequest>;

export const Embedding = Type.Object(
  {
    object: Type.Literal('embedding'),
    index: Type.Integer(),
    embedding: Type.Union([Type.Array(Type.Number()), Type.String({ description: 'with encoding_format base64' })]),
  },
  { title: 'Embedding' },
);

export const EmbeddingResponse = Type.Object(
  {
    object: Type.Literal('list'),
    data: Type.Array(Embedding),
    model: Type.String({ description: 'the model name the request asked for' }),
    usage: Type.Object(
      {
        prompt_tokens: Type.Integer({ description: 'tokens the model read, the chat framing of each input included' }),
        total_tokens: Type.Integer(),
      },
      { title: 'EmbeddingUsage' },
    ),
  },
  { title: 'CreateEmbeddingResponse' },
);
export type EmbeddingResponse = Static<typeof EmbeddingResponse>;
