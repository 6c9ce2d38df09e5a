/**
 * Embeddings from the model's own hidden state. An MM-Rec graph exposes one
 * hidden state: the recurrent memory after the last token it read
 * (`state_out.*`, MM-REC.md §3). Last-state pooling reads each sequence and
 * keeps that memory: every state tensor L2-normalised on its own (so each
 * layer weighs the same, whatever the scale of its values), concatenated in
 * the graph's order, and the whole scaled to unit length.
 *
 * Sequences are batched without padding, since a pad token would change the
 * state a recurrent model ends in: sorted by length, a group of rows is fed
 * in calls of at most `tokensPerCall` tokens in all, each call as long as the
 * shortest unfinished row allows, and a row leaves the group with its state
 * once its last token is in. Logits are never computed.
 */
import type { ModelRunner } from './onnx-model.ts';
import { emptyState, stackStates, stateRow, type RecurrentState, type StateArray, type StateSpec } from './state.ts';
import type { EmbedRequest } from './types.ts';

export interface EmbeddingOptions {
  /** Rows per model call at most. */
  rows: number;
  /** Tokens of one call, over all its rows (the cost of one call, as a prefill chunk's). */
  tokensPerCall: number;
  signal?: AbortSignal;
}

export const DEFAULT_EMBEDDING_ROWS = 32;

/** The width of each block of the pooled vector: one per state tensor, in the graph's order. */
export function embeddingBlocks(specs: readonly StateSpec[]): number[] {
  return specs.map((s) => s.rowSize);
}

export async function embedSequences(model: ModelRunner, requests: readonly EmbedRequest[], opts: EmbeddingOptions): Promise<Float32Array[]> {
  const specs = model.signature.states;
  const results: Float32Array[] = new Array(requests.length);
  const order = requests.map((_, i) => i).sort((a, b) => requests[a].ids.length - requests[b].ids.length);
  const groupRows = Math.max(1, Math.min(opts.rows, opts.tokensPerCall));
  for (let g = 0; g < order.length; g += groupRows) {
    let rows = order.slice(g, g + groupRows);
    let states: RecurrentState[] = rows.map((i) => requests[i].initialState?.state ?? emptyState(specs, 1));
    let pos = 0;
    while (rows.length > 0) {
      opts.signal?.throwIfAborted();
      // Rows are sorted, so the first unfinished row is the shortest: no call runs past its end.
      const step = Math.max(1, Math.min(requests[rows[0]].ids.length - pos, Math.floor(opts.tokensPerCall / rows.length)));
      const inputs = rows.map((i) => requests[i].ids.slice(pos, pos + step));
      const out = await model.forward(inputs, rows.length === 1 ? states[0] : stackStates(specs, states), 'none');
      pos += step;
      states = rows.map((_, r) => (rows.length === 1 ? out.state : stateRow(specs, out.state, r)));
      const left: number[] = [];
      const leftStates: RecurrentState[] = [];
      rows.forEach((i, r) => {
        if (requests[i].ids.length === pos) results[i] = poolLastState(specs, states[r]);
        else {
          left.push(i);
          leftStates.push(states[r]);
        }
      });
      rows = left;
      states = leftStates;
    }
  }
  return results;
}

/** A one-row state → the unit vector described above. Non-finite states are an error: they would make every cosine NaN. */
export function poolLastState(specs: readonly StateSpec[], state: RecurrentState): Float32Array {
  const out = new Float32Array(specs.reduce((n, s) => n + s.rowSize, 0));
  let at = 0;
  let blocks = 0;
  specs.forEach((spec, k) => {
    const values = toFloat32(state.tensors[k], spec.dtype);
    let sum = 0;
    for (const v of values) sum += v * v;
    if (!Number.isFinite(sum)) throw new Error(`the model's state ${spec.outputName} is not finite`);
    const norm = Math.sqrt(sum);
    // An all-zero block (a layer that wrote nothing) stays zero and is left out of the final scaling.
    if (norm > 0) {
      for (let i = 0; i < values.length; i++) out[at + i] = values[i] / norm;
      blocks++;
    }
    at += spec.rowSize;
  });
  if (blocks > 1) {
    const scale = 1 / Math.sqrt(blocks);
    for (let i = 0; i < out.length; i++) out[i] *= scale;
  }
  return out;
}

function toFloat32(values: StateArray, dtype: StateSpec['dtype']): Float32Array {
  if (dtype === 'float32') return values as Float32Array;
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = halfToFloat(values[i]);
  return out;
}

/** IEEE 754 binary16 bits → number. */
export function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction === 0 ? sign * Infinity : NaN;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}
