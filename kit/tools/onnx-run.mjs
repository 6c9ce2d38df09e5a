// Run an exported MM-Rec model.onnx with onnxruntime-node (CPU), feeding a token
// sequence in chunks with the recurrent state carried from chunk to chunk.
// Used by the kit's tests to compare the ONNX graph with PyTorch.
//
//   node kit/tools/onnx-run.mjs <model.onnx> <job.json> <out-dir>
//
// job.json: {"batch": B, "seq": T, "ids": "ids.bin" (int64 [B,T], relative to job.json),
//            "chunkings": [[3, 1, 4], [8], ...]}   (each chunking's lengths sum to T)
// Per chunking k, writes <out-dir>/<k>.logits.bin (float32 [B,T,V]) and
// <out-dir>/<k>.state_out.<i>.bin (float32 [B,D]); plus <out-dir>/result.json
// with the shapes. Exits non-zero on any error.
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(resolve(dirname(new URL(import.meta.url).pathname), '../../package.json'));
const ort = require('onnxruntime-node');

const [modelPath, jobPath, outDir] = process.argv.slice(2);
if (!modelPath || !jobPath || !outDir) {
  console.error('usage: node onnx-run.mjs <model.onnx> <job.json> <out-dir>');
  process.exit(2);
}
const job = JSON.parse(readFileSync(jobPath, 'utf8'));
const idsBuf = readFileSync(join(dirname(jobPath), job.ids));
const ids = new BigInt64Array(idsBuf.buffer, idsBuf.byteOffset, idsBuf.length / 8);
const B = job.batch;
const T = job.seq;
if (ids.length !== B * T) throw new Error(`ids has ${ids.length} values, expected ${B * T}`);

const session = await ort.InferenceSession.create(modelPath, { executionProviders: ['cpu'] });
const stateNames = session.inputNames.filter((n) => n.startsWith('state_in.'));
const meta = session.inputMetadata ?? [];
function stateDim(name) {
  const m = Array.isArray(meta) ? meta.find((x) => x.name === name) : meta[name];
  const shape = m?.shape ?? m?.dimensions;
  if (!shape) throw new Error(`cannot read the shape of ${name}`);
  return shape.slice(1).reduce((a, b) => a * Number(b), 1);
}
mkdirSync(outDir, { recursive: true });
const result = { stateNames, chunkings: [] };

for (const [k, chunks] of job.chunkings.entries()) {
  if (chunks.reduce((a, b) => a + b, 0) !== T) throw new Error(`chunking ${k} does not sum to ${T}`);
  let state = Object.fromEntries(stateNames.map((n) => [n, new ort.Tensor('float32', new Float32Array(B * stateDim(n)), [B, stateDim(n)])]));
  let V = 0;
  let logitsAll = null;
  let pos = 0;
  for (const len of chunks) {
    const chunk = new BigInt64Array(B * len);
    for (let b = 0; b < B; b++) chunk.set(ids.subarray(b * T + pos, b * T + pos + len), b * len);
    const out = await session.run({ input_ids: new ort.Tensor('int64', chunk, [B, len]), ...state });
    const logits = out.logits;
    V = Number(logits.dims[2]);
    if (!logitsAll) logitsAll = new Float32Array(B * T * V);
    for (let b = 0; b < B; b++) logitsAll.set(logits.data.subarray(b * len * V, (b + 1) * len * V), (b * T + pos) * V);
    state = Object.fromEntries(stateNames.map((n) => [n, out[n.replace('state_in.', 'state_out.')]]));
    pos += len;
  }
  writeFileSync(join(outDir, `${k}.logits.bin`), Buffer.from(logitsAll.buffer));
  for (const n of stateNames) {
    const t = state[n];
    writeFileSync(join(outDir, `${k}.${n.replace('state_in.', 'state_out.')}.bin`), Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  result.chunkings.push({ logits: [B, T, V] });
}
writeFileSync(join(outDir, 'result.json'), JSON.stringify(result));
