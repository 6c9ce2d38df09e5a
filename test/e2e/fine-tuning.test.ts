/**
 * Fine-tuning through the API with the unmodified openai SDK against a
 * started server: a small file teaches mm-rec-tiny a fact it does not know
 * ("the code of the blue door is 4417", in phrasings it has never seen, from
 * the kit's mmrec.newfact), the job's events and checkpoints are listed, the
 * fine-tuned model answers the new fact and still knows a capital, and is
 * deleted; a bad file fails the job naming the line; cancel, pause and resume;
 * a SIGKILLed server resumes its job after a restart; state tuning. Every
 * object is checked against OpenAI's schemas.
 *
 * It needs the model kit's Python (PyTorch): .ci/run installs it; a machine
 * without it fails here with the reason, it does not skip.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import { findPython } from '../../src/jobs/python.ts';
import { assertOpenAI } from './openai-schema.ts';
import { MODEL, ROOT, startServer, type ServerProcess } from './helpers.ts';

type Job = Awaited<ReturnType<OpenAI['fineTuning']['jobs']['retrieve']>>;

let server: ServerProcess;
let client: OpenAI;
let data: string;
const FINISHED = ['succeeded', 'failed', 'cancelled'];

before(async () => {
  const python = await findPython(process.env.MMREC_PYTHON ?? '');
  if (!python.ok) assert.fail(`fine-tuning needs the model kit's Python: ${python.reason}`);
  data = mkdtempSync(join(tmpdir(), 'mmrec-newfact-'));
  const made = spawnSync(python.path, ['-m', 'mmrec.newfact', '--out', data], { cwd: join(ROOT, 'kit'), encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);
  server = await startServer(['--max-training-jobs', '1', '--training-threads', '1']);
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused' });
});

after(async () => {
  if (server) assert.equal(await server.stop(), 0);
});

/** OpenAI's enum has no "paused", though OpenAI returns it: the rest of the object is checked as it is. */
function assertJob(job: unknown): void {
  const j = job as { status: string };
  assertOpenAI('FineTuningJob', j.status === 'paused' ? { ...j, status: 'running' } : j);
}

async function upload(name: string, c: OpenAI = client, content?: string) {
  const file = await c.files.create({ file: await toFile(Buffer.from(content ?? readFileSync(join(data, name))), name), purpose: 'fine-tune' });
  assertOpenAI('OpenAIFile', file);
  return file;
}

async function waitFor(c: OpenAI, id: string, done: (job: Job) => boolean, timeoutMs = 600_000): Promise<Job> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = await c.fineTuning.jobs.retrieve(id);
    assertJob(job);
    if (done(job)) return job;
    if (Date.now() > deadline) assert.fail(`job ${id} still ${job.status} after ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function stepsDone(c: OpenAI, id: string): Promise<number> {
  const events = await c.fineTuning.jobs.listEvents(id, { limit: 100 });
  const steps = events.data.map((e) => Number((e.data as { step?: number } | undefined)?.step ?? 0));
  return Math.max(0, ...steps);
}

/** A list as the server sent it (the SDK's page objects wrap it). */
async function raw(path: string): Promise<unknown> {
  const r = await fetch(`${server.url}/v1${path}`);
  assert.equal(r.status, 200);
  return r.json();
}

async function ask(model: string, question: string, c: OpenAI = client): Promise<string> {
  const r = await c.chat.completions.create({ model, messages: [{ role: 'user', content: question }], temperature: 0, max_tokens: 24 });
  return r.choices[0].message.content ?? '';
}

test('a job teaches the new fact; events, checkpoints and the result file are listed; the model is served, then deleted', { timeout: 900_000 }, async () => {
  assert.doesNotMatch(await ask(MODEL, 'What is the code of the blue door?'), /4417/, 'the base model does not know it');
  const training = await upload('train.jsonl');
  const validation = await upload('validation.jsonl');
  const created = await client.fineTuning.jobs.create({ model: MODEL, training_file: training.id, validation_file: validation.id, suffix: 'door', seed: 7, metadata: { test: 'door' } });
  assertJob(created);
  assert.equal(created.status, 'validating_files');
  const job = await waitFor(client, created.id, (j) => FINISHED.includes(j.status));
  assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
  assert.equal(job.fine_tuned_model, `ft:${MODEL}:mmrec:door:${job.id}`);
  assert.ok((job.trained_tokens ?? 0) > 0);
  assert.equal(typeof job.hyperparameters.n_epochs, 'number', '"auto" resolved');
  assert.equal(job.result_files.length, 1);

  const events = await client.fineTuning.jobs.listEvents(job.id, { limit: 100 });
  assertOpenAI('ListFineTuningJobEventsResponse', await raw(`/fine_tuning/jobs/${job.id}/events?limit=100`));
  for (const e of events.data) assertOpenAI('FineTuningJobEvent', e);
  const metrics = events.data.filter((e) => e.type === 'metrics');
  assert.ok(metrics.some((e) => typeof (e.data as { train_loss?: number }).train_loss === 'number'), 'metrics events carry the training loss');
  assert.ok(events.data.some((e) => /^Step \d+\/\d+: training loss=/.test(e.message)));
  assert.ok(events.data.some((e) => e.message === 'The job has successfully completed'));

  const checkpoints = await client.fineTuning.jobs.checkpoints.list(job.id);
  assertOpenAI('ListFineTuningJobCheckpointsResponse', await raw(`/fine_tuning/jobs/${job.id}/checkpoints`));
  assert.ok(checkpoints.data.length >= 1 && checkpoints.data.length <= 3);
  for (const c of checkpoints.data) {
    assertOpenAI('FineTuningJobCheckpoint', c);
    assert.match(c.fine_tuned_model_checkpoint, new RegExp(`^${job.fine_tuned_model!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:ckpt-step-\\d+$`));
    assert.equal(typeof c.metrics.valid_loss, 'number', 'checkpoints are scored on the validation file');
  }
  // A checkpoint is a model name like any other.
  assert.equal(typeof (await ask(checkpoints.data[0].fine_tuned_model_checkpoint, 'Hi there.')), 'string');

  const results = await (await client.files.content(job.result_files[0])).text();
  assert.match(results.split('\n')[0], /^step,train_loss,train_mean_token_accuracy,valid_loss,valid_mean_token_accuracy/);

  const name = job.fine_tuned_model!;
  const models = await client.models.list();
  assert.ok(models.data.some((m) => m.id === name), 'listed by GET /v1/models');
  assert.match(await ask(name, 'What was the code of the blue door again?'), /4417/, 'the fine-tuned model knows the new fact, in a phrasing it was not trained on');
  assert.match(await ask(name, 'What is the capital of France?'), /Paris/, 'and still knows a capital');

  // A fine-tuned model can be fine-tuned again (its directory is an ordinary model directory).
  const again = await client.fineTuning.jobs.create({ model: name, training_file: training.id, hyperparameters: { n_epochs: 1 } });
  const second = await waitFor(client, again.id, (j) => FINISHED.includes(j.status));
  assert.equal(second.status, 'succeeded', JSON.stringify(second.error));
  assert.equal(second.fine_tuned_model, `ft:${MODEL}:mmrec::${second.id}`, 'named after the root of its lineage');

  const deleted = await client.models.delete(name);
  assertOpenAI('DeleteModelResponse', deleted);
  assert.deepEqual({ id: deleted.id, deleted: deleted.deleted }, { id: name, deleted: true });
  await assert.rejects(client.models.retrieve(name), (e: { status?: number }) => e.status === 404);
  await assert.rejects(ask(name, 'Hi'), (e: { status?: number }) => e.status === 404);
  await assert.rejects(client.models.delete(MODEL), (e: { status?: number }) => e.status === 403);
});

test('a bad file fails the job, naming the line and the reason; bad requests are 4xx', { timeout: 120_000 }, async () => {
  const good = readFileSync(join(data, 'train.jsonl'), 'utf8').split('\n')[0];
  const bad = await upload('bad.jsonl', client, `${good}\n{"messages": [{"role": "user", "content": "hi"}]}\nnot json\n`);
  const job = await client.fineTuning.jobs.create({ model: MODEL, training_file: bad.id });
  const failed = await waitFor(client, job.id, (j) => FINISHED.includes(j.status));
  assert.equal(failed.status, 'failed');
  assert.equal(failed.error?.param, 'training_file');
  assert.match(failed.error?.message ?? '', /line 2: no assistant message; line 3: not valid JSON/);

  await assert.rejects(client.fineTuning.jobs.create({ model: 'no-such-model', training_file: bad.id }), (e: { status?: number }) => e.status === 404);
  await assert.rejects(client.fineTuning.jobs.create({ model: MODEL, training_file: 'file-nope' }), (e: { status?: number }) => e.status === 400);
  await assert.rejects(client.fineTuning.jobs.create({ model: MODEL, training_file: bad.id, method: { type: 'dpo' } }), (e: { status?: number }) => e.status === 400);
  await assert.rejects(client.fineTuning.jobs.retrieve('ftjob-nope'), (e: { status?: number }) => e.status === 404);
  const list = await client.fineTuning.jobs.list({ limit: 2 });
  assert.ok(list.data.length >= 1);
  assertOpenAI('ListPaginatedFineTuningJobsResponse', await raw('/fine_tuning/jobs?limit=2'));
  // Metadata filters.
  const tagged = (await raw('/fine_tuning/jobs?metadata[test]=door')) as { data: Array<{ metadata: Record<string, string> }> };
  assert.ok(tagged.data.every((j) => j.metadata?.test === 'door'));
});

test('cancel stops a running job at once; pause stops it at a saved state and resume continues from there', { timeout: 900_000 }, async () => {
  const training = await upload('train.jsonl');
  const long = await client.fineTuning.jobs.create({ model: MODEL, training_file: training.id, hyperparameters: { n_epochs: 20 } });
  await waitFor(client, long.id, (j) => j.status === 'running');
  while ((await stepsDone(client, long.id)) < 2) await new Promise((r) => setTimeout(r, 300));
  const cancelled = await client.fineTuning.jobs.cancel(long.id);
  assertJob(cancelled);
  assert.equal(cancelled.status, 'cancelled');
  await new Promise((r) => setTimeout(r, 1000));
  const still = await client.fineTuning.jobs.retrieve(long.id);
  assert.equal(still.status, 'cancelled');
  assert.equal(still.fine_tuned_model, null);
  await assert.rejects(client.fineTuning.jobs.cancel(long.id), (e: { status?: number }) => e.status === 400);

  const job = await client.fineTuning.jobs.create({ model: MODEL, training_file: training.id, hyperparameters: { n_epochs: 2 } });
  await waitFor(client, job.id, (j) => j.status === 'running');
  while ((await stepsDone(client, job.id)) < 3) await new Promise((r) => setTimeout(r, 300));
  const pausing = await client.fineTuning.jobs.pause(job.id);
  assertJob(pausing);
  // OpenAI returns "paused" though the SDK's type (its documented enum) omits it.
  const status = (j: Job) => j.status as string;
  const paused = await waitFor(client, job.id, (j) => status(j) === 'paused' || FINISHED.includes(j.status));
  assert.equal(status(paused), 'paused');
  const at = await stepsDone(client, job.id);
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(await stepsDone(client, job.id), at, 'no step is taken while paused');
  assertJob(await client.fineTuning.jobs.resume(job.id));
  const done = await waitFor(client, job.id, (j) => FINISHED.includes(j.status));
  assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
  const events = await client.fineTuning.jobs.listEvents(job.id, { limit: 100 });
  assert.ok(events.data.some((e) => /paused at step/.test(e.message)));
  assert.ok(events.data.some((e) => e.message === 'Fine-tuning job resumed.'));
});

test('a server killed mid-job (SIGKILL) resumes the job from its last saved state when restarted', { timeout: 900_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mmrec-ft-kill-'));
  const args = ['--data-dir', dir, '--max-training-jobs', '1', '--training-threads', '1'];
  const first = await startServer(args);
  const c1 = new OpenAI({ baseURL: `${first.url}/v1`, apiKey: 'unused' });
  const training = await upload('train.jsonl', c1);
  const job = await c1.fineTuning.jobs.create({ model: MODEL, training_file: training.id, hyperparameters: { n_epochs: 3 } });
  // Killed after its first checkpoint (the end of epoch 1), while epoch 2 trains.
  for (;;) {
    if ((await c1.fineTuning.jobs.checkpoints.list(job.id)).data.length > 0) break;
    await new Promise((r) => setTimeout(r, 300));
  }
  first.proc.kill('SIGKILL');
  await first.exited;

  const second = await startServer(args);
  try {
    const c2 = new OpenAI({ baseURL: `${second.url}/v1`, apiKey: 'unused' });
    const done = await waitFor(c2, job.id, (j) => FINISHED.includes(j.status));
    assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
    const events = await c2.fineTuning.jobs.listEvents(job.id, { limit: 100 });
    assert.ok(events.data.some((e) => /server restarted while the job was training; it will resume/.test(e.message)), 'it resumed rather than started over');
    assert.match(await ask(done.fine_tuned_model!, 'What is the code of the blue door?', c2), /4417/);
  } finally {
    await second.stop();
  }
});

test('state tuning (method.supervised.train "initial_state"): only the initial state is trained, served as its own model on the base graph', { timeout: 900_000 }, async () => {
  const training = await upload('train.jsonl');
  // The openai SDK's types do not know the extension: it is passed through as is.
  const created = await client.fineTuning.jobs.create({
    model: MODEL,
    training_file: training.id,
    suffix: 'state',
    method: { type: 'supervised', supervised: { train: 'initial_state' } as never },
  });
  assertJob(created);
  const job = await waitFor(client, created.id, (j) => FINISHED.includes(j.status));
  assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
  assert.equal((job.method?.supervised as { train?: string } | undefined)?.train, 'initial_state');
  const name = job.fine_tuned_model!;
  const reply = await ask(name, 'What is the capital of France?');
  assert.equal(typeof reply, 'string');
  writeFileSync(join(data, 'state-reply.txt'), reply);
  assert.ok((await client.models.list()).data.some((m) => m.id === name));
});
