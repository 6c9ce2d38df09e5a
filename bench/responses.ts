/**
 * The Responses API's stored state against resending the conversation: time
 * to first token at turns 1, 8 and 32 of a conversation continued by
 * previous_response_id (about 100 new tokens a turn), in the server that made
 * it and in a restarted one (the state comes from the store), side by side
 * with the same turns sent whole to a server whose state cache is off; and
 * the bytes the store keeps per response. Every server here runs with the
 * state cache off, so previous_response_id is served from the stored state
 * alone.
 *
 *   npm run bench -- --only responses [--model DIR] [--turns 1,8,32] [--runs 3]
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '../src/store/store.ts';
import { withHttpServer } from './http.ts';
import { median, printTable } from './table.ts';

export interface ResponsesBenchOptions {
  turns: number;
  /** Measured runs per sampled turn (medians are reported). */
  runs: number;
  /** The turns whose time to first token is measured. */
  sample: number[];
}

const WORDS =
  'the river runs past old stone houses where people gather every evening to talk about weather markets music and the long summer that seems to never end while children play near the bridge and the baker closes his shop'.split(
    ' ',
  );

/** A user message of about 100 tokens, different for every turn. */
function userText(turn: number): string {
  const words = Array.from({ length: 88 }, (_, i) => WORDS[(i * 7 + turn * 13) % WORDS.length]);
  return `Message ${turn}: ${words.join(' ')}.`;
}

interface Streamed {
  ttftMs: number;
  id: string;
  text: string;
  usage?: { input_tokens: number; input_tokens_details: { cached_tokens: number } };
}

/** One streamed POST /v1/responses: request sent → first output_text.delta, and the completed response. */
async function streamResponse(url: string, body: Record<string, unknown>): Promise<Streamed> {
  const sent = performance.now();
  const res = await fetch(`${url}/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...body, stream: true }) });
  if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  const decoder = new TextDecoder();
  let buf = '';
  let first = 0;
  let done: Streamed | undefined;
  for await (const bytes of res.body) {
    buf += decoder.decode(bytes, { stream: true });
    let end: number;
    while ((end = buf.indexOf('\n\n')) !== -1) {
      const frame = buf.slice(0, end);
      buf = buf.slice(end + 2);
      const data = frame.split('\n').find((l) => l.startsWith('data: '));
      if (!data) continue;
      const e = JSON.parse(data.slice(6)) as { type: string; response?: { id: string; output: Array<{ type: string; content?: Array<{ text: string }> }>; usage: Streamed['usage'] }; message?: string };
      if (e.type === 'error') throw new Error(e.message);
      if (e.type === 'response.output_text.delta' && first === 0) first = performance.now();
      if (e.type === 'response.completed' || e.type === 'response.incomplete') {
        const r = e.response!;
        const text = r.output.filter((i) => i.type === 'message').map((i) => i.content!.map((p) => p.text).join('')).join('');
        done = { ttftMs: first - sent, id: r.id, text, usage: r.usage };
      }
    }
  }
  if (!done || first === 0) throw new Error('the stream ended without text or without response.completed');
  return done;
}

interface Conversation {
  ids: string[];
  messages: Array<{ role: 'user' | 'assistant'; content: string }>;
  /** Context tokens (input) at each turn. */
  inputTokens: number[];
  newTokens: number[];
}

const common = { temperature: 0, max_output_tokens: 16 };
const SERVER_FLAGS = ['--state-cache-bytes', '0', '--log-level', 'silent'];

/** Runs a conversation of `turns` turns, each continued by previous_response_id. */
async function converse(url: string, model: string, turns: number): Promise<Conversation> {
  const c: Conversation = { ids: [], messages: [], inputTokens: [], newTokens: [] };
  for (let t = 1; t <= turns; t++) {
    const r = await streamResponse(url, { model, input: userText(t), previous_response_id: c.ids[c.ids.length - 1], ...common });
    c.ids.push(r.id);
    c.messages.push({ role: 'user', content: userText(t) }, { role: 'assistant', content: r.text });
    c.inputTokens.push(r.usage!.input_tokens);
    c.newTokens.push(r.usage!.input_tokens - r.usage!.input_tokens_details.cached_tokens);
  }
  return c;
}

/** TTFT of turn `t` continued from the stored response of turn t − 1 (not stored itself, so the conversation stays as it is). */
async function continued(url: string, model: string, c: Conversation, t: number): Promise<number> {
  return (await streamResponse(url, { model, input: userText(t), previous_response_id: t > 1 ? c.ids[t - 2] : undefined, store: false, ...common })).ttftMs;
}

/** TTFT of turn `t` with the whole conversation before it sent as input items. */
async function whole(url: string, model: string, c: Conversation, t: number): Promise<number> {
  const input = [...c.messages.slice(0, 2 * (t - 1)), { role: 'user', content: userText(t) }];
  return (await streamResponse(url, { model, input, store: false, ...common })).ttftMs;
}

export async function responsesSection(modelDir: string, opts: ResponsesBenchOptions): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'mmrec-bench-responses-'));
  const flags = [...SERVER_FLAGS, '--data-dir', dataDir];
  const sample = opts.sample.filter((t) => t <= opts.turns);
  const times = { before: new Map<number, number[]>(), after: new Map<number, number[]>(), whole: new Map<number, number[]>() };
  const add = (m: Map<number, number[]>, t: number, ms: number) => m.set(t, [...(m.get(t) ?? []), ms]);
  let conversation!: Conversation;
  let firstAfterRestart = 0;
  // The server that held the conversation, a restarted one on the same data directory (a new engine
  // and store, which never saw the conversation: its states come from the database), and one that is
  // sent each turn whole: all up at once, measured in turn, so the three see the same machine.
  await withHttpServer(
    modelDir,
    async (first, model) => {
      await streamResponse(first, { model, input: 'Warm up.', store: false, ...common });
      conversation = await converse(first, model, opts.turns);
      await withHttpServer(
        modelDir,
        async (restarted) => {
          // The first request after a start also digests the model file once (what states are tied to): shown apart.
          const t0 = performance.now();
          await streamResponse(restarted, { model, input: 'Warm up.', previous_response_id: conversation.ids[0], store: false, ...common });
          firstAfterRestart = performance.now() - t0;
          await withHttpServer(
            modelDir,
            async (resent) => {
              await streamResponse(resent, { model, input: 'Warm up.', store: false, ...common });
              for (let r = 0; r < opts.runs; r++) {
                for (const t of sample) {
                  add(times.before, t, await continued(first, model, conversation, t));
                  add(times.after, t, await continued(restarted, model, conversation, t));
                  add(times.whole, t, await whole(resent, model, conversation, t));
                }
              }
            },
            SERVER_FLAGS,
          );
        },
        flags,
      );
    },
    flags,
  );
  const before = new Map([...times.before].map(([t, xs]) => [t, median(xs)]));
  const afterRestart = new Map([...times.after].map(([t, xs]) => [t, median(xs)]));
  const sent = new Map([...times.whole].map(([t, xs]) => [t, median(xs)]));

  printTable(
    `Responses: time to first token, ms (median of ${opts.runs}; streamed; ~${Math.round(median(conversation.newTokens))} new tokens a turn, replies of at most 16 tokens; state cache off everywhere)`,
    ['turn', 'context tokens', 'new tokens', 'previous_response_id', 'after a restart', 'sent whole', 'whole / previous_response_id'],
    sample.map((t) => [
      t,
      conversation.inputTokens[t - 1],
      conversation.newTokens[t - 1],
      before.get(t)!.toFixed(1),
      afterRestart.get(t)!.toFixed(1),
      sent.get(t)!.toFixed(1),
      (sent.get(t)! / before.get(t)!).toFixed(2),
    ]),
  );
  console.log(`first request after the restart (digests model.onnx once): ${firstAfterRestart.toFixed(0)} ms`);

  const { store } = await Store.open(dataDir);
  try {
    const totals = await store.responses.totals();
    const state = await store.responses.state(conversation.ids[conversation.ids.length - 1]);
    printTable(
      'Responses: what the store keeps per response (the conversation above)',
      ['stored responses', 'bytes in all', 'bytes per response (mean)', 'of which the state'],
      [[totals.responses, totals.bytes, Math.round(totals.bytes / totals.responses), state?.state.byteLength ?? 0]],
    );
  } finally {
    await store.close();
  }
}
