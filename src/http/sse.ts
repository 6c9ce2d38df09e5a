/**
 * Server-sent events as OpenAI streams them: `data: <json>\n\n` per event,
 * then `data: [DONE]\n\n`. Sent as a Readable so Fastify applies backpressure,
 * and a client that disconnects destroys the stream, which ends the event
 * iterator (and with it the generation).
 */
import { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';

export function sendEventStream(reply: FastifyReply, events: AsyncIterable<unknown>): FastifyReply {
  async function* frames() {
    for await (const e of events) yield `data: ${JSON.stringify(e)}\n\n`;
    yield 'data: [DONE]\n\n';
  }
  return reply
    .code(200)
    .header('content-type', 'text/event-stream; charset=utf-8')
    .header('cache-control', 'no-cache')
    .header('connection', 'keep-alive')
    // Tell nginx-style proxies not to buffer the stream.
    .header('x-accel-buffering', 'no')
    .send(Readable.from(frames(), { objectMode: false }));
}
