/**
 * One recurrent state (batch 1) as bytes, for keeping it beyond the process
 * (a stored response's state, in the database). The layout string names each
 * tensor's dtype and shape, so bytes are only ever read back into a graph
 * whose states have exactly that layout; a state that is not finite is
 * refused when read, as the state cache refuses one.
 *
 * Tensors are concatenated in graph order as little-endian float32 or
 * float16 bits (every platform onnxruntime-node ships for is little-endian).
 */
import { endianness } from 'node:os';
import { isFiniteState } from './state-cache.ts';
import type { RecurrentState, StateSpec } from './state.ts';

if (endianness() !== 'LE') throw new Error('state blobs assume a little-endian platform');

/** e.g. "float32[128];float32[128]": what a state's bytes mean. */
export function stateLayout(specs: readonly StateSpec[]): string {
  return specs.map((s) => `${s.dtype}[${s.rowShape.join(',')}]`).join(';');
}

export function encodeState(specs: readonly StateSpec[], state: RecurrentState): Uint8Array {
  if (state.batch !== 1 || state.tensors.length !== specs.length) throw new RangeError('encodeState takes one row of the graph\'s states');
  const total = state.tensors.reduce((n, t) => n + t.byteLength, 0);
  const out = new Uint8Array(total);
  let at = 0;
  state.tensors.forEach((t, i) => {
    if (t.length !== specs[i].rowSize) throw new RangeError(`state tensor ${i} has ${t.length} elements, the graph's ${specs[i].rowSize}`);
    out.set(new Uint8Array(t.buffer, t.byteOffset, t.byteLength), at);
    at += t.byteLength;
  });
  return out;
}

export type DecodedState = { ok: true; state: RecurrentState } | { ok: false; reason: string };

/** The state in `bytes`, when `layout` is the graph's and the bytes are whole and finite. */
export function decodeState(specs: readonly StateSpec[], layout: string, bytes: Uint8Array): DecodedState {
  const expected = stateLayout(specs);
  if (layout !== expected) return { ok: false, reason: `its layout ${layout} is not the graph's ${expected}` };
  const size = specs.reduce((n, s) => n + s.rowSize * (s.dtype === 'float16' ? 2 : 4), 0);
  if (bytes.byteLength !== size) return { ok: false, reason: `it has ${bytes.byteLength} bytes, the graph's states take ${size}` };
  let at = 0;
  const tensors = specs.map((s) => {
    const width = s.dtype === 'float16' ? 2 : 4;
    // Copied: the source may not be aligned for a typed array view (and a Buffer's slice() is a view of its pool).
    const copy = new Uint8Array(s.rowSize * width);
    copy.set(bytes.subarray(at, at + s.rowSize * width));
    at += s.rowSize * width;
    return s.dtype === 'float16' ? new Uint16Array(copy.buffer) : new Float32Array(copy.buffer);
  });
  const state = { batch: 1, tensors };
  if (!isFiniteState(state)) return { ok: false, reason: 'it is not finite' };
  return { ok: true, state };
}
