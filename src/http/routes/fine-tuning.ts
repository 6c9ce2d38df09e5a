/** /v1/fine_tuning/jobs and below */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ErrorResponse } from '../../protocol/errors.ts';
import {
  CreateFineTuningJobRequest,
  FineTuningJob,
  JobParams,
  ListEventsQuery,
  ListFineTuningJobCheckpointsResponse,
  ListFineTuningJobEventsResponse,
  ListFineTuningJobsResponse,
  ListJobsQuery,
} from '../../protocol/fine-tuning.ts';
import type { FineTuningService } from '../../serving/fine-tuning.ts';

const json = (schema: unknown, description: string) => ({ description, content: { 'application/json': { schema } } });
const errors = { 400: json(ErrorResponse, 'Invalid request'), 401: json(ErrorResponse, 'Missing or wrong API key'), 404: json(ErrorResponse, 'No such job') };
const tags = ['Fine-tuning'];

export const fineTuningRoutes: FastifyPluginAsyncTypebox<{ service: FineTuningService }> = async (app, { service }) => {
  app.post(
    '/v1/fine_tuning/jobs',
    { schema: { summary: 'Create a fine-tuning job', tags, body: CreateFineTuningJobRequest, response: { 200: json(FineTuningJob, 'The job, validating its files'), ...errors } } },
    async (request) => service.create(request.body),
  );
  app.get(
    '/v1/fine_tuning/jobs',
    { schema: { summary: 'List fine-tuning jobs, newest first', tags, querystring: ListJobsQuery, response: { 200: json(ListFineTuningJobsResponse, 'A page of jobs'), ...errors } } },
    async (request) => service.list(request.query, request.query as Record<string, unknown>),
  );
  app.get(
    '/v1/fine_tuning/jobs/:fine_tuning_job_id',
    { schema: { summary: 'Describe a fine-tuning job', tags, params: JobParams, response: { 200: json(FineTuningJob, 'The job'), ...errors } } },
    async (request) => service.get(request.params.fine_tuning_job_id),
  );
  for (const [action, summary] of [
    ['cancel', 'Cancel a job: its trainer is stopped at once, its work removed'],
    ['pause', 'Pause a job: its trainer saves its state and stops'],
    ['resume', 'Resume a paused job from where it stopped'],
  ] as const) {
    app.post(
      `/v1/fine_tuning/jobs/:fine_tuning_job_id/${action}`,
      { schema: { summary, tags, params: JobParams, response: { 200: json(FineTuningJob, 'The job'), ...errors } } },
      async (request) => service[action](request.params.fine_tuning_job_id),
    );
  }
  app.get(
    '/v1/fine_tuning/jobs/:fine_tuning_job_id/events',
    { schema: { summary: "A job's events, newest first", tags, params: JobParams, querystring: ListEventsQuery, response: { 200: json(ListFineTuningJobEventsResponse, 'A page of events'), ...errors } } },
    async (request) => service.events(request.params.fine_tuning_job_id, request.query),
  );
  app.get(
    '/v1/fine_tuning/jobs/:fine_tuning_job_id/checkpoints',
    {
      schema: {
        summary: "A job's checkpoints, newest first; each is a model name that can be served",
        tags,
        params: JobParams,
        querystring: ListEventsQuery,
        response: { 200: json(ListFineTuningJobCheckpointsResponse, 'A page of checkpoints'), ...errors },
      },
    },
    async (request) => service.checkpoints(request.params.fine_tuning_job_id, request.query),
  );
};
