/** GET /health: 200 when every model is loaded, 503 while loading or shutting down. Never needs a key. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Health } from '../../protocol/models.ts';
import type { ModelRegistry } from '../../serving/registry.ts';

export const healthRoutes: FastifyPluginAsyncTypebox<{ registry: ModelRegistry }> = async (app, { registry }) => {
  const json = (description: string) => ({ description, content: { 'application/json': { schema: Health } } });
  app.get(
    '/health',
    { schema: { summary: 'Readiness', tags: ['Health'], response: { 200: json('Ready'), 503: json('Loading models or shutting down') } } },
    async (_request, reply) => {
      const health = registry.health();
      return reply.code(health.status === 'ok' ? 200 : 503).send(health);
    },
  );
};
