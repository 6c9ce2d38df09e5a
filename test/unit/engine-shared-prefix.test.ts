/**
 * Prompts that share a beginning up to a cache boundary (a long system prompt,
 * a few-shot block), started at the same instant: the shared part is prefilled
 * once and the others restore it from the state cache, on the real model;
 * greedy outputs are those of an engine without a cache.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadEngine, type MMRecEngine, type StepInfo } from '../../src/engine/engine.ts';
import { collect, prompt, request, requireModelDir } from './engine-helpers.ts';

const dir = requireModelDir();
const SHARED = 96;
const LINES = 6;
let cold: MMRecEngine;
let warm: MMRecEngine;
const steps: StepInfo[] = [];

before(async () => {
  cold = await loadEngine(dir, { prefillChunkSize: 32 });
  warm = await loadEngine(dir, { prefillChunkSize: 32, stateCache: { maxBytes: 64 << 20 }, onStep: (s) => steps.push(s) });
});

after(async () => {
  await cold.close();
  await warm.close();
});

/** The shared block (different for each test, so that none finds another's in the cache), then a few tokens of each line's own. */
const linesOf = (salt: number) => Array.from({ length: LINES }, (_, i) => [...prompt(SHARED, salt), ...prompt(6, 100 + i)]);

for (const [salt, priority] of [[1, 'background'], [2, 'interactive']] as const) {
  test(`${priority}: a shared prefix up to a cache boundary is prefilled once for lines started together`, async () => {
    steps.length = 0;
    const prompts = linesOf(salt);
    const started = prompts.map((p) => warm.generate(request(p, { maxTokens: 6, cacheBoundaries: [SHARED], priority })));
    const outputs = await Promise.all(started.map(async (g) => (await collect(g)).map((t) => t.id)));
    const results = await Promise.all(started.map((g) => g.result));
    const prefilled = steps.filter((s) => s.phase === 'prefill').reduce((n, s) => n + s.tokens, 0);
    // The first line prefills everything but its last token; the others only their own 5 tokens (the last is the first decode row).
    const own = 5;
    const expected = SHARED + own + (LINES - 1) * own;
    assert.equal(prefilled, expected, `prefilled ${prefilled} tokens; ${SHARED} shared once + ${own} per line = ${expected}`);
    const cached = results.map((r) => r.cachedTokens ?? 0);
    assert.equal(cached.filter((c) => c === SHARED).length, LINES - 1, `all but the first restored the shared block: ${cached}`);
    const reference = await Promise.all(prompts.map(async (p) => (await collect(cold.generate(request(p, { maxTokens: 6 })))).map((t) => t.id)));
    assert.deepEqual(outputs, reference, 'greedy outputs are those of an engine without a cache');
  });
}
