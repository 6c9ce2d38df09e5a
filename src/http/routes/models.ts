/** GET /v1/models, GET /v1/models/{model} */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ErrorResponse } from '../../protocol/errors.ts';
import { ListModelsResponse, Model, ModelParams } from '../../protocol/models.ts';
import type { ModelRegistry, ServedModel } from '../../serving/registry.ts';

function toModel(m: ServedModel): Model {
  return { id: m.id, object: 'model', created: m.info.createdAt, owned_by: 'mmrec', max_model_len: m.info.contextLength };
}

export const modelRoutes: FastifyPluginAsyncTypebox<{ registry: ModelRegistry }> = async (app, { registry }) => {
  const json = (schema: unknown, description: string) => ({ description, content: { 'application/json': { schema } } });
  app.get(
    '/v1/models',
    { schema: { summary: 'List the served models', tags: ['Models'], response: { 200: json(ListModelsResponse, 'The served models'), 401: json(ErrorResponse, 'Missing or wrong API key') } } },
    async () => ({ object: 'list' as const, data: registry.list().map(toModel) }),
  );
  app.get(
    '/v1/models/:model',
    {
      schema: {
        summary: 'Describe one model',
        tags: ['Models'],
        params: ModelParams,
        response: { 200: json(Model, 'The model'), 401: json(ErrorResponse, 'Missing or wrong API key'), 404: json(ErrorResponse, 'Unknown model (`model_not_found`)') },
      },
    },
    async (request) => toModel(registry.get(request.params.model)),
  );
};
