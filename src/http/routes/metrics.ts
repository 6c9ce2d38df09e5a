/** GET /metrics: Prometheus text format. Like /health, it needs no API key (scrapers rarely carry one). */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { ServerMetrics } from '../../serving/metrics.ts';

export const metricsRoutes: FastifyPluginAsyncTypebox<{ metrics: ServerMetrics }> = async (app, { metrics }) => {
  app.get(
    '/metrics',
    {
      schema: {
        summary: 'Prometheus metrics',
        description:
          'Requests by status, prompt/cached/generated tokens, time to first token and inter-token latency histograms, ' +
          'queue depth, decode batch size, and the conversation state cache (hits, misses, evictions, bytes, entries).',
        tags: ['Health'],
        response: { 200: { description: 'Prometheus text exposition format', content: { 'text/plain': { schema: { type: 'string' } } } } },
      },
    },
    async (_request, reply) => reply.header('content-type', metrics.contentType).send(await metrics.text()),
  );
};
