/**
 * Server-sent events as OpenAI streams them: `data: <json>\n\n` per event,
 * then `data: [DONE]\n\n` (chat and text completions), or named events
 * `event: <type>\ndata: <json>\n\n` (the Responses API). Sent as a Readable so Fastify applies backpressure,
 * and a client that disconnects destroys the stream, which ends the event
 * iterator (and with it the generation).
 */
import { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';

export function sendEventStream(reply: FastifyReply, events: AsyncIterable<unknown>, options: { named?: boolean } = {}): FastifyReply {
  async function* frames() {
    if (options.named) {
      // The Responses API: `event: <type>` before each event's data, and no [DONE] at the end.
      for await (const e of events) yield `event: ${(e as { type: string }).type}\ndata: ${JSON.stringify(e)}\n\n`;
      return;
    }
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
