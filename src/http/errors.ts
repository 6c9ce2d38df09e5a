/**
 * The app's one error handler: whatever went wrong (our ApiError, a schema
 * validation failure, a body-parser error, a bug) leaves as OpenAI's error
 * body with the matching status.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../protocol/errors.ts';

interface AjvError {
  keyword: string;
  instancePath: string;
  message?: string;
  params: Record<string, unknown>;
}

/**
 * "/messages/0/content" → "messages[0].content" (OpenAI's way of naming a
 * param). With the request data at hand, a numeric segment is an index only
 * where the data holds an array ("logit_bias.15" stays a key).
 */
export function paramName(instancePath: string, context = 'body', data?: unknown): string | null {
  const parts = instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  let out = '';
  let node: unknown = data;
  for (const p of parts) {
    const isIndex = /^\d+$/.test(p) && (data === undefined || Array.isArray(node));
    out += isIndex ? `[${p}]` : out === '' ? p : `.${p}`;
    node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[p] : undefined;
  }
  return out === '' ? (context === 'body' ? null : context) : out;
}

/**
 * Ajv reports every branch of a union (our nullable fields are unions with
 * null), so the first error is rarely the useful one. Pick the deepest path
 * (the most specific field), then say what is wrong with it: a constraint
 * (maximum, maxItems…) when the value had the right type, else the types or
 * values it could have had.
 */
export function validationError(errors: AjvError[], context = 'body', data?: unknown): ApiError {
  const located = errors
    .filter((e) => e.keyword !== 'anyOf' && e.keyword !== 'oneOf')
    .map((e) => ({ e, path: e.keyword === 'required' ? `${e.instancePath}/${String(e.params.missingProperty)}` : e.instancePath }));
  if (located.length === 0) {
    const e = errors[0];
    const param = paramName(e?.instancePath ?? '', context, data);
    return ApiError.invalid(`Invalid ${param ?? 'request body'}: ${e?.message ?? 'does not match the schema'}`, param, 'invalid_type');
  }
  const depth = (p: string) => p.split('/').length;
  const deepest = Math.max(...located.map((l) => depth(l.path)));
  const here = located.filter((l) => depth(l.path) === deepest);
  const path = here[0].path;
  const sameField = here.filter((l) => l.path === path).map((l) => l.e);
  const param = paramName(path, context, data);
  const name = param ?? 'request body';

  const required = sameField.find((e) => e.keyword === 'required');
  if (required) return ApiError.invalid(`Missing required parameter: '${name}'.`, param, 'missing_required_parameter');
  const constraint = sameField.find((e) => e.keyword !== 'type' && e.keyword !== 'const' && e.keyword !== 'enum');
  if (constraint) {
    if (constraint.keyword === 'additionalProperties') {
      return ApiError.invalid(`Invalid '${name}': unexpected key "${String(constraint.params.additionalProperty)}".`, param, 'invalid_value');
    }
    return ApiError.invalid(`Invalid '${name}': ${constraint.message}.`, param, 'invalid_value');
  }
  const types = sameField.filter((e) => e.keyword === 'type').map((e) => String(e.params.type));
  const consts = sameField.filter((e) => e.keyword === 'const').map((e) => JSON.stringify(e.params.allowedValue));
  const enums = sameField.filter((e) => e.keyword === 'enum').flatMap((e) => (e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)));
  const allowed = [...new Set([...consts, ...enums])];
  const otherTypes = [...new Set(types.filter((t) => t !== 'string' && t !== 'null'))];
  if (allowed.length > 0) {
    const or = otherTypes.length > 0 ? `, or ${otherTypes.map((t) => `an ${t}`).join(' or ')}` : '';
    return ApiError.invalid(`Invalid '${name}': must be one of ${allowed.join(', ')}${or}.`, param, 'invalid_value');
  }
  const expected = [...new Set(types)];
  const list = expected.length > 1 ? `${expected.slice(0, -1).join(', ')} or ${expected[expected.length - 1]}` : expected[0];
  return ApiError.invalid(`Invalid type for '${name}': expected ${list}.`, param, 'invalid_type');
}

/** Any thrown value → the ApiError to send. */
export function toApiError(err: unknown, data?: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const e = err as FastifyError & { validation?: AjvError[]; validationContext?: string };
  if (e && Array.isArray(e.validation)) return validationError(e.validation, e.validationContext, data);
  switch (e?.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return ApiError.invalid(`We could not parse the JSON body of your request: ${e.message}. The API expects a JSON payload.`, null, 'invalid_json');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError(413, `Request body too large: ${e.message}`, 'invalid_request_error', null, 'request_too_large');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError(415, `Unsupported Content-Type: send the body as application/json.`, 'invalid_request_error', null, 'unsupported_media_type');
  }
  // Fastify's own errors for bad requests (malformed content length, bad URL…) keep their 4xx status.
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new ApiError(e.statusCode, e.message, 'invalid_request_error', null, e.code ?? null);
  }
  return ApiError.internal();
}

export function registerErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const api = toApiError(err, (err as { validationContext?: string })?.validationContext === 'params' ? request.params : request.body);
    if (api.status >= 500 && api.status !== 503) request.log.error({ err }, 'request failed');
    else request.log.debug({ err: (err as Error)?.message, status: api.status }, 'request refused');
    if (reply.raw.destroyed) return; // the client is gone; nothing can be sent
    reply.code(api.status).headers(api.headers).type('application/json').send(api.toBody());
  });
  app.setNotFoundHandler((request, reply) => {
    const api = new ApiError(404, `Invalid URL (${request.method} ${request.url.split('?')[0]})`, 'invalid_request_error', null, 'not_found');
    reply.code(404).send(api.toBody());
  });
}
