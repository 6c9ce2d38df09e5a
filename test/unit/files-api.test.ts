/**
 * The Files API over a real store in a temporary data directory: uploads
 * (multipart, streamed, bounded), listing and pagination, content, deletion,
 * expiry, and what a crash leaves behind. Every object is checked against
 * OpenAI's schemas.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.ts';
import { FileService } from '../../src/serving/files.ts';
import { Store } from '../../src/store/store.ts';
import { assertOpenAI } from '../e2e/openai-schema.ts';
import { fakeRegistry } from './http-fake-engine.ts';

const MAX = 64 * 1024;
let dataDir: string;
let store: Store;
let app: FastifyInstance;

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'mmrec-files-'));
  store = (await Store.open(dataDir)).store;
  app = await buildApp({ registry: fakeRegistry(), limits: { maxTokens: 16, maxN: 1 }, files: new FileService(store, MAX) });
});

after(async () => {
  await app.close();
  await store.close();
});

/** A multipart/form-data body, as clients send it (the file part first, as the openai SDK does). */
function form(parts: Array<{ name: string; value: string | Buffer; filename?: string }>): { payload: Buffer; headers: Record<string, string> } {
  const boundary = '----mmrec-test-boundary';
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const disposition = `form-data; name="${p.name}"${p.filename !== undefined ? `; filename="${p.filename}"` : ''}`;
    const type = p.filename !== undefined ? 'Content-Type: application/octet-stream\r\n' : '';
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n${type}\r\n`), Buffer.isBuffer(p.value) ? p.value : Buffer.from(p.value), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(chunks), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

async function upload(content: string | Buffer, purpose = 'fine-tune', filename = 'train.jsonl', extra: Array<{ name: string; value: string }> = []) {
  return app.inject({ method: 'POST', url: '/v1/files', ...form([{ name: 'file', value: content, filename }, { name: 'purpose', value: purpose }, ...extra]) });
}

function assertError(r: { statusCode: number; json(): unknown }, status: number, param?: string | null) {
  assert.equal(r.statusCode, status);
  const body = r.json() as { error: { param: string | null } };
  assertOpenAI('ErrorResponse', body);
  if (param !== undefined) assert.equal(body.error.param, param);
}

/** Nothing staged is left over, and nothing but the stored files' bytes is in files/. */
async function assertNoLeftovers() {
  assert.deepEqual(readdirSync(join(dataDir, 'tmp')), []);
  const listed = (await store.files.list({ limit: 10000, order: 'asc' })).data.map((f) => f.id).sort();
  assert.deepEqual(readdirSync(join(dataDir, 'files')).sort(), listed);
}

test('upload, describe, list, read back and delete a file; every object as OpenAI shapes it', async () => {
  const bytes = Buffer.from([0, 1, 2, 255, 10, 13, 0x7b]);
  const r = await upload(bytes, 'batch', 'data.bin');
  assert.equal(r.statusCode, 200, r.body);
  const file = r.json();
  assertOpenAI('OpenAIFile', file);
  assert.match(file.id, /^file-/);
  assert.equal(file.bytes, bytes.length);
  assert.equal(file.filename, 'data.bin');
  assert.equal(file.purpose, 'batch');
  const got = await app.inject({ method: 'GET', url: `/v1/files/${file.id}` });
  assertOpenAI('OpenAIFile', got.json());
  assert.deepEqual(got.json(), file);
  const content = await app.inject({ method: 'GET', url: `/v1/files/${file.id}/content` });
  assert.equal(content.statusCode, 200);
  assert.deepEqual(content.rawPayload, bytes);
  const list = await app.inject({ method: 'GET', url: '/v1/files' });
  assertOpenAI('ListFilesResponse', list.json());
  assert.ok(list.json().data.some((f: { id: string }) => f.id === file.id));
  const del = await app.inject({ method: 'DELETE', url: `/v1/files/${file.id}` });
  assertOpenAI('DeleteFileResponse', del.json());
  assert.deepEqual(del.json(), { id: file.id, object: 'file', deleted: true });
  assertError(await app.inject({ method: 'GET', url: `/v1/files/${file.id}` }), 404, 'file_id');
  assertError(await app.inject({ method: 'GET', url: `/v1/files/${file.id}/content` }), 404, 'file_id');
  assertError(await app.inject({ method: 'DELETE', url: `/v1/files/${file.id}` }), 404, 'file_id');
  await assertNoLeftovers();
});

test('a file over --max-file-bytes is refused with 413 while it streams; nothing is kept', async () => {
  const r = await upload(Buffer.alloc(MAX + 1, 0x61));
  assertError(r, 413, 'file');
  assert.ok((await upload(Buffer.alloc(MAX, 0x61))).statusCode === 200, 'exactly the limit is accepted');
  await assertNoLeftovers();
});

test('bad uploads: unknown purpose, missing file or purpose, a bad expiry, not multipart, malformed multipart', async () => {
  assertError(await upload('x', 'vision'), 400, 'purpose');
  assertError(await upload('x', 'fine-tune-results'), 400, 'purpose');
  assertError(await app.inject({ method: 'POST', url: '/v1/files', ...form([{ name: 'purpose', value: 'batch' }]) }), 400, 'file');
  assertError(await app.inject({ method: 'POST', url: '/v1/files', ...form([{ name: 'file', value: 'x', filename: 'a' }]) }), 400, 'purpose');
  assertError(await upload('x', 'batch', 'a', [{ name: 'expires_after[anchor]', value: 'created_at' }, { name: 'expires_after[seconds]', value: '10' }]), 400, 'expires_after.seconds');
  assertError(await app.inject({ method: 'POST', url: '/v1/files', payload: { purpose: 'batch' } }), 415);
  const truncated = form([{ name: 'file', value: 'abc', filename: 'a' }]);
  assertError(await app.inject({ method: 'POST', url: '/v1/files', headers: truncated.headers, payload: truncated.payload.subarray(0, 60) }), 400);
  assertError(await app.inject({ method: 'POST', url: '/v1/files', ...form([{ name: 'file', value: 'a', filename: 'a' }, { name: 'other', value: 'b', filename: 'b' }, { name: 'purpose', value: 'batch' }]) }), 400);
  await assertNoLeftovers();
});

test('listing: purpose filter, order, limit and the after cursor', async () => {
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) ids.push((await upload(`{"i":${i}}`, i % 2 ? 'evals' : 'user_data', `f${i}.jsonl`)).json().id);
  const page = async (q: string) => {
    const r = await app.inject({ method: 'GET', url: `/v1/files?${q}` });
    assert.equal(r.statusCode, 200, r.body);
    return r.json() as { data: Array<{ id: string; purpose: string }>; has_more: boolean; first_id: string; last_id: string };
  };
  const first = await page('purpose=user_data&limit=2');
  assert.deepEqual(first.data.map((f) => f.id), [ids[4], ids[2]], 'newest first');
  assert.equal(first.has_more, true);
  assert.equal(first.last_id, ids[2]);
  const second = await page(`purpose=user_data&limit=2&after=${first.last_id}`);
  assert.deepEqual(second.data.map((f) => f.id), [ids[0]]);
  assert.equal(second.has_more, false);
  assert.deepEqual((await page('purpose=evals&order=asc')).data.map((f) => f.id), [ids[1], ids[3]]);
  assertError(await app.inject({ method: 'GET', url: '/v1/files?limit=0' }), 400, 'limit');
  assertError(await app.inject({ method: 'GET', url: '/v1/files?limit=abc' }), 400);
  assertError(await app.inject({ method: 'GET', url: '/v1/files?after=file-nope' }), 400, 'after');
  const empty = await page('purpose=batch_output');
  assert.deepEqual(empty.data, []);
});

test('expires_after: the file says when it expires, and is gone once it has', async () => {
  const r = await upload('x', 'batch', 'e.jsonl', [{ name: 'expires_after[anchor]', value: 'created_at' }, { name: 'expires_after[seconds]', value: '3600' }]);
  const file = r.json();
  assertOpenAI('OpenAIFile', file);
  assert.equal(file.expires_at, file.created_at + 3600);
  const realNow = Date.now;
  Date.now = () => realNow() + 3601_000;
  try {
    assertError(await app.inject({ method: 'GET', url: `/v1/files/${file.id}` }), 404);
    assert.ok(!(await app.inject({ method: 'GET', url: '/v1/files' })).json().data.some((f: { id: string }) => f.id === file.id));
    assert.equal(await store.files.deleteExpired(), 1);
  } finally {
    Date.now = realNow;
  }
  assert.equal(existsSync(join(dataDir, 'files', file.id)), false);
});

test('what a crash leaves (a partial upload, bytes never recorded) is removed at the next open, and never listed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mmrec-crash-'));
  const first = (await Store.open(dir)).store;
  const staged = await first.files.stage((async function* () {
    yield Buffer.from('complete');
  })(), 100);
  const kept = await first.files.create(await first.files.stage((async function* () {
    yield Buffer.from('kept');
  })(), 100), { filename: 'k', purpose: 'batch' });
  await first.close();
  // As a SIGKILL would leave them: a staged upload never recorded, bytes moved into files/ but no row.
  writeFileSync(join(dir, 'files', 'file-orphan'), 'orphan');
  assert.ok(existsSync(staged.path));
  const { store: second, report } = await Store.open(dir);
  try {
    assert.equal(report.orphanFiles, 1);
    assert.deepEqual(readdirSync(join(dir, 'tmp')), []);
    assert.deepEqual(readdirSync(join(dir, 'files')), [kept.id]);
    assert.deepEqual((await second.files.list({ limit: 10, order: 'desc' })).data.map((f) => f.id), [kept.id]);
  } finally {
    await second.close();
  }
});
