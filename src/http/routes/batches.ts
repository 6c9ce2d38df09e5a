/**
 * POST/GET /v1/batches, GET /v1/batches/{batch_id}, POST /v1/batches/{batch_id}/cancel
 *
 * Also hands the batch worker the endpoints as the routes check them: once
 * the app is ready, each endpoint's body schema is compiled by the app's own
 * validator compiler (the same Ajv instance and options as the routes), its
 * errors are mapped by the app's error mapping, and lines are parsed by the
 * app's JSON body parser. A line is thus refused exactly as its body would be,
 * without going through HTTP (no socket, no admission slot, no access log).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import type { LineEndpoint } from '../../jobs/batches/lines.ts';
import { Batch, BatchParams, CreateBatchRequest, ListBatchesQuery, ListBatchesResponse } from '../../protocol/batches.ts';
import { ErrorResponse } from '../../protocol/errors.ts';
import type { BatchEndpointSpec } from '../../serving/batch-endpoints.ts';
import type { BatchService } from '../../serving/batches.ts';
import { toApiError } from '../errors.ts';

const json = (schema: unknown, description: string) => ({ description, content: { 'application/json': { schema } } });
const errors = { 400: json(ErrorResponse, 'Invalid request'), 401: json(ErrorResponse, 'Missing or wrong API key'), 404: json(ErrorResponse, 'No such batch') };
const tags = ['Batch'];

export interface BatchRouteOptions {
  service: BatchService;
  endpoints: Record<string, BatchEndpointSpec>;
  /** The app's --max-body-size and --max-json-depth, which a line's body is held to. */
  maxBodyBytes: number;
  maxJsonDepth: number;
}

interface CompiledValidator {
  (data: unknown): boolean;
  errors?: unknown[] | null;
}

export const batchRoutes: FastifyPluginAsyncTypebox<BatchRouteOptions> = async (app, { service, endpoints, maxBodyBytes, maxJsonDepth }) => {
  app.post(
    '/v1/batches',
    { schema: { summary: 'Create a batch from an uploaded file of requests', tags, body: CreateBatchRequest, response: { 200: json(Batch, 'The batch, validating its input file'), ...errors } } },
    async (request) => service.create(request.body),
  );
  app.get(
    '/v1/batches',
    { schema: { summary: 'List batches, newest first', tags, querystring: ListBatchesQuery, response: { 200: json(ListBatchesResponse, 'A page of batches'), ...errors } } },
    async (request) => service.list(request.query),
  );
  app.get(
    '/v1/batches/:batch_id',
    { schema: { summary: 'Describe a batch', tags, params: BatchParams, response: { 200: json(Batch, 'The batch'), ...errors } } },
    async (request) => service.get(request.params.batch_id),
  );
  app.post(
    '/v1/batches/:batch_id/cancel',
    {
      schema: {
        summary: 'Cancel a batch: lines in flight stop, finished ones are kept in its output and error files',
        tags,
        params: BatchParams,
        response: { 200: json(Batch, 'The batch, cancelling'), ...errors },
      },
    },
    async (request) => service.cancel(request.params.batch_id),
  );

  app.addHook('onReady', async () => {
    // The routes above have made this context's validator compiler: the app's, shared by every route.
    const compile = app.validatorCompiler;
    if (!compile) throw new Error('the batch routes have no validator compiler: their schemas were not compiled');
    const parse = app.getDefaultJsonParser('error', 'error');
    const served = new Map<string, LineEndpoint>();
    for (const [url, spec] of Object.entries(endpoints)) {
      const validate = compile({ schema: spec.schema, method: 'POST', url, httpPart: 'body' }) as CompiledValidator;
      served.set(url, {
        check: (body) => (validate(body) ? undefined : toApiError({ validation: validate.errors, validationContext: 'body' }, body)),
        run: async (body, signal) => {
          try {
            const answer = await spec.run(body, signal);
            return { status: 200, body: answer, usage: spec.usage(answer) };
          } catch (e) {
            const api = toApiError(e, body);
            return { status: api.status, body: api.toBody() };
          }
        },
      });
    }
    service.attach({
      endpoints: served,
      parseJson: (text) => {
        let out: { value: unknown } | undefined;
        parse({} as FastifyRequest, text, (err, value) => {
          if (!err) out = { value };
        });
        return out;
      },
      maxBodyBytes,
      maxJsonDepth,
    });
  });
};
