/** The store's responses and conversations: items, states as BLOBs, conditional transitions, retention, and the conversation state bookkeeping. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '../../src/store/store.ts';
import { ConversationFullError } from '../../src/store/conversations.ts';
import type { NewResponse, StoredState } from '../../src/store/responses.ts';

async function open(maxConversationItems?: number): Promise<Store> {
  return (await Store.open(mkdtempSync(join(tmpdir(), 'mmrec-store-')), { maxConversationItems })).store;
}

const item = (id: string, text = 'hi') => ({ type: 'message', id, role: 'user', content: [{ type: 'input_text', text }], status: 'completed' });
const call = (id: string, callId: string) => ({ type: 'function_call', id, call_id: callId, name: 'f', arguments: '{}', status: 'completed' });

function response(id: string, over: Partial<NewResponse> = {}): NewResponse {
  return { id, completedAt: null, model: 'm', status: 'completed', background: false, previousResponseId: null, conversationId: null, conversationSeq: null, request: { a: 1 }, usage: null, error: null, incompleteDetails: null, ...over };
}

const state = (fill: number): StoredState => ({ modelKey: 'm|abc', contextKey: 'ctx', layout: 'float32[2]', tokens: 12, state: new Uint8Array(Float32Array.from([fill, fill]).buffer) });

test('a response with its items and its state, read back; a page of input items; find an item by id', async () => {
  const store = await open();
  try {
    await store.responses.insert(response('resp_1'), [item('msg_a'), item('msg_b'), call('fc_c', 'call_1')], [item('msg_out', 'yo')], state(1.5));
    const r = await store.responses.get('resp_1');
    assert.equal(r?.status, 'completed');
    assert.deepEqual(r?.request, { a: 1 });
    assert.ok(r!.bytes > 8, 'counts its items and state');
    assert.deepEqual((await store.responses.items('resp_1', 'output')).map((i) => i.id), ['msg_out']);
    const s = await store.responses.state('resp_1');
    assert.deepEqual([...new Float32Array(Uint8Array.from(s!.state).buffer)], [1.5, 1.5], 'the BLOB comes back byte for byte');
    assert.equal(s!.tokens, 12);
    const desc = await store.responses.inputPage('resp_1', { limit: 2, order: 'desc' });
    assert.deepEqual(desc.data.map((i) => i.id), ['fc_c', 'msg_b']);
    assert.equal(desc.hasMore, true);
    const next = await store.responses.inputPage('resp_1', { limit: 2, order: 'desc', after: 'msg_b' });
    assert.deepEqual(next.data.map((i) => i.id), ['msg_a']);
    assert.equal(next.hasMore, false);
    await assert.rejects(store.responses.inputPage('resp_1', { limit: 2, order: 'asc', after: 'nope' }));
    assert.equal((await store.responses.findItem('msg_out'))?.responseId, 'resp_1');
    assert.equal(await store.responses.findItem('zzz'), undefined);
  } finally {
    await store.close();
  }
});

test('finish and transition take effect only from the statuses named', async () => {
  const store = await open();
  try {
    await store.responses.insert(response('resp_bg', { status: 'queued', background: true }), [item('msg_1')]);
    assert.equal(await store.responses.transition('resp_bg', ['queued'], 'in_progress', { attempts: 1 }), true);
    assert.equal(await store.responses.transition('resp_bg', ['queued'], 'cancelled'), false);
    assert.equal(await store.responses.finish('resp_bg', ['in_progress'], { status: 'completed', completedAt: 5, usage: { x: 1 } }, [item('msg_2')], state(2)), true);
    assert.equal(await store.responses.finish('resp_bg', ['in_progress'], { status: 'failed' }, []), false, 'a second finish loses');
    const r = await store.responses.get('resp_bg');
    assert.equal(r?.status, 'completed');
    assert.equal(r?.attempts, 1);
    assert.deepEqual(r?.usage, { x: 1 });
    assert.ok(await store.responses.state('resp_bg'));
    assert.equal(await store.responses.delete('resp_bg'), true);
    assert.equal(await store.responses.get('resp_bg'), undefined);
    assert.equal(await store.responses.state('resp_bg'), undefined, 'deleting a response deletes its state');
    assert.deepEqual(await store.responses.items('resp_bg', 'input'), []);
    assert.equal(await store.responses.delete('resp_bg'), false);
  } finally {
    await store.close();
  }
});

test('retention: older than the age limit go, then the oldest until the rest fit the byte budget; unfinished ones stay', async () => {
  const store = await open();
  try {
    const now = 1_000_000;
    await store.responses.insert(response('resp_old', { createdAt: now - 100 }), [item('a')], [], state(1));
    await store.responses.insert(response('resp_running', { createdAt: now - 100, status: 'in_progress' }), [item('b')]);
    for (let i = 0; i < 5; i++) await store.responses.insert(response(`resp_${i}`, { createdAt: now }), [item(`m${i}`)], [], state(i));
    const one = (await store.responses.get('resp_0'))!.bytes;
    const r = await store.responses.evict({ maxBytes: Infinity, maxAgeSeconds: 50 }, now);
    assert.equal(r.deleted, 1);
    assert.equal(await store.responses.get('resp_old'), undefined);
    assert.ok(await store.responses.get('resp_running'), 'an unfinished response is not evicted');
    const running = (await store.responses.get('resp_running'))!.bytes;
    const r2 = await store.responses.evict({ maxBytes: running + 2 * one, maxAgeSeconds: 0 }, now);
    assert.equal(r2.deleted, 3);
    assert.deepEqual(
      await Promise.all(['resp_0', 'resp_1', 'resp_2', 'resp_3', 'resp_4'].map(async (id) => (await store.responses.get(id)) !== undefined)),
      [false, false, false, true, true],
      'the oldest went first',
    );
    assert.ok((await store.responses.totals()).bytes <= running + 2 * one);
  } finally {
    await store.close();
  }
});

test('conversations: items, the state of the response that appended last, cleared when it would not cover the items', async () => {
  const store = await open(6);
  try {
    const c = await store.conversations.create({ topic: 'x' }, [item('i1'), item('i2')]);
    const seen = await store.conversations.lastSeq(c.id);
    assert.ok(seen > 0);
    assert.equal(await store.conversations.appendResponse(c.id, seen, 'resp_a', [item('i3'), call('i4', 'call_9')], true), true);
    let conv = (await store.conversations.get(c.id))!;
    assert.equal(conv.stateResponseId, 'resp_a');
    assert.equal(conv.stateSeq, await store.conversations.lastSeq(c.id));
    assert.equal(await store.conversations.hasCall(c.id, 'call_9'), true);
    assert.equal(await store.conversations.hasCall(c.id, 'call_x'), false);
    // Items added through the API after the state: the state still covers what it covered.
    await store.conversations.addItems(c.id, [item('i5')]);
    conv = (await store.conversations.get(c.id))!;
    assert.equal(conv.stateResponseId, 'resp_a');
    assert.deepEqual((await store.conversations.itemsBetween(c.id, conv.stateSeq!, Infinity, 100)).map((r) => r.item.id), ['i5']);
    // A response that read the conversation before i5 was added does not get to record its state.
    await store.conversations.appendResponse(c.id, conv.stateSeq!, 'resp_b', [item('i6')], true);
    conv = (await store.conversations.get(c.id))!;
    assert.equal(conv.stateResponseId, null);
    assert.deepEqual((await store.conversations.page(c.id, { limit: 10, order: 'asc' })).data.map((i) => i.id), ['i1', 'i2', 'i3', 'i4', 'i5', 'i6']);
    await assert.rejects(store.conversations.addItems(c.id, [item('i7')]), ConversationFullError);
    // Deleting an item the state covers clears the state.
    const d = await store.conversations.create(null, [item('j1')]);
    await store.conversations.appendResponse(d.id, await store.conversations.lastSeq(d.id), 'resp_c', [item('j2')], true);
    assert.equal((await store.conversations.get(d.id))!.stateResponseId, 'resp_c');
    assert.equal(await store.conversations.deleteItem(d.id, 'j1'), true);
    assert.equal((await store.conversations.get(d.id))!.stateResponseId, null);
    assert.equal(await store.conversations.deleteItem(d.id, 'j1'), false);
    assert.equal(await store.conversations.delete(d.id), true);
    assert.equal(await store.conversations.get(d.id), undefined);
    assert.equal(await store.conversations.getItem(d.id, 'j2'), undefined);
  } finally {
    await store.close();
  }
});
