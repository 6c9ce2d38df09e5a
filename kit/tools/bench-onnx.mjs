// Raw onnxruntime-node (CPU) speed of an exported MM-Rec model, without the server:
// prefill throughput for one 512-token prompt and one-token decode step latency at
// batch 1 and 8 (state carried from step to step, as the server does).
//
//   node kit/tools/bench-onnx.mjs <model-dir> [--threads N] [--prompt 512] [--steps 64]
import { dirname, join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

const require = createRequire(resolve(dirname(new URL(import.meta.url).pathname), '../../package.json'));
const ort = require('onnxruntime-node');

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { threads: { type: 'string', default: '0' }, prompt: { type: 'string', default: '512' }, steps: { type: 'string', default: '64' } },
});
const dir = positionals[0];
if (!dir) {
  console.error('usage: node kit/tools/bench-onnx.mjs <model-dir> [--threads N] [--prompt 512] [--steps 64]');
  process.exit(2);
}
const opts = { executionProviders: ['cpu'] };
if (Number(values.threads) > 0) opts.intraOpNumThreads = Number(values.threads);
const t0 = performance.now();
const session = await ort.InferenceSession.create(join(dir, 'model.onnx'), opts);
const loadMs = performance.now() - t0;
const stateNames = session.inputNames.filter((n) => n.startsWith('state_in.'));
const meta = session.inputMetadata;
const dimOf = (name) => {
  const m = Array.isArray(meta) ? meta.find((x) => x.name === name) : meta[name];
  return Number((m.shape ?? m.dimensions)[1]);
};
const zeroState = (B) => Object.fromEntries(stateNames.map((n) => [n, new ort.Tensor('float32', new Float32Array(B * dimOf(n)), [B, dimOf(n)])]));
const ids = (B, T) => new ort.Tensor('int64', BigInt64Array.from({ length: B * T }, (_, i) => BigInt(100 + ((i * 7919) % 50000))), [B, T]);
const carry = (out) => Object.fromEntries(stateNames.map((n) => [n, out[n.replace('state_in.', 'state_out.')]]));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const P = Number(values.prompt);
await session.run({ input_ids: ids(1, 16), ...zeroState(1) }); // warm-up
const prefill = [];
for (let i = 0; i < 3; i++) {
  const t = performance.now();
  await session.run({ input_ids: ids(1, P), ...zeroState(1) });
  prefill.push(performance.now() - t);
}
const result = { model: dir, loadMs: Math.round(loadMs), prefill: { tokens: P, ms: median(prefill), tokPerS: (P * 1000) / median(prefill) }, decode: {} };
for (const B of [1, 8]) {
  let state = zeroState(B);
  const times = [];
  for (let s = 0; s < Number(values.steps) + 4; s++) {
    const t = performance.now();
    const out = await session.run({ input_ids: ids(B, 1), ...state });
    if (s >= 4) times.push(performance.now() - t);
    state = carry(out);
  }
  result.decode[`batch${B}`] = { msPerStep: median(times), tokPerS: (B * 1000) / median(times) };
}
console.log(JSON.stringify(result));
