import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Sampler, buildTruncations } from '../../src/engine/sampler/sampler.ts';
import { Distribution, findArgmax } from '../../src/engine/sampler/distribution.ts';
import { CandidateSet } from '../../src/engine/sampler/candidate-set.ts';
import { fastExpNonPositive } from '../../src/engine/sampler/fast-exp.ts';
import { ConstraintBlockedError, type SamplingParams } from '../../src/engine/types.ts';
import { naiveKeptSet, naiveLogSoftmax, params, randomLogits } from './sampler-helpers.ts';

const VOCAB = 100_277;

function sampler(p: Partial<SamplingParams>, vocab = VOCAB, promptIds: number[] = []): Sampler {
  return new Sampler(params(p), promptIds, new CandidateSet(vocab));
}

/** Draws `n` tokens from fresh copies of the same logits. */
function draws(s: Sampler, logits: Float32Array, n: number): number[] {
  return Array.from({ length: n }, () => s.sample(logits.slice()).id);
}

function keptSet(logits: Float32Array, p: SamplingParams): Set<number> {
  const step = { values: logits.slice(), scale: 1 / p.temperature };
  const candidates = new CandidateSet(logits.length);
  Distribution.build(step, findArgmax(step.values), candidates);
  for (const t of buildTruncations(p)) t.apply(candidates);
  return new Set(candidates.ids.subarray(0, candidates.count));
}

test('fast exp matches Math.exp to 1e-10 relative over the sampler range', () => {
  for (let x = 0; x > -60; x -= 0.0137) {
    const rel = Math.abs(fastExpNonPositive(x) / Math.exp(x) - 1);
    assert.ok(rel < 1e-10, `x=${x}: relative error ${rel}`);
  }
  assert.equal(fastExpNonPositive(0), 1);
  assert.equal(fastExpNonPositive(-Infinity), 0);
  assert.equal(fastExpNonPositive(-1000), 0);
});

test('the one-pass fill finds the same candidates, order and weights as argmax + fill', () => {
  const ascending = Float32Array.from({ length: 5000 }, (_, i) => i / 100); // every token raises the running maximum
  const peaked = randomLogits(VOCAB, 2, 11);
  peaked[77_000] = 40;
  const holes = randomLogits(VOCAB, 3, 12);
  for (let i = 0; i < holes.length; i += 7) holes[i] = i % 2 ? -Infinity : NaN;
  for (const [name, logits, scale] of [['ascending', ascending, 1], ['peaked', peaked, 1 / 0.7], ['flat with holes', holes, 2]] as const) {
    const a = new CandidateSet(logits.length);
    const b = new CandidateSet(logits.length);
    const cutoff = Math.log(logits.length / 1e-7);
    const best = findArgmax(logits);
    a.fill(logits, best.max, scale, cutoff);
    assert.equal(b.fillFindingMax(logits, scale, cutoff), best.max, name);
    assert.equal(b.count, a.count, name);
    assert.ok(b.count > 0, name);
    assert.deepEqual(b.ids.subarray(0, b.count), a.ids.subarray(0, a.count), name);
    assert.deepEqual(b.weights.subarray(0, b.count), a.weights.subarray(0, a.count), name);
    assert.equal(b.total, a.total, name);
  }
  assert.equal(new CandidateSet(3).fillFindingMax(new Float32Array([NaN, -Infinity, NaN]), 1, 10), -Infinity);
});

test('temperature 0 is greedy: always the argmax, lowest id on ties', () => {
  for (let seed = 1; seed <= 5; seed++) {
    const logits = randomLogits(VOCAB, 3, seed);
    let argmax = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[argmax]) argmax = i;
    assert.deepEqual(draws(sampler({ temperature: 0, topP: 0.5, topK: 3 }), logits, 3), [argmax, argmax, argmax]);
  }
  const tie = new Float32Array([0, 5, 1, 5]);
  assert.equal(sampler({ temperature: 0 }, 4).sample(tie).id, 1);
});

test('the same seed gives the same tokens; different or no seeds differ', () => {
  const logits = randomLogits(VOCAB, 1, 7);
  const p = { temperature: 0.9, topP: 0.95, seed: 1234 };
  const a = draws(sampler(p), logits, 50);
  assert.deepEqual(draws(sampler(p), logits, 50), a);
  assert.notDeepEqual(draws(sampler({ ...p, seed: 1235 }), logits, 50), a);
  assert.notDeepEqual(draws(sampler({ ...p, seed: -1234 }), logits, 50), a);
  assert.notDeepEqual(draws(sampler({ ...p, seed: undefined }), logits, 50), draws(sampler({ ...p, seed: undefined }), logits, 50));
});

const truncationCases: Array<Pick<SamplingParams, 'temperature' | 'topK' | 'topP' | 'minP'>> = [
  { temperature: 1, topK: 1, topP: 1, minP: 0 },
  { temperature: 1, topK: 50, topP: 1, minP: 0 },
  { temperature: 0.7, topK: 0, topP: 0.9, minP: 0 },
  { temperature: 1.3, topK: 0, topP: 0.5, minP: 0 },
  { temperature: 1, topK: 0, topP: 0.999, minP: 0 },
  { temperature: 1, topK: 0, topP: 1, minP: 0.05 },
  { temperature: 0.8, topK: 200, topP: 0.8, minP: 0 },
  { temperature: 1, topK: 40, topP: 0.95, minP: 0.1 },
];

for (const spread of [0.05, 1, 4]) {
  test(`top-k/top-p/min-p keep exactly the naive full-sort set (logit spread ${spread})`, () => {
    truncationCases.forEach((c, i) => {
      const logits = randomLogits(VOCAB, spread, 100 + i);
      const expected = naiveKeptSet(logits, c);
      const actual = keptSet(logits, params(c));
      assert.equal(actual.size, expected.size, `case ${JSON.stringify(c)}: kept ${actual.size}, expected ${expected.size}`);
      for (const id of expected) assert.ok(actual.has(id), `case ${JSON.stringify(c)}: token ${id} missing`);
    });
  });
}

test('truncation handles ties and a set smaller than k', () => {
  const flat = new Float32Array(1000); // every token equally likely
  assert.equal(keptSet(flat, params({ topK: 10 })).size, 10);
  assert.equal(keptSet(flat, params({ topP: 0.25 })).size, 250);
  assert.equal(keptSet(new Float32Array([0, 1, 2]), params({ topK: 10 })).size, 3);
});

test('sampling draws only kept tokens, in proportion to their probability', () => {
  const logits = new Float32Array([Math.log(0.5), Math.log(0.3), Math.log(0.15), Math.log(0.05)]);
  const s = sampler({ topP: 0.8, seed: 42 }, 4);
  const counts = [0, 0, 0, 0];
  const n = 20_000;
  for (const id of draws(s, logits, n)) counts[id]++;
  assert.equal(counts[2] + counts[3], 0, 'top_p 0.8 keeps only the first two tokens');
  assert.ok(Math.abs(counts[0] / n - 0.625) < 0.02, `token 0 drawn ${counts[0] / n}, expected 0.625`);
});

test('logit_bias -100 bans a token, +100 forces it', () => {
  const logits = randomLogits(VOCAB, 1, 3);
  const argmax = findArgmax(logits.slice()).argmax;
  const banned = sampler({ temperature: 0, logitBias: new Map([[argmax, -100]]) });
  assert.notEqual(banned.sample(logits.slice()).id, argmax);
  const flat = new Float32Array(8);
  const ban = sampler({ seed: 1, logitBias: new Map([[0, -100], [1, -100], [2, -100]]) }, 8);
  assert.ok(draws(ban, flat, 2000).every((id) => id > 2));
  assert.deepEqual(draws(sampler({ seed: 1, logitBias: new Map([[5, 100]]) }, 8), flat, 20), Array(20).fill(5));
});

test('repetition penalty covers prompt and generated tokens; presence/frequency only generated ones, by count', () => {
  // Greedy decoding of a fixed row reveals the penalised logits through which token wins.
  const row = new Float32Array([2, 1.5, -1, 1.2]);
  // Token 0 is in the prompt: 2 / 2 = 1 < 1.5, so token 1 wins.
  assert.equal(sampler({ temperature: 0, repetitionPenalty: 2 }, 4, [0]).sample(row.slice()).id, 1);
  // Negative logits are multiplied: token 2 at -1 → -2, still last; token 0 stays best without history.
  assert.equal(sampler({ temperature: 0, repetitionPenalty: 2 }, 4, [2]).sample(row.slice()).id, 0);

  // Generated tokens count as seen too.
  const repeat = sampler({ temperature: 0, repetitionPenalty: 2 }, 4);
  assert.deepEqual([0, 1, 2].map(() => repeat.sample(row.slice()).id), [0, 1, 3]);

  // Presence ignores the prompt.
  const presence = sampler({ temperature: 0, presencePenalty: 1 }, 4, [0]);
  assert.equal(presence.sample(row.slice()).id, 0); // generated once: 2 - 1 = 1 < 1.5
  assert.equal(presence.sample(row.slice()).id, 1); // presence does not grow with the count: 1.5 - 1 = 0.5 < 1.2
  assert.equal(presence.sample(row.slice()).id, 3);

  const frequency = sampler({ temperature: 0, frequencyPenalty: 0.3, logprobs: true }, 4);
  assert.equal(frequency.sample(row.slice()).id, 0);
  const second = frequency.sample(row.slice()); // token 0 now at 2 - 0.3 = 1.7
  assert.equal(second.id, 0);
  const third = frequency.sample(row.slice()); // 2 - 0.6 = 1.4 < 1.5
  assert.equal(third.id, 1);
  assert.ok(Math.abs(third.logprob! - naiveLogSoftmax(new Float32Array([1.4, 1.5, -1, 1.2]))[1]) < 1e-6);
});

test('logprobs are the log-softmax after temperature over the full vocabulary', () => {
  const logits = randomLogits(VOCAB, 2, 11);
  for (const temperature of [0, 0.5, 1, 1.7]) {
    const reference = naiveLogSoftmax(logits, temperature === 0 ? 1 : 1 / temperature);
    const s = sampler({ temperature, seed: 5, logprobs: true, topLogprobs: 5, topP: 0.5 });
    for (let step = 0; step < 5; step++) {
      const token = s.sample(logits.slice());
      assert.ok(Math.abs(token.logprob! - reference[token.id]) < 1e-6, `T=${temperature}: ${token.logprob} vs ${reference[token.id]}`);
    }
  }
});

test('logprobs of every token sum to probability 1', () => {
  const logits = randomLogits(20, 3, 12);
  const token = sampler({ temperature: 0.8, logprobs: true, topLogprobs: 20 }, 20).sample(logits);
  const total = token.topLogprobs!.reduce((s, t) => s + Math.exp(t.logprob), 0);
  assert.ok(Math.abs(total - 1) < 1e-9, `total ${total}`);
});

test('top_logprobs: the requested count, sorted, equal to the naive top n', () => {
  for (const [spread, n] of [[1, 20], [3, 1], [40, 20], [0.01, 7]] as const) {
    // spread 40 leaves fewer than n candidates in the set, which exercises the full-vocabulary fallback.
    const logits = randomLogits(VOCAB, spread, 13);
    const token = sampler({ temperature: 0.9, logprobs: true, topLogprobs: n, seed: 3 }).sample(logits.slice());
    const top = token.topLogprobs!;
    assert.equal(top.length, n);
    for (let i = 1; i < top.length; i++) assert.ok(top[i - 1].logprob >= top[i].logprob, 'sorted most likely first');
    const reference = naiveLogSoftmax(logits, 1 / 0.9);
    const expected = Array.from(reference.keys()).sort((a, b) => reference[b] - reference[a] || a - b).slice(0, n);
    assert.deepEqual(top.map((t) => t.id), expected);
    top.forEach((t) => assert.ok(Math.abs(t.logprob - reference[t.id]) < 1e-6));
  }
  const without = sampler({ logprobs: true, topLogprobs: 0 }).sample(randomLogits(VOCAB, 1, 1));
  assert.equal(without.topLogprobs, undefined);
  assert.equal(typeof without.logprob, 'number');
  assert.equal(sampler({}).sample(randomLogits(VOCAB, 1, 1)).logprob, undefined);
});

test('a row with no possible token is refused loudly', () => {
  assert.throws(() => sampler({}, 3).sample(new Float32Array([NaN, NaN, NaN])), /no token is possible/);
  // Banned by logit_bias: the request's own doing, reported as such (the serving layer answers 400).
  assert.throws(() => sampler({ logitBias: new Map([[0, -100]]) }, 1).sample(new Float32Array([1])), (e: Error) => e instanceof ConstraintBlockedError && /bans every token/.test(e.message));
});
