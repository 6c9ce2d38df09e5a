// Greedy decoding of token-id prompts with onnxruntime-node (CPU), starting each
// sequence from a model directory's initial state (state tuning) or from zeros.
// Used by `python3 -m mmrec.evaluate --model-dir` to score a served model as the
// server would run it.
//
//   node kit/tools/onnx-greedy.mjs <job.json> <out.json>
//
// job.json: {"model": "<path>/model.onnx", "prompts": [[ids...], ...], "max_new": 48, "eos": [100257],
//            "initial_state": null | {"file": "<path>", "shapes": [[D], ...]}}   (raw little-endian float32, layer order)
// out.json: {"generations": [[ids...], ...]}  (the eos token is not included)
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(resolve(dirname(new URL(import.meta.url).pathname), '../../package.json'));
const ort = require('onnxruntime-node');

const [jobPath, outPath] = process.argv.slice(2);
if (!jobPath || !outPath) {
  console.error('usage: node onnx-greedy.mjs <job.json> <out.json>');
  process.exit(2);
}
const job = JSON.parse(readFileSync(jobPath, 'utf8'));
const session = await ort.InferenceSession.create(job.model, { executionProviders: ['cpu'] });
const stateNames = session.inputNames.filter((n) => n.startsWith('state_in.')).sort((a, b) => Number(a.split('.')[1]) - Number(b.split('.')[1]));

let init = null;
if (job.initial_state) {
  const buf = readFileSync(job.initial_state.file);
  const all = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  const sizes = job.initial_state.shapes.map((s) => s.reduce((a, b) => a * b, 1));
  if (sizes.length !== stateNames.length) throw new Error(`initial state has ${sizes.length} tensors, the graph ${stateNames.length}`);
  if (sizes.reduce((a, b) => a + b, 0) !== all.length) throw new Error('initial state file size does not match its shapes');
  init = [];
  let o = 0;
  for (const n of sizes) {
    init.push(all.subarray(o, o + n));
    o += n;
  }
}

function startState(dims) {
  return Object.fromEntries(
    stateNames.map((name, i) => {
      const data = new Float32Array(dims[i]);
      if (init) data.set(init[i]);
      return [name, new ort.Tensor('float32', data, [1, dims[i]])];
    }),
  );
}
const meta = session.inputMetadata ?? [];
const dims = stateNames.map((name) => {
  const m = Array.isArray(meta) ? meta.find((x) => x.name === name) : meta[name];
  const shape = m?.shape ?? m?.dimensions;
  if (!shape && init) return init[stateNames.indexOf(name)].length;
  if (!shape) throw new Error(`cannot read the shape of ${name}`);
  return shape.slice(1).reduce((a, b) => a * Number(b), 1);
});

const eos = new Set(job.eos ?? [100257]);
const maxNew = job.max_new ?? 48;
const generations = [];
for (const prompt of job.prompts) {
  let state = startState(dims);
  let ids = prompt;
  const gen = [];
  for (let k = 0; k <= maxNew; k++) {
    const out = await session.run({ input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]), ...state });
    const V = Number(out.logits.dims[2]);
    const last = out.logits.data.subarray((ids.length - 1) * V, ids.length * V);
    let best = 0;
    for (let v = 1; v < V; v++) if (last[v] > last[best]) best = v;
    if (eos.has(best) || k === maxNew) break;
    gen.push(best);
    state = Object.fromEntries(stateNames.map((n) => [n, out[n.replace('state_in.', 'state_out.')]]));
    ids = [best];
  }
  generations.push(gen);
}
writeFileSync(outPath, JSON.stringify({ generations }));
