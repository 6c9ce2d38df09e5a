/**
 * Recurrent state: one tensor per graph state input, each [batch, ...rowShape].
 * The engine treats the contents as opaque (float16 states stay Uint16Array
 * bits); only its layout matters here.
 */

/** float32 states as Float32Array, float16 states as their raw bits (Uint16Array). */
export type StateArray = Float32Array | Uint16Array;
export type StateDtype = 'float32' | 'float16';

/** One state tensor as the graph declares it. */
export interface StateSpec {
  inputName: string;
  outputName: string;
  dtype: StateDtype;
  /** Dimensions after the batch dimension. */
  rowShape: number[];
  /** Elements per batch row. */
  rowSize: number;
}

export interface RecurrentState {
  batch: number;
  /** One per StateSpec, in the same order, each batch × rowSize elements. */
  tensors: StateArray[];
}

function allocate(dtype: StateDtype, length: number): StateArray {
  return dtype === 'float16' ? new Uint16Array(length) : new Float32Array(length);
}

/** All zeros: the start of a sequence (zero bits are 0.0 in float16 too). */
export function emptyState(specs: readonly StateSpec[], batch: number): RecurrentState {
  return { batch, tensors: specs.map((s) => allocate(s.dtype, batch * s.rowSize)) };
}

/** Stacks single-row states into one batch, row r being states[r]. */
export function stackStates(specs: readonly StateSpec[], states: readonly RecurrentState[]): RecurrentState {
  const batch = states.reduce((n, s) => n + s.batch, 0);
  const tensors = specs.map((spec, i) => {
    const out = allocate(spec.dtype, batch * spec.rowSize);
    let offset = 0;
    for (const s of states) {
      out.set(s.tensors[i] as Float32Array & Uint16Array, offset);
      offset += s.batch * spec.rowSize;
    }
    return out;
  });
  return { batch, tensors };
}

/** The state of batch row `row`, copied out. */
export function stateRow(specs: readonly StateSpec[], state: RecurrentState, row: number): RecurrentState {
  return {
    batch: 1,
    tensors: specs.map((spec, i) => state.tensors[i].slice(row * spec.rowSize, (row + 1) * spec.rowSize)),
  };
}
