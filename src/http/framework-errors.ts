/**
 * Errors that happen below the routes — a URL Fastify cannot decode, an
 * over-long path parameter, a request Node's HTTP parser refuses (headers too
 * large, malformed framing, a client too slow to send its request), an
 * `Expect` header the server does not meet — leave in OpenAI's error shape
 * too, with the status HTTP prescribes.
 */
import { STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../protocol/errors.ts';

function bodyOf(status: number, message: string, code: string): string {
  return JSON.stringify(new ApiError(status, message, 'invalid_request_error', null, code).toBody());
}

/** Fastify's `frameworkErrors`: a URL that is not valid percent-encoding, a path parameter over maxParamLength. */
export function frameworkErrors(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  const [status, message, code] =
    error.code === 'FST_ERR_MAX_PARAM_LENGTH'
      ? [414, 'A path parameter is longer than this server accepts.', 'uri_too_long']
      : error.code === 'FST_ERR_BAD_URL'
        ? [400, 'The URL is not valid (bad percent-encoding).', 'invalid_url']
        : [500, 'The server had an error while processing your request.', 'server_error'];
  reply.code(status).type('application/json').send(bodyOf(status, message, code));
}

/** Fastify's `clientErrorHandler`: Node's HTTP parser gave up on a request before Fastify saw it. */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, message, code] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'The request was not received in time (--request-timeout).', 'request_timeout']
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'The request headers are larger than this server accepts.', 'headers_too_large']
        : err.code === 'HPE_URI_TOO_LONG'
          ? [414, 'The URL is longer than this server accepts.', 'uri_too_long']
          : [400, `The HTTP request is malformed (${err.code ?? 'parse error'}).`, 'malformed_request'];
  if (socket.writable) {
    const body = bodyOf(status, message, code);
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  }
  socket.destroy();
}

/** Node answers an `Expect` other than 100-continue with a bare 417; this answers it in OpenAI's shape. */
export function registerExpectationHandler(server: Server): void {
  server.on('checkExpectation', (_req: IncomingMessage, res: ServerResponse) => {
    const body = bodyOf(417, 'Only "Expect: 100-continue" is supported.', 'expectation_failed');
    res.writeHead(417, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close' });
    res.end(body);
  });
}
