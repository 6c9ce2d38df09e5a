/**
 * The Batch API over a real store in a temporary data directory and a
 * scripted engine: the state machine, lines served exactly as their endpoint
 * serves them (bodies and errors compared with the route's own answers),
 * refused input files with the lines named, cancel and expiry with partial
 * results, a restart that continues where it stopped, and the limits. Every
 * batch is checked against OpenAI's schema.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.ts';
import { BatchWorker, type BatchSettings } from '../../src/jobs/batches/worker.ts';
import { BatchService } from '../../src/serving/batches.ts';
import { FileService } from '../../src/serving/files.ts';
import { Store } from '../../src/store/store.ts';
import { assertOpenAI } from '../e2e/openai-schema.ts';
import { FakeEngine, fakeRegistry, reply, tokenizer, type FakeOptions } from './http-fake-engine.ts';

const SILENT = { info() {}, warn() {}, error() {} };
const MODEL = 'fake-model';

interface Server {
  app: FastifyInstance;
  worker: BatchWorker;
  store: Store;
  engine: FakeEngine;
  close(): Promise<void>;
}

/** An app with the Files and Batch APIs over `dataDir`, its worker started. */
async function serve(dataDir: string, opts: { engine?: FakeOptions; settings?: Partial<BatchSettings>; maxInputBytes?: number; maxBodySize?: number } = {}): Promise<Server> {
  const store = (await Store.open(dataDir)).store;
  const engine = new FakeEngine(opts.engine);
  const worker = new BatchWorker({ store, settings: { maxLines: 1000, maxInFlight: 4, expiryCheckMs: 20, ...opts.settings }, log: SILENT });
  const app = await buildApp({
    registry: fakeRegistry(engine),
    limits: { maxTokens: 64, maxN: 4 },
    files: new FileService(store, 1 << 20),
    batches: new BatchService(store, worker, opts.maxInputBytes),
    maxBodySize: opts.maxBodySize,
  });
  await app.ready();
  await worker.start();
  return {
    app,
    worker,
    store,
    engine,
    async close() {
      await worker.close();
      await app.close();
      await store.close();
    },
  };
}

let server: Server;

before(async () => {
  // Each reply names the prompt's last user text, so lines are told apart by their output.
  server = await serve(mkdtempSync(join(tmpdir(), 'mmrec-batches-')), {
    engine: { script: (req) => reply(`echo ${tokenizer.decode(req.promptIds.slice(-12)).replace(/[^a-z0-9 ]/gi, '')}`) },
  });
});

after(async () => {
  await server.close();
});

const chat = (content: string, extra: Record<string, unknown> = {}) => ({ model: MODEL, messages: [{ role: 'user', content }], max_tokens: 8, ...extra });
const line = (custom_id: string, body: unknown, url = '/v1/chat/completions') => JSON.stringify({ custom_id, method: 'POST', url, body });

async function inputFile(s: Server, lines: string[], purpose = 'batch'): Promise<string> {
  const f = await s.store.files.createFrom(Readable.from([Buffer.from(lines.join('\n') + '\n')]), { filename: 'input.jsonl', purpose });
  return f.id;
}

async function create(s: Server, input_file_id: string, extra: Record<string, unknown> = {}) {
  const r = await s.app.inject({ method: 'POST', url: '/v1/batches', payload: { input_file_id, endpoint: '/v1/chat/completions', completion_window: '24h', ...extra } });
  assert.equal(r.statusCode, 200, r.body);
  const b = r.json();
  assertOpenAI('Batch', b);
  return b as { id: string; status: string };
}

interface BatchJson {
  id: string;
  status: string;
  request_counts: { total: number; completed: number; failed: number };
  output_file_id?: string;
  error_file_id?: string;
  errors?: { data: Array<{ code: string; message: string; param: string | null; line: number | null }> };
  usage: { input_tokens: number; output_tokens: number };
  model?: string;
}

async function get(s: Server, id: string): Promise<BatchJson> {
  const r = await s.app.inject({ method: 'GET', url: `/v1/batches/${id}` });
  assert.equal(r.statusCode, 200, r.body);
  assertOpenAI('Batch', r.json());
  return r.json();
}

async function until(s: Server, id: string, statuses: string[], timeoutMs = 20_000): Promise<BatchJson> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const b = await get(s, id);
    if (statuses.includes(b.status)) return b;
    if (Date.now() > deadline) throw new Error(`batch ${id} still ${b.status} (${JSON.stringify(b.request_counts)})`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

interface OutputLine {
  id: string;
  custom_id: string;
  response: { status_code: number; request_id: string; body: Record<string, unknown> } | null;
  error: { code: string; message: string } | null;
}

async function content(s: Server, fileId: string | undefined): Promise<OutputLine[]> {
  if (!fileId) return [];
  const f = await s.app.inject({ method: 'GET', url: `/v1/files/${fileId}` });
  assert.equal(f.json().purpose, 'batch_output');
  assertOpenAI('OpenAIFile', f.json());
  const r = await s.app.inject({ method: 'GET', url: `/v1/files/${fileId}/content` });
  assert.equal(r.statusCode, 200);
  return r.body.trimEnd().split('\n').map((l) => JSON.parse(l));
}

/** A response body without what differs between two servings of the same request. */
function comparable(body: Record<string, unknown>): Record<string, unknown> {
  const { id: _id, created: _created, ...rest } = body;
  return rest;
}

test('lines are served as their endpoint serves them: same bodies, same errors with their status, each custom_id once', async () => {
  const bodies = [
    chat('alpha one'),
    chat('beta two', { temperature: 0, stop: ['zzz'] }),
    chat('gamma', { max_tokens: 100000 }), // schema-valid; the endpoint refuses it (over --max-tokens)
    chat('delta', { model: 'no-such-model' }),
    chat('epsilon', { logprobs: true, top_logprobs: 2 }),
    chat('zeta', { n: 2 }),
  ];
  const id = await inputFile(server, bodies.map((b, i) => line(`req-${i}`, b)));
  const created = await create(server, id, { metadata: { purpose: 'test' } });
  assert.equal(created.status, 'validating');
  const done = await until(server, created.id, ['completed', 'failed']);
  assert.equal(done.status, 'completed', JSON.stringify(done.errors));
  assert.deepEqual(done.request_counts, { total: 6, completed: 4, failed: 2 });
  assert.equal(done.model, undefined, 'the lines name two models');
  const outputs = await content(server, done.output_file_id);
  const errors = await content(server, done.error_file_id);
  const all = [...outputs, ...errors];
  assert.deepEqual(all.map((o) => o.custom_id).sort(), bodies.map((_, i) => `req-${i}`).sort(), 'every custom_id exactly once');
  assert.equal(new Set(all.map((o) => o.id)).size, all.length);
  for (const o of all) {
    assert.match(o.id, /^batch_req_/);
    assert.match(o.response!.request_id, /^req_/);
    assert.equal(o.error, null);
    const i = Number(o.custom_id.slice(4));
    const direct = await server.app.inject({ method: 'POST', url: '/v1/chat/completions', payload: bodies[i] });
    assert.equal(o.response!.status_code, direct.statusCode, `${o.custom_id}: the route's status`);
    if (direct.statusCode === 200) {
      assertOpenAI('CreateChatCompletionResponse', o.response!.body);
      assert.deepEqual(comparable(o.response!.body), comparable(direct.json()), `${o.custom_id}: the route's body`);
    } else {
      assertOpenAI('ErrorResponse', o.response!.body);
      assert.deepEqual(o.response!.body, direct.json(), `${o.custom_id}: the route's error`);
    }
  }
  assert.deepEqual(outputs.map((o) => o.custom_id), ['req-0', 'req-1', 'req-4', 'req-5'], 'the output file in input order');
  const usage = outputs.reduce((n, o) => n + ((o.response!.body.usage as { completion_tokens: number }).completion_tokens), 0);
  assert.equal(done.usage.output_tokens, usage, "the batch's usage sums its lines'");
  const list = await server.app.inject({ method: 'GET', url: '/v1/batches' });
  assertOpenAI('ListBatchesResponse', list.json());
  assert.equal(list.json().data[0].id, created.id);
});

test('/v1/completions lines are served as that endpoint serves them', async () => {
  const body = { model: MODEL, prompt: 'Once upon a time', max_tokens: 5, echo: true };
  const id = await inputFile(server, [line('c1', body, '/v1/completions')]);
  const r = await server.app.inject({ method: 'POST', url: '/v1/batches', payload: { input_file_id: id, endpoint: '/v1/completions', completion_window: '24h' } });
  const done = await until(server, r.json().id, ['completed', 'failed']);
  assert.equal(done.status, 'completed');
  assert.equal(done.model, MODEL);
  const [out] = await content(server, done.output_file_id);
  const direct = await server.app.inject({ method: 'POST', url: '/v1/completions', payload: body });
  assertOpenAI('CreateCompletionResponse', out.response!.body);
  assert.deepEqual(comparable(out.response!.body), comparable(direct.json()));
});

test('a bad input file fails validation, every bad line named; schema errors are the route\'s own', async () => {
  const badBody = chat('x', { temperature: 'hot' });
  const missing = { model: MODEL, max_tokens: 4 };
  const lines = [
    line('ok-1', chat('fine')),
    '{not json',
    line('ok-2', chat('fine'), '/v1/completions'),
    line('ok-1', chat('again')),
    line('s', chat('x', { stream: true })),
    line('b', badBody),
    JSON.stringify({ custom_id: 'm', method: 'GET', url: '/v1/chat/completions', body: chat('x') }),
    JSON.stringify({ method: 'POST', url: '/v1/chat/completions', body: chat('x') }),
    line('missing', missing),
    '[1, 2]',
    // Written by hand: JSON.stringify would not write a __proto__ key.
    '{"custom_id":"proto","method":"POST","url":"/v1/chat/completions","body":{"model":"fake-model","messages":[{"role":"user","content":"x"}],"__proto__":{"x":1}}}',
  ];
  const id = await inputFile(server, lines);
  const b = await until(server, (await create(server, id)).id, ['failed', 'in_progress', 'completed']);
  assert.equal(b.status, 'failed');
  const byLine = new Map(b.errors!.data.map((e) => [e.line, e]));
  assert.deepEqual([...byLine.keys()], [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  assert.equal(byLine.get(2)!.code, 'invalid_json_line');
  assert.equal(byLine.get(3)!.code, 'mismatched_endpoint');
  assert.equal(byLine.get(3)!.param, 'url');
  assert.equal(byLine.get(4)!.code, 'duplicate_custom_id');
  assert.equal(byLine.get(5)!.param, 'body.stream');
  assert.equal(byLine.get(7)!.param, 'method');
  assert.equal(byLine.get(8)!.code, 'missing_required_parameter');
  assert.equal(byLine.get(8)!.param, 'custom_id');
  assert.equal(byLine.get(10)!.code, 'invalid_json_line');
  assert.equal(byLine.get(11)!.code, 'invalid_json_line', 'prototype poisoning is refused as the body parser refuses it');
  for (const [n, body] of [
    [6, badBody],
    [9, missing],
  ] as const) {
    const direct = (await server.app.inject({ method: 'POST', url: '/v1/chat/completions', payload: body })).json().error;
    const e = byLine.get(n)!;
    assert.equal(e.code, direct.code);
    assert.equal(e.param, `body.${direct.param}`);
    assert.equal(e.message, `Line ${n}: ${direct.message}`);
  }
  assert.equal(b.request_counts.total, 0);
  assert.equal(b.output_file_id, undefined);
});

test('an empty input file fails; more lines than --batch-max-lines fails', async () => {
  const empty = await inputFile(server, ['', '  ']);
  const e = await until(server, (await create(server, empty)).id, ['failed', 'completed']);
  assert.equal(e.errors!.data[0].code, 'empty_file');
  const small = await serve(mkdtempSync(join(tmpdir(), 'mmrec-batches-')), { settings: { maxLines: 3 } });
  try {
    const id = await inputFile(small, [1, 2, 3, 4, 5].map((i) => line(`r${i}`, chat('x'))));
    const b = await until(small, (await create(small, id)).id, ['failed', 'completed']);
    assert.equal(b.status, 'failed');
    assert.deepEqual(b.errors!.data.map((x) => [x.code, x.line]), [['too_many_requests', 4]]);
  } finally {
    await small.close();
  }
});

test('a line larger than a body may be (--max-body-size) is refused at validation', async () => {
  const s = await serve(mkdtempSync(join(tmpdir(), 'mmrec-batches-')), { maxBodySize: 2048 });
  try {
    const id = await inputFile(s, [line('small', chat('x')), line('big', chat('y'.repeat(5000)))]);
    const b = await until(s, (await create(s, id)).id, ['failed', 'completed']);
    assert.equal(b.status, 'failed');
    assert.deepEqual(b.errors!.data.map((x) => [x.code, x.line]), [['request_too_large', 2]]);
  } finally {
    await s.close();
  }
});

test('bad create requests: file, purpose, size, endpoint, window; unknown batch; pagination', async () => {
  const expectError = async (payload: Record<string, unknown>, status: number, param: string | null, s = server) => {
    const r = await s.app.inject({ method: 'POST', url: '/v1/batches', payload: { endpoint: '/v1/chat/completions', completion_window: '24h', ...payload } });
    assert.equal(r.statusCode, status, r.body);
    assertOpenAI('ErrorResponse', r.json());
    assert.equal(r.json().error.param, param);
    return r.json().error;
  };
  const good = await inputFile(server, [line('a', chat('x'))]);
  await expectError({ input_file_id: 'file-nope' }, 400, 'input_file_id');
  await expectError({ input_file_id: await inputFile(server, [line('a', chat('x'))], 'fine-tune') }, 400, 'input_file_id');
  const moderations = await expectError({ input_file_id: good, endpoint: '/v1/moderations' }, 400, 'endpoint');
  assert.equal(moderations.code, 'unsupported_value');
  assert.match(moderations.message, /no moderations/);
  await expectError({ input_file_id: good, endpoint: '/v1/nothing' }, 400, 'endpoint');
  await expectError({ input_file_id: good, completion_window: '48h' }, 400, 'completion_window');
  await expectError({ input_file_id: good, output_expires_after: { anchor: 'created_at', seconds: 10 } }, 400, 'output_expires_after.seconds');
  const tiny = await serve(mkdtempSync(join(tmpdir(), 'mmrec-batches-')), { maxInputBytes: 16 });
  try {
    const e = await expectError({ input_file_id: await inputFile(tiny, [line('a', chat('x'))]) }, 400, 'input_file_id', tiny);
    assert.equal(e.code, 'file_too_large');
  } finally {
    await tiny.close();
  }
  for (const [method, url] of [
    ['GET', '/v1/batches/batch_nope'],
    ['POST', '/v1/batches/batch_nope/cancel'],
  ] as const) {
    const r = await server.app.inject({ method, url });
    assert.equal(r.statusCode, 404);
    assertOpenAI('ErrorResponse', r.json());
  }
  const ids = [];
  for (let i = 0; i < 3; i++) ids.push((await create(server, good)).id);
  for (const id of ids) await until(server, id, ['completed']);
  const page = (await server.app.inject({ method: 'GET', url: '/v1/batches?limit=2' })).json();
  assertOpenAI('ListBatchesResponse', page);
  assert.deepEqual(page.data.map((b: { id: string }) => b.id), [ids[2], ids[1]]);
  assert.equal(page.has_more, true);
  const next = (await server.app.inject({ method: 'GET', url: `/v1/batches?limit=2&after=${page.last_id}` })).json();
  assert.equal(next.data[0].id, ids[0]);
  assert.equal((await server.app.inject({ method: 'GET', url: '/v1/batches?limit=101' })).statusCode, 400);
  assert.equal((await server.app.inject({ method: 'GET', url: '/v1/batches?after=batch_nope' })).statusCode, 400);
  const finished = await server.app.inject({ method: 'POST', url: `/v1/batches/${ids[0]}/cancel` });
  assert.equal(finished.statusCode, 400);
  assert.equal(finished.json().error.code, 'batch_not_cancellable');
});

test('cancel: lines in flight stop, finished ones are kept; output_expires_after sets the files\' expiry', async () => {
  const s = await serve(mkdtempSync(join(tmpdir(), 'mmrec-batches-')), { engine: { delayMs: 15 }, settings: { maxInFlight: 2 } });
  try {
    const id = await inputFile(s, Array.from({ length: 40 }, (_, i) => line(`r${i}`, chat(`line ${i}`))));
    const b = await create(s, id, { output_expires_after: { anchor: 'created_at', seconds: 3600 } });
    await until(s, b.id, ['in_progress']);
    for (;;) {
      if ((await get(s, b.id)).request_counts.completed >= 3) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    const r = await s.app.inject({ method: 'POST', url: `/v1/batches/${b.id}/cancel` });
    assert.equal(r.statusCode, 200);
    assertOpenAI('Batch', r.json());
    assert.equal(r.json().status, 'cancelling');
    const again = await s.app.inject({ method: 'POST', url: `/v1/batches/${b.id}/cancel` });
    assert.equal(again.statusCode, 200, 'cancelling twice is not an error');
    const done = await until(s, b.id, ['cancelled']);
    assert.ok(done.request_counts.completed >= 3 && done.request_counts.completed < 40, JSON.stringify(done.request_counts));
    const outputs = await content(s, done.output_file_id);
    assert.equal(outputs.length, done.request_counts.completed, 'the output file holds exactly the lines counted');
    assert.equal(new Set(outputs.map((o) => o.custom_id)).size, outputs.length);
    assert.equal(done.error_file_id, undefined);
    const file = (await s.app.inject({ method: 'GET', url: `/v1/files/${done.output_file_id}` })).json();
    assert.equal(file.expires_at, file.created_at + 3600);
    // Nothing keeps running for the cancelled batch.
    const steps = s.engine.steps;
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(s.engine.steps, steps);
  } finally {
    await s.close();
  }
});

test('a batch past its window expires: finished lines kept, the rest batch_expired in the error file', async () => {
  const s = await serve(mkdtempSync(join(tmpdir(), 'mmrec-batches-')), { engine: { delayMs: 15 }, settings: { maxInFlight: 1 } });
  const realNow = Date.now;
  try {
    const id = await inputFile(s, Array.from({ length: 20 }, (_, i) => line(`r${i}`, chat(`line ${i}`))));
    const b = await create(s, id);
    for (;;) {
      if ((await get(s, b.id)).request_counts.completed >= 2) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    Date.now = () => realNow() + 24 * 3600 * 1000 + 1000;
    const done = await until(s, b.id, ['expired']);
    const outputs = await content(s, done.output_file_id);
    const errors = await content(s, done.error_file_id);
    assert.equal(outputs.length + errors.length, 20);
    assert.deepEqual(done.request_counts, { total: 20, completed: outputs.length, failed: errors.length });
    assert.ok(errors.length > 0);
    for (const e of errors) {
      assert.equal(e.response, null);
      assert.equal(e.error!.code, 'batch_expired');
    }
    assert.deepEqual([...outputs, ...errors].map((o) => o.custom_id).sort(), Array.from({ length: 20 }, (_, i) => `r${i}`).sort());
  } finally {
    Date.now = realNow;
    await s.close();
  }
});

test('a batch interrupted mid-run continues after a restart: every custom_id exactly once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mmrec-batches-'));
  const first = await serve(dir, { engine: { delayMs: 10 }, settings: { maxInFlight: 3 } });
  const id = await inputFile(first, Array.from({ length: 30 }, (_, i) => line(`r${i}`, chat(`line ${i}`))));
  const b = await create(first, id);
  for (;;) {
    if ((await get(first, b.id)).request_counts.completed >= 5) break;
    await new Promise((r) => setTimeout(r, 5));
  }
  // Lines in flight are stopped and not recorded, as a kill would leave them.
  await first.close();
  const second = await serve(dir);
  try {
    const during = await get(second, b.id);
    assert.ok(during.request_counts.completed >= 5 && during.request_counts.completed < 30);
    const done = await until(second, b.id, ['completed']);
    assert.deepEqual(done.request_counts, { total: 30, completed: 30, failed: 0 });
    const outputs = await content(second, done.output_file_id);
    assert.deepEqual(outputs.map((o) => o.custom_id), Array.from({ length: 30 }, (_, i) => `r${i}`));
    assert.ok(second.engine.requests.length < 30, 'only the lines not recorded ran again');
  } finally {
    await second.close();
  }
});

test('an input file deleted before the batch could finish: the batch fails, the lines done are kept', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mmrec-batches-'));
  const first = await serve(dir, { engine: { delayMs: 10 }, settings: { maxInFlight: 2 } });
  const id = await inputFile(first, Array.from({ length: 30 }, (_, i) => line(`r${i}`, chat(`line ${i}`))));
  const b = await create(first, id);
  for (;;) {
    if ((await get(first, b.id)).request_counts.completed >= 3) break;
    await new Promise((r) => setTimeout(r, 5));
  }
  await first.close();
  // Deleted while the server was down (a file deleted while it is read stays readable until the read ends).
  const { store } = await Store.open(dir);
  assert.ok(await store.files.delete(id));
  await store.close();
  const third = await serve(dir);
  try {
    const done = await until(third, b.id, ['failed', 'completed']);
    assert.equal(done.status, 'failed');
    assert.equal(done.errors!.data[0].code, 'input_file_unavailable');
    const outputs = await content(third, done.output_file_id);
    assert.equal(outputs.length, done.request_counts.completed);
    assert.ok(outputs.length >= 3);
  } finally {
    await third.close();
  }
});
