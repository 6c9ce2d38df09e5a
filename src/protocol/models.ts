/** GET /v1/models, GET /v1/models/{id}, GET /health. */
import { Type, type Static } from 'typebox';

export const Model = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal('model'),
    created: Type.Integer(),
    owned_by: Type.String(),
    max_model_len: Type.Integer({ description: 'extension (as vLLM): the context limit, prompt plus generated tokens' }),
    root: Type.Optional(Type.String({ description: 'extension (as vLLM): the id of the model this name serves (the model itself, or the one an alias names)' })),
  },
  { title: 'Model' },
);
export type Model = Static<typeof Model>;

export const ListModelsResponse = Type.Object({ object: Type.Literal('list'), data: Type.Array(Model) }, { title: 'ListModelsResponse' });
export type ListModelsResponse = Static<typeof ListModelsResponse>;

export const ModelParams = Type.Object({ model: Type.String() });

export const DeleteModelResponse = Type.Object({ id: Type.String(), object: Type.Literal('model'), deleted: Type.Boolean() }, { title: 'DeleteModelResponse' });

export const Health = Type.Object(
  {
    status: Type.Union([Type.Literal('ok'), Type.Literal('loading'), Type.Literal('shutting_down')]),
    models: Type.Array(Type.Object({ id: Type.String(), ready: Type.Boolean(), execution_provider: Type.Union([Type.String(), Type.Null()]) })),
  },
  { title: 'Health' },
);
export type Health = Static<typeof Health>;
