/**
 * The WebAssembly SIMD scans against plain loops, on rows built to catch what
 * vector code gets wrong: lengths that are not multiples of 4 or 16, NaN,
 * ±Infinity, ties, -0, and thresholds that float32 cannot represent. Then the
 * whole sampler suite once more with SIMD switched off, so the fallback stays right.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { simdScan } from '../../src/engine/sampler/simd-scan.ts';
import { findArgmaxScalar } from '../../src/engine/sampler/distribution.ts';
import { createRng } from '../../src/engine/sampler/rng.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function row(n: number, seed: number): Float32Array {
  const rng = createRng(seed);
  const v = Float32Array.from({ length: n }, () => Math.round((rng.next() * 20 - 15) * 8) / 8); // coarse values: ties are common
  for (let i = 0; i < n; i++) {
    const r = rng.next();
    if (r < 0.05) v[i] = NaN;
    else if (r < 0.08) v[i] = -Infinity;
    else if (r < 0.09) v[i] = -0;
  }
  return v;
}

const scan = () => {
  assert.ok(simdScan, 'WebAssembly SIMD is unavailable in this Node.js: the sampler falls back to plain loops (Node ≥ 16.4 has it)');
  return simdScan;
};

test('maximum and its lowest index match the plain loop', () => {
  const s = scan();
  const lengths = [...Array.from({ length: 70 }, (_, i) => i + 1), 100_277];
  for (const n of lengths) {
    for (let seed = 0; seed < 5; seed++) {
      const v = row(n, n * 10 + seed);
      if (seed === 4) v[n - 1] = 99; // the very last entry wins
      s.load(v);
      const max = s.max();
      let plainMax = -Infinity;
      for (const x of v) if (x > plainMax) plainMax = x;
      assert.equal(max, plainMax, `n ${n} seed ${seed}`);
      if (max === -Infinity) continue;
      assert.equal(s.indexOf(max), findArgmaxScalar(v).argmax, `n ${n} seed ${seed}`);
    }
  }
  s.load(new Float32Array([NaN, NaN, -Infinity, NaN, NaN]));
  assert.equal(s.max(), -Infinity);
});

test('ids above a threshold match the plain filter, for thresholds float32 cannot hold', () => {
  const s = scan();
  const rng = createRng(7);
  for (const n of [1, 3, 4, 5, 15, 16, 17, 63, 64, 65, 1000, 100_277]) {
    const v = row(n, n);
    s.load(v);
    const out = new Int32Array(n);
    const thresholds = [-Infinity, Infinity, 0, -0, 1 / 3, -2.000000001, 4.125, ...Array.from({ length: 6 }, () => rng.next() * 20 - 15)];
    for (const finite of v) if (Number.isFinite(finite)) thresholds.push(finite); // exactly a value: strictly above only
    for (const t of thresholds.slice(0, 40)) {
      const count = s.collectAbove(t, out);
      const expected: number[] = [];
      for (let i = 0; i < n; i++) if (v[i] > t) expected.push(i);
      assert.deepEqual([...out.subarray(0, count)], expected, `n ${n} threshold ${t}`);
    }
  }
});

test('the sampler suite passes with SIMD switched off (the fallback)', () => {
  // NODE_TEST_CONTEXT would make the child report to this runner instead of printing its results.
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  // The TAP reporter, named: since Node 23 the default reporter is spec even when stdout is not a terminal.
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=tap', 'test/unit/sampler.test.ts'], { cwd: ROOT, env: { ...env, MMREC_NO_SIMD: '1' }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout.slice(-3000) + r.stderr.slice(-2000));
  assert.match(r.stdout, /# fail 0/);
});
