/**
 * What Node's HTTP parser and Fastify's router refuse before a route runs
 * still leaves in OpenAI's error shape: over a real socket (inject skips the
 * parser), raw bytes in, status and body out.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.ts';
import { assertOpenAI } from '../e2e/openai-schema.ts';
import { fakeRegistry } from './http-fake-engine.ts';

let app: FastifyInstance;
let port = 0;

before(async () => {
  app = await buildApp({ registry: fakeRegistry(), limits: { maxTokens: 16, maxN: 1 }, requestTimeout: 1 });
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as { port: number }).port;
});

after(async () => {
  await app.close();
});

/** Sends raw bytes (optionally more after a pause), returns everything the server wrote until it closed the connection. */
function raw(data: string, opts: { thenAfterMs?: number; more?: string; timeoutMs?: number } = {}): Promise<{ status: number; body: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (received += d));
    socket.on('error', () => {});
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer in ${opts.timeoutMs ?? 10_000} ms: ${JSON.stringify(received)}`));
    }, opts.timeoutMs ?? 10_000);
    socket.on('close', () => {
      clearTimeout(timer);
      const m = /^HTTP\/1\.1 (\d{3})/.exec(received);
      resolve({ status: m ? Number(m[1]) : 0, body: received.slice(received.indexOf('\r\n\r\n') + 4), ms: performance.now() - started });
    });
    socket.write(data);
    if (opts.more !== undefined) setTimeout(() => socket.writable && socket.write(opts.more!), opts.thenAfterMs ?? 0);
  });
}

function assertOpenAIError(r: { status: number; body: string }, status: number): void {
  assert.equal(r.status, status, r.body);
  const body = JSON.parse(r.body);
  assertOpenAI('ErrorResponse', body);
}

test('headers too large: 431', async () => {
  assertOpenAIError(await raw(`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`), 431);
});

test('malformed framing: 400', async () => {
  assertOpenAIError(await raw('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'), 400);
  assertOpenAIError(await raw('GARBAGE\r\n\r\n'), 400);
});

test('an Expect the server does not meet: 417', async () => {
  assertOpenAIError(await raw('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}'), 417);
});

test('a client that stalls while sending its body gets 408 after the request timeout, and its connection is closed', async () => {
  const r = await raw('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"model":', { timeoutMs: 8000 });
  assertOpenAIError(r, 408);
  assert.ok(r.ms < 4000, `answered after ${Math.round(r.ms)} ms with a 1 s timeout`);
});
