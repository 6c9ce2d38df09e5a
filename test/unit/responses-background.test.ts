/** The background worker's state machine on a real store, with a scripted run: bounded, cancellable, and never leaving a response in progress after a restart. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BackgroundResponses } from '../../src/jobs/responses/worker.ts';
import { Store } from '../../src/store/store.ts';
import type { NewResponse } from '../../src/store/responses.ts';

const row = (id: string, status: NewResponse['status']): NewResponse => ({
  id,
  completedAt: null,
  model: 'm',
  status,
  background: true,
  previousResponseId: null,
  conversationId: null,
  conversationSeq: null,
  request: {},
  usage: null,
  error: null,
  incompleteDetails: null,
});

const until = async (ok: () => boolean | Promise<boolean>) => {
  for (let i = 0; i < 500 && !(await ok()); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(await ok(), 'the condition came true');
};

test('at start, a response left in progress is queued again and rerun, or failed after its attempts; the queue runs at most maxInFlight at once', async () => {
  const { store } = await Store.open(mkdtempSync(join(tmpdir(), 'mmrec-bg-')));
  try {
    await store.responses.insert(row('resp_again', 'in_progress'), []);
    await store.responses.transition('resp_again', ['in_progress'], 'in_progress', { attempts: 1 });
    await store.responses.insert(row('resp_spent', 'in_progress'), []);
    await store.responses.transition('resp_spent', ['in_progress'], 'in_progress', { attempts: 2 });
    await store.responses.insert(row('resp_q1', 'queued'), []);
    await store.responses.insert(row('resp_q2', 'queued'), []);
    let concurrent = 0;
    let most = 0;
    const ran: string[] = [];
    const worker = new BackgroundResponses({
      store,
      maxInFlight: 1,
      run: async (id) => {
        ran.push(id);
        most = Math.max(most, ++concurrent);
        assert.equal((await store.responses.get(id))?.status, 'in_progress', 'moved to in_progress before it runs');
        await new Promise((r) => setTimeout(r, 20));
        await store.responses.finish(id, ['in_progress'], { status: 'completed', completedAt: 1 }, []);
        concurrent--;
      },
    });
    await worker.start();
    await until(() => ran.length === 3 && concurrent === 0);
    assert.deepEqual(ran, ['resp_again', 'resp_q1', 'resp_q2'], 'oldest first');
    assert.equal(most, 1);
    assert.equal((await store.responses.get('resp_again'))?.attempts, 2);
    const spent = await store.responses.get('resp_spent');
    assert.equal(spent?.status, 'failed');
    assert.match(spent!.error!.message, /stopped/);
    for (const id of ['resp_again', 'resp_q1', 'resp_q2']) assert.equal((await store.responses.get(id))?.status, 'completed');
    assert.equal(await worker.inFlight(), 0);
    await worker.close();
  } finally {
    await store.close();
  }
});

test('cancel aborts a running response with reason "cancel"; close aborts with "shutdown" and leaves it in progress', async () => {
  const { store } = await Store.open(mkdtempSync(join(tmpdir(), 'mmrec-bg-')));
  try {
    const reasons: unknown[] = [];
    const worker = new BackgroundResponses({
      store,
      maxInFlight: 4,
      run: (id, signal) =>
        new Promise<void>((resolve) =>
          signal.addEventListener('abort', async () => {
            reasons.push(signal.reason);
            if (signal.reason === 'cancel') await store.responses.finish(id, ['in_progress'], { status: 'cancelled' }, []);
            resolve();
          }),
        ),
    });
    await worker.start();
    await store.responses.insert(row('resp_a', 'queued'), []);
    await store.responses.insert(row('resp_b', 'queued'), []);
    worker.notify();
    await until(async () => (await store.responses.withStatus(['in_progress'])).length === 2);
    assert.equal(await worker.inFlight(), 2);
    assert.equal(await worker.cancel('resp_a'), true);
    assert.equal((await store.responses.get('resp_a'))?.status, 'cancelled');
    assert.equal(await worker.cancel('resp_a'), false, 'no longer running');
    await worker.close();
    assert.deepEqual(reasons, ['cancel', 'shutdown']);
    assert.equal((await store.responses.get('resp_b'))?.status, 'in_progress', 'left for the next start to rerun');
    worker.notify(); // closed: takes nothing
    await store.responses.insert(row('resp_c', 'queued'), []);
    worker.notify();
    await new Promise((r) => setTimeout(r, 30));
    assert.equal((await store.responses.get('resp_c'))?.status, 'queued');
  } finally {
    await store.close();
  }
});
