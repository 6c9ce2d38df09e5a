/** GET /v1/models, GET and DELETE /v1/models/{model} */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ApiError, ErrorResponse } from '../../protocol/errors.ts';
import { DeleteModelResponse, ListModelsResponse, Model, ModelParams } from '../../protocol/models.ts';
import type { ModelRegistry, StoredModelInfo } from '../../serving/registry.ts';

function toModel(m: StoredModelInfo): Model {
  return { id: m.id, object: 'model', created: m.createdAt, owned_by: m.ownedBy, max_model_len: m.contextLength, ...(m.root !== undefined ? { root: m.root } : {}) };
}

export interface ModelRouteOptions {
  registry: ModelRegistry;
  /** Deletes a model the server made (false: no such model); absent: nothing can be deleted. */
  deleteModel?: (id: string) => Promise<boolean>;
}

export const modelRoutes: FastifyPluginAsyncTypebox<ModelRouteOptions> = async (app, { registry, deleteModel }) => {
  const json = (schema: unknown, description: string) => ({ description, content: { 'application/json': { schema } } });
  app.get(
    '/v1/models',
    { schema: { summary: 'List the served models', tags: ['Models'], response: { 200: json(ListModelsResponse, 'The served models'), 401: json(ErrorResponse, 'Missing or wrong API key') } } },
    async () => ({ object: 'list' as const, data: (await registry.listAll()).map(toModel) }),
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
    async (request) => toModel(await registry.describe(request.params.model)),
  );
  app.delete(
    '/v1/models/:model',
    {
      schema: {
        summary: 'Delete a fine-tuned model',
        tags: ['Models'],
        params: ModelParams,
        response: {
          200: json(DeleteModelResponse, 'Deleted'),
          401: json(ErrorResponse, 'Missing or wrong API key'),
          403: json(ErrorResponse, 'A model the server was started with (`model_not_deletable`)'),
          404: json(ErrorResponse, 'Unknown model (`model_not_found`)'),
        },
      },
    },
    async (request) => {
      const id = request.params.model;
      if (registry.isConfigured(id)) {
        throw new ApiError(403, `The model \`${id}\` is one this server was started with; only fine-tuned models can be deleted.`, 'invalid_request_error', 'model', 'model_not_deletable');
      }
      if (!deleteModel || !(await deleteModel(id))) throw ApiError.modelNotFound(id);
      return { id, object: 'model' as const, deleted: true };
    },
  );
};
