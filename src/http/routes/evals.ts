/** /v1/evals and below: evals, their runs, the runs' output items */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { ErrorResponse } from '../../protocol/errors.ts';
import {
  CreateEvalRequest,
  CreateEvalRunRequest,
  DeleteEvalResponse,
  DeleteEvalRunResponse,
  Eval,
  EvalList,
  EvalParams,
  EvalRun,
  EvalRunList,
  EvalRunOutputItem,
  EvalRunOutputItemList,
  ListEvalsQuery,
  ListOutputItemsQuery,
  ListRunsQuery,
  OutputItemParams,
  RunParams,
  UpdateEvalRequest,
} from '../../protocol/evals.ts';
import type { EvalService } from '../../serving/evals.ts';

const json = (schema: unknown, description: string) => ({ description, content: { 'application/json': { schema } } });
const errors = { 400: json(ErrorResponse, 'Invalid request'), 401: json(ErrorResponse, 'Missing or wrong API key'), 404: json(ErrorResponse, 'No such eval, run or item') };
const tags = ['Evals'];

/** Where this server is reached, as the client named it: runs' report_url points back here. */
function origin(request: FastifyRequest): string {
  return `${request.protocol}://${request.host || 'localhost'}`;
}

export const evalRoutes: FastifyPluginAsyncTypebox<{ service: EvalService }> = async (app, { service }) => {
  app.post('/v1/evals', { schema: { summary: 'Create an eval', tags, body: CreateEvalRequest, response: { 200: json(Eval, 'The eval'), ...errors } } }, async (request) => service.create(request.body));
  app.get('/v1/evals', { schema: { summary: 'List evals', tags, querystring: ListEvalsQuery, response: { 200: json(EvalList, 'A page of evals'), ...errors } } }, async (request) => service.list(request.query));
  app.get('/v1/evals/:eval_id', { schema: { summary: 'Describe an eval', tags, params: EvalParams, response: { 200: json(Eval, 'The eval'), ...errors } } }, async (request) => service.get(request.params.eval_id));
  app.post(
    '/v1/evals/:eval_id',
    { schema: { summary: 'Rename an eval or change its metadata', tags, params: EvalParams, body: UpdateEvalRequest, response: { 200: json(Eval, 'The eval'), ...errors } } },
    async (request) => service.update(request.params.eval_id, request.body),
  );
  app.delete(
    '/v1/evals/:eval_id',
    { schema: { summary: 'Delete an eval, its runs and their results', tags, params: EvalParams, response: { 200: json(DeleteEvalResponse, 'Deleted'), ...errors } } },
    async (request) => service.delete(request.params.eval_id),
  );

  app.post(
    '/v1/evals/:eval_id/runs',
    { schema: { summary: 'Start a run: sample and grade every item of a data source', tags, params: EvalParams, body: CreateEvalRunRequest, response: { 200: json(EvalRun, 'The run, queued'), ...errors } } },
    async (request) => service.createRun(request.params.eval_id, request.body, origin(request)),
  );
  app.get(
    '/v1/evals/:eval_id/runs',
    { schema: { summary: "An eval's runs", tags, params: EvalParams, querystring: ListRunsQuery, response: { 200: json(EvalRunList, 'A page of runs'), ...errors } } },
    async (request) => service.listRuns(request.params.eval_id, request.query, origin(request)),
  );
  app.get(
    '/v1/evals/:eval_id/runs/:run_id',
    { schema: { summary: 'Describe a run: status, counts, usage', tags, params: RunParams, response: { 200: json(EvalRun, 'The run'), ...errors } } },
    async (request) => service.getRun(request.params.eval_id, request.params.run_id, origin(request)),
  );
  app.post(
    '/v1/evals/:eval_id/runs/:run_id',
    { schema: { summary: 'Cancel a run: its items in flight stop, those not graded are dropped', tags, params: RunParams, response: { 200: json(EvalRun, 'The run, canceled'), ...errors } } },
    async (request) => service.cancelRun(request.params.eval_id, request.params.run_id, origin(request)),
  );
  app.delete(
    '/v1/evals/:eval_id/runs/:run_id',
    { schema: { summary: 'Delete a run and its results (canceled first if it runs)', tags, params: RunParams, response: { 200: json(DeleteEvalRunResponse, 'Deleted'), ...errors } } },
    async (request) => service.deleteRun(request.params.eval_id, request.params.run_id),
  );

  app.get(
    '/v1/evals/:eval_id/runs/:run_id/output_items',
    {
      schema: { summary: "A run's graded items, in data source order", tags, params: RunParams, querystring: ListOutputItemsQuery, response: { 200: json(EvalRunOutputItemList, 'A page of output items'), ...errors } },
    },
    async (request) => service.listItems(request.params.eval_id, request.params.run_id, request.query),
  );
  app.get(
    '/v1/evals/:eval_id/runs/:run_id/output_items/:output_item_id',
    { schema: { summary: 'One graded item: its sample and every result', tags, params: OutputItemParams, response: { 200: json(EvalRunOutputItem, 'The output item'), ...errors } } },
    async (request) => service.getItem(request.params.eval_id, request.params.run_id, request.params.output_item_id),
  );
};
