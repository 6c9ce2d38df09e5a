/**
 * text_similarity's cosine (evals/cosine.ts) on the real model, embedded as
 * POST /v1/embeddings embeds (EmbedBatcher over EmbeddingServing): identical
 * texts score 1, the score is symmetric, a paraphrase scores above an
 * unrelated sentence (pairs measured on mm-rec-tiny, whose embeddings are
 * weak: README, Embeddings), texts in flight together share one engine call,
 * and the edges (empty texts, bounds, aborts, a model that cannot embed).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { parseConfig, type ServerConfig } from '../../src/config.ts';
import { cosineSimilarity, unitCosine } from '../../src/evals/cosine.ts';
import { gradeItem, parseCriteria, type GradingDeps } from '../../src/evals/graders.ts';
import { EmbedBatcher } from '../../src/evals/serving-deps.ts';
import { MetricInputTooLargeError } from '../../src/metrics/index.ts';
import { ApiError } from '../../src/protocol/errors.ts';
import { EmbeddingServing } from '../../src/serving/embeddings.ts';
import { loadServedModel } from '../../src/serving/model-loading.ts';
import { ModelRegistry, type ServedModel } from '../../src/serving/registry.ts';
import { requireModelDir } from './engine-helpers.ts';
import { FakeEngine, fakeModel } from './http-fake-engine.ts';

let model: ServedModel;
let registry: ModelRegistry;
let embedder: EmbedBatcher;
const embedCalls: number[] = [];
/** An engine whose embed calls never end by themselves: the signal each call got. */
const hangingCalls: AbortSignal[] = [];
const MAX = 10_000;
const live = () => new AbortController().signal;

before(async () => {
  const dir = resolve(requireModelDir());
  const { config } = parseConfig(['--model', dir], {}) as { config: ServerConfig };
  model = await loadServedModel(config, 'tiny', dir, { stateCache: { maxBytes: 0 } });
  const embed = model.engine.embed!;
  model.engine.embed = (requests, signal) => {
    embedCalls.push(requests.length);
    return embed(requests, signal);
  };
  const hanging = new FakeEngine({ id: 'hanging' });
  hanging.info.stateSizes = [4];
  Object.assign(hanging, {
    embed: (_requests: unknown, signal: AbortSignal) => {
      hangingCalls.push(signal);
      return new Promise(() => {});
    },
  });
  registry = new ModelRegistry(['tiny', 'no-embed', 'hanging']);
  registry.add(model);
  registry.add({ ...fakeModel(), id: 'no-embed' });
  registry.add(fakeModel(hanging));
  registry.markReady();
  embedder = new EmbedBatcher(new EmbeddingServing({ registry, limits: { maxInputs: 64, maxInputTokens: 100, maxTokens: 10_000 } }), 'tiny');
});

after(async () => {
  await model.engine.close();
});

const cos = async (a: string, b: string) => (await cosineSimilarity(embedder, a, b, live(), MAX)).score;

test('identical texts score 1 (unit vectors: the dot product of a vector with itself)', async () => {
  for (const s of ['The capital of France is Paris.', 'a', 'How do I reset my password? I forgot my login credentials, what should I do?']) {
    const score = await cos(s, s);
    assert.ok(Math.abs(score - 1) < 1e-6, `${s}: ${score}`);
  }
});

test('the score is symmetric and within [-1, 1]', async () => {
  const pairs = [
    ['The cat sat on the mat.', 'A cat was sitting on the mat.'],
    ['Set a timer for five minutes.', 'What is the capital of France?'],
    ['I love eating pizza.', 'Pizza is my favourite food.'],
  ];
  for (const [a, b] of pairs) {
    const [ab, ba] = [await cos(a, b), await cos(b, a)];
    assert.ok(Math.abs(ab - ba) < 1e-6, `${a} / ${b}: ${ab} vs ${ba}`);
    assert.ok(ab >= -1 && ab <= 1);
  }
});

test('on mm-rec-tiny, these paraphrases score above these unrelated sentences', async () => {
  // Measured: 0.949 vs 0.406, and 0.780 vs 0.091. Its embeddings carry mostly the words ("The capital of Japan is
  // Tokyo." / "The capital of France is Paris." scores 0.821), so these are hand-picked pairs, not a property.
  const weather = 'What is the weather in Paris?';
  assert.ok((await cos(weather, 'How is the weather in Paris today?')) > (await cos(weather, 'Please book a table for two.')) + 0.3);
  const cat = 'The cat sat on the mat.';
  assert.ok((await cos(cat, 'A cat was sitting on the mat.')) > (await cos(cat, 'How do I reset my password?')) + 0.3);
});

test('texts graded at once reach the engine in one embed call, with the framing counted as /v1/embeddings counts it', async () => {
  embedCalls.length = 0;
  const texts = ['one', 'two words', 'three more words', 'and a fourth text'];
  const scores = await Promise.all(texts.map((t, i) => cosineSimilarity(embedder, t, texts[(i + 1) % texts.length], live(), MAX)));
  assert.deepEqual(embedCalls, [8]);
  const tokens = (t: string) => model.tokenizer.encodeText(t).length + 4; // <|user|>, "\n" … "\n", <|endoftext|>
  scores.forEach((s, i) => assert.equal(s.tokens, tokens(texts[i]) + tokens(texts[(i + 1) % texts.length])));
});

test('empty texts are not embedded: two score 1, one scores 0, as fuzzy_match scores them', async () => {
  embedCalls.length = 0;
  assert.deepEqual(await cosineSimilarity(embedder, '', '', live(), MAX), { score: 1, tokens: 0 });
  assert.deepEqual(await cosineSimilarity(embedder, '', 'text', live(), MAX), { score: 0, tokens: 0 });
  assert.deepEqual(await cosineSimilarity(embedder, 'text', '', live(), MAX), { score: 0, tokens: 0 });
  assert.deepEqual(embedCalls, []);
});

test("bounds: text_similarity's characters per text, then the embedding path's tokens per input", async () => {
  await assert.rejects(cosineSimilarity(embedder, 'x'.repeat(11), 'a', live(), 10), (e) => e instanceof MetricInputTooLargeError && e.param === 'input');
  await assert.rejects(cosineSimilarity(embedder, 'a', 'x'.repeat(11), live(), 10), (e) => e instanceof MetricInputTooLargeError && e.param === 'reference');
  await assert.rejects(cosineSimilarity(embedder, 'word '.repeat(200), 'a', live(), MAX), (e) => e instanceof ApiError && e.code === 'context_length_exceeded');
});

test('an aborted item stops waiting for its embeddings; the engine call stops once no item in it is waiting', async () => {
  const done = new AbortController();
  done.abort(new Error('stopped'));
  await assert.rejects(cosineSimilarity(embedder, 'a', 'b', done.signal, MAX), /stopped/);

  const hanging = new EmbedBatcher(new EmbeddingServing({ registry }), 'hanging');
  const [a, b] = [new AbortController(), new AbortController()];
  const pa = cosineSimilarity(hanging, 'a text', 'another text', a.signal, MAX);
  const pb = cosineSimilarity(hanging, 'a third', 'a fourth', b.signal, MAX);
  while (hangingCalls.length === 0) await new Promise((r) => setImmediate(r));
  assert.equal(hangingCalls.length, 1, 'the four texts in one call');
  a.abort(new Error('a stopped'));
  await assert.rejects(pa, /a stopped/);
  assert.equal(hangingCalls[0].aborted, false, 'b still waits for the call');
  b.abort(new Error('b stopped'));
  await assert.rejects(pb, /b stopped/);
  assert.equal(hangingCalls[0].aborted, true);
});

test('a model whose engine does not embed is refused as /v1/embeddings refuses it', async () => {
  const fake = new EmbedBatcher(new EmbeddingServing({ registry }), 'no-embed');
  await assert.rejects(cosineSimilarity(fake, 'a', 'b', live(), MAX), (e) => e instanceof ApiError && e.status === 400 && e.code === 'model_not_supported');
});

test('unitCosine: the dot product, float overshoot clamped to [-1, 1], nothing else rescaled', () => {
  assert.equal(unitCosine(new Float32Array([0.6, 0.8]), new Float32Array([0.8, 0.6])), Math.fround(0.6) * Math.fround(0.8) * 2);
  assert.equal(unitCosine(new Float32Array([1.0000001]), new Float32Array([1.0000001])), 1);
  assert.equal(unitCosine(new Float32Array([1.0000001]), new Float32Array([-1.0000001])), -1);
  assert.equal(unitCosine(new Float32Array([1, 0]), new Float32Array([0, -1])), 0);
  assert.throws(() => unitCosine(new Float32Array(2), new Float32Array(3)), RangeError);
});

test('the grader: the result names the model that embedded; without an embedder the item is errored, not the run', async () => {
  const [c] = parseCriteria(
    [{ type: 'text_similarity', name: 'cos', input: '{{item.a}}', reference: '{{item.b}}', evaluation_metric: 'cosine', pass_threshold: 0.9 }],
    {},
    { includeSample: false, maxCriteria: 1, embeddings: { model: 'tiny' } },
  );
  const deps = { maxRenderChars: 1000, maxMetricChars: 1000, graderMaxTokens: 16, embedder } as unknown as GradingDeps;
  const ctx = { item: { a: 'The cat sat on the mat.', b: 'The cat sat on the mat.' } };
  const g = await gradeItem(c, ctx, deps, live());
  assert.equal(g.errored, false);
  assert.ok(g.result.passed && Math.abs(g.result.score - 1) < 1e-6);
  assert.equal((g.result.sample as { model: string }).model, 'tiny');
  assert.deepEqual(g.calls.map((call) => [call.model, call.completionTokens]), [['tiny', 0]]);
  const none = await gradeItem(c, ctx, { ...deps, embedder: undefined }, live());
  assert.equal(none.errored, true);
  assert.match(none.result.error!, /cosine.*no model that embeds/);
  assert.throws(() => parseCriteria([{ ...c, id: undefined }], {}, { includeSample: false, maxCriteria: 1 }), (e) => e instanceof ApiError && e.param === 'testing_criteria[0].evaluation_metric' && e.code === 'unsupported_metric');
});
