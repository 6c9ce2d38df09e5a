import type { TSchema } from 'typebox';

/** The error statuses every generating route can answer with, for the OpenAPI document. */
export function errorResponses(schema: TSchema) {
  const r = (description: string) => ({ description, content: { 'application/json': { schema } } });
  return {
    400: r('Invalid request (the error names the field in `param`)'),
    401: r('Missing or wrong API key'),
    404: r('Unknown model (`model_not_found`)'),
    413: r('Request body too large'),
    429: r('Too many requests waiting'),
    500: r('Server error'),
    503: r('Models still loading, or shutting down'),
  };
}
