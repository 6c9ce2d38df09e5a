/**
 * How request bodies are read: JSON only (UTF-8), nested at most
 * `maxJsonDepth` levels, parsed with Fastify's own prototype-poisoning
 * protection. Anything else gets 415; too deep gets 400 before it is parsed.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { DEFAULT_MAX_JSON_DEPTH, jsonDepthExceeds } from '../chat/json-depth.ts';
import { ApiError } from '../protocol/errors.ts';

export function tooDeep(limit: number, param: string | null = null): ApiError {
  return ApiError.invalid(`The JSON is nested more than ${limit} levels deep, which this server does not accept (--max-json-depth).`, param, 'json_too_deep');
}

/** The charset parameter of a Content-Type, lower-cased; undefined when there is none. */
function charsetOf(contentType: string | undefined): string | undefined {
  const m = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(contentType ?? '');
  return m?.[1].toLowerCase();
}

export function registerJsonBody(app: FastifyInstance, maxJsonDepth = DEFAULT_MAX_JSON_DEPTH): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  // Fastify also reads text/plain by default; the API takes JSON only, so text/plain is a 415 like any other type.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request: FastifyRequest, body: string | Buffer, done: (err: Error | null, body?: unknown) => void) => {
    const charset = charsetOf(request.headers['content-type']);
    if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
      done(new ApiError(415, `Unsupported charset "${charset}": send the JSON body as UTF-8.`, 'invalid_request_error', null, 'unsupported_media_type'));
      return;
    }
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (jsonDepthExceeds(text, maxJsonDepth)) {
      done(tooDeep(maxJsonDepth));
      return;
    }
    parse(request, text, done);
  });
}
