/**
 * Teacher-forced scoring and initial states on the real model: scores equal a
 * direct computation over one whole-sequence call, whatever the batching and
 * chunking; a state-tuned model's initial state changes what it generates and
 * its cached states never serve another initial state.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadEngine, type MMRecEngine } from '../../src/engine/engine.ts';
import { OnnxModel } from '../../src/engine/onnx-model.ts';
import { scoreSequences } from '../../src/engine/scoring.ts';
import { emptyState, type RecurrentState } from '../../src/engine/state.ts';
import { ChatTokenizer } from '../../src/chat/tokenizer.ts';
import { ChatTemplate } from '../../src/chat/template.ts';
import type { ScoreRequest } from '../../src/engine/types.ts';
import { GREEDY, collect, request, requireModelDir } from './engine-helpers.ts';

const dir = requireModelDir();
let engine: MMRecEngine;
let direct: OnnxModel;
let template: ChatTemplate;

before(async () => {
  engine = await loadEngine(dir, { stateCache: { maxBytes: 16 << 20 } });
  direct = await OnnxModel.load(`${dir}/model.onnx`, { executionProvider: 'cpu' });
  template = new ChatTemplate(new ChatTokenizer(engine.config.tokenizer));
  ITEMS = items();
});

after(async () => {
  await engine.close();
  await direct.dispose();
});

function conversation(question: string, answer: string): ScoreRequest {
  const r = template.render([
    { role: 'user', content: question },
    { role: 'assistant', content: answer },
  ]);
  return { ids: r.ids, mask: r.trainMask };
}

/** The reference: one call over the whole sequence, log-softmax in float64 at every target. */
async function reference(req: ScoreRequest, initial?: RecurrentState) {
  const out = await direct.forward([req.ids as number[]], initial ?? emptyState(direct.signature.states, 1), 'all');
  const logits = out.logits[0];
  const vocab = logits.length / req.ids.length;
  let nll = 0;
  let tokens = 0;
  let correct = 0;
  for (let t = 0; t + 1 < req.ids.length; t++) {
    if (req.mask[t + 1] !== 1) continue;
    const row = Array.from(logits.subarray(t * vocab, (t + 1) * vocab));
    const max = Math.max(...row);
    const lse = max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0));
    nll += lse - row[req.ids[t + 1]];
    tokens++;
    if (row.indexOf(max) === req.ids[t + 1]) correct++;
  }
  return { nll, tokens, correct };
}

let ITEMS: ScoreRequest[] = [];
function items(): ScoreRequest[] {
  return [
    conversation('What is the capital of France?', 'The capital of France is Paris.'),
    conversation('What is 2 plus 3?', '2 plus 3 is 5.'),
    conversation('Hi there.', 'Hello! How can I help you today?'),
    conversation('What is the capital of Peru?', 'The capital of Peru is Lima, a city on the coast with a long history.'),
  ];
}

test('scores equal one whole-sequence call, batched or alone, in any chunking', async () => {
  const expected = await Promise.all(ITEMS.map((r) => reference(r)));
  const batched = await engine.score(ITEMS);
  for (const [i, e] of expected.entries()) {
    assert.equal(batched[i].tokens, e.tokens);
    assert.equal(batched[i].correct, e.correct);
    assert.ok(Math.abs(batched[i].nll - e.nll) < 1e-3 * Math.max(1, e.nll), `item ${i}: ${batched[i].nll} vs ${e.nll}`);
  }
  for (const opts of [
    { rows: 1, chunk: 1 },
    { rows: 3, chunk: 7 },
    { rows: 16, chunk: 64 },
  ]) {
    const other = await scoreSequences(direct, ITEMS, { ...opts, padId: engine.info.eosTokenIds[0] });
    for (const [i, e] of expected.entries()) assert.ok(Math.abs(other[i].nll - e.nll) < 1e-3 * Math.max(1, e.nll), `${JSON.stringify(opts)} item ${i}`);
  }
  // The trained model knows what such answers look like: far better than chance (ln 100277 ≈ 11.5 per token).
  const total = batched.reduce((s, r) => ({ nll: s.nll + r.nll, tokens: s.tokens + r.tokens, correct: s.correct + r.correct }), { nll: 0, tokens: 0, correct: 0 });
  assert.ok(total.correct / total.tokens > 0.5, `accuracy ${total.correct}/${total.tokens}`);
  assert.ok(total.nll / total.tokens < Math.log(engine.info.vocabSize), `loss ${total.nll / total.tokens} per token`);
});

test('an initial state: zeros given explicitly change nothing; another state changes the output and is scored from', async () => {
  const specs = direct.signature.states;
  const prompt = template.render([{ role: 'user', content: 'What is the capital of France?' }], { addGenerationPrompt: true });
  const generate = async (initialState?: { key: string; state: RecurrentState }) => {
    const g = engine.generate(request(prompt.ids, { maxTokens: 12, stopTokenIds: engine.info.eosTokenIds, sampling: GREEDY, initialState, cacheBoundaries: prompt.boundaries }));
    const ids = (await collect(g)).map((t) => t.id);
    return { ids, cached: (await g.result).cachedTokens ?? 0 };
  };
  const plain = await generate();
  const zeros = await generate({ key: 'zeros', state: emptyState(specs, 1) });
  assert.deepEqual(zeros.ids, plain.ids);
  assert.equal(zeros.cached, 0, "the base model's cached states are not restored for another initial state");
  // A large state pushes the model elsewhere.
  const loud: RecurrentState = { batch: 1, tensors: specs.map((s) => Float32Array.from({ length: s.rowSize }, (_, i) => ((i * 7919) % 13) - 6)) };
  const tuned = await generate({ key: 'loud', state: loud });
  assert.notDeepEqual(tuned.ids, plain.ids);
  const again = await generate({ key: 'loud', state: loud });
  assert.deepEqual(again.ids, tuned.ids);
  assert.ok(again.cached > 0, 'its own cached states are restored');
  const [scored] = await engine.score([{ ...ITEMS[0], initialState: { key: 'loud', state: loud } }]);
  const expected = await reference(ITEMS[0], loud);
  assert.ok(Math.abs(scored.nll - expected.nll) < 1e-3 * Math.max(1, expected.nll));
  assert.throws(() => engine.generate(request(prompt.ids, { initialState: { key: 'bad', state: emptyState([...specs, specs[0]], 1) } })), /state shapes/);
});
