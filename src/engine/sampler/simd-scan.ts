/**
 * The sampler's passes over the whole vocabulary, in WebAssembly SIMD: the
 * maximum of a row of logits, the first position of a value, and the ids of the
 * entries above a threshold. A JavaScript loop reads ~1 logit per nanosecond
 * (~120 µs for 100k), which is more than 10% of a small model's decode step;
 * four 4-lane accumulators do the same in ~25 µs, copy into WASM memory
 * included. Semantics are the JavaScript ones: NaN never wins or passes a
 * comparison (f32x4.pmax keeps the accumulator, f32x4.gt is false).
 *
 * The module is ~200 bytes, assembled below rather than shipped as a binary so
 * every instruction is visible. `simdScan` is undefined where WebAssembly SIMD
 * is not available, and callers keep their plain loops.
 */

// --- a tiny assembler: just what the three functions need -----------------
const leb = (n: number): number[] => {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
};
const name = (s: string) => [...leb(s.length), ...Buffer.from(s)];
const section = (id: number, bytes: number[]) => [id, ...leb(bytes.length), ...bytes];
const vector = (items: number[][]) => [...leb(items.length), ...items.flat()];
const simd = (op: number) => [0xfd, ...leb(op)];
const I32 = 0x7f;
const F32 = 0x7d;
const V128 = 0x7b;
const get = (i: number) => [0x20, i];
const set = (i: number) => [0x21, i];
/** Signed LEB128, as i32.const wants (64 is [0xc0, 0x00]: a lone 0x40 would read as -64). */
const sleb = (n: number): number[] => {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) return [...out, b];
    out.push(b | 0x80);
  }
};
const i32 = (n: number) => [0x41, ...sleb(n)]; // i32.const
const ADD = 0x6a; // i32.add
const SHL = 0x74; // i32.shl
const GE_U = 0x4f; // i32.ge_u
const F32_MAX = 0x97;
const load = (offset: number) => [...simd(0x00), 4, ...leb(offset)]; // v128.load, 16-byte alignment hint
const PMAX = simd(0xeb); // f32x4.pmax: b > a ? b : a (a NaN b keeps a)
const SPLAT = simd(0x13); // f32x4.splat
const EQ = simd(0x41); // f32x4.eq
const GT = simd(0x44); // f32x4.gt
const ANY_TRUE = simd(0x53); // v128.any_true
const lane = (i: number) => [...simd(0x1f), i]; // f32x4.extract_lane
const NEG_INF4 = [...simd(0x0c), ...Array.from({ length: 4 }, () => [0x00, 0x00, 0x80, 0xff]).flat()]; // v128.const
/** `block loop (exit when ptr ≥ end) …body… ptr += step; br loop end end` over locals ptr and end. */
const loopOver = (ptr: number, end: number, step: number, body: number[]) => [
  0x02, 0x40, 0x03, 0x40,
  ...get(ptr), ...get(end), GE_U, 0x0d, 1,
  ...body,
  ...get(ptr), ...i32(step), ADD, ...set(ptr),
  0x0c, 0, 0x0b, 0x0b,
];
/** end = ptr + n·4 (n floats from byte address ptr). */
const endOf = (ptr: number, n: number, end: number) => [...get(ptr), ...get(n), ...i32(2), SHL, ADD, ...set(end)];

/** max(ptr, n) → f32, n a multiple of 16: four accumulators, so consecutive pmax do not wait on each other. */
const maxBody = [
  ...vector([[1, I32], [4, V128]]), // locals: 2 end, 3–6 accumulators
  ...endOf(0, 1, 2),
  ...NEG_INF4, ...set(3), ...NEG_INF4, ...set(4), ...NEG_INF4, ...set(5), ...NEG_INF4, ...set(6),
  ...loopOver(0, 2, 64, [
    ...get(3), ...get(0), ...load(0), ...PMAX, ...set(3),
    ...get(4), ...get(0), ...load(16), ...PMAX, ...set(4),
    ...get(5), ...get(0), ...load(32), ...PMAX, ...set(5),
    ...get(6), ...get(0), ...load(48), ...PMAX, ...set(6),
  ]),
  ...get(3), ...get(4), ...PMAX, ...get(5), ...PMAX, ...get(6), ...PMAX, ...set(3),
  ...get(3), ...lane(0), ...get(3), ...lane(1), F32_MAX, ...get(3), ...lane(2), F32_MAX, ...get(3), ...lane(3), F32_MAX,
  0x0b,
];

/** find(ptr, n, value) → byte address of the first 4-float group holding `value` (ptr + n·4 if none); n a multiple of 4. */
const findBody = [
  ...vector([[1, I32], [1, V128]]), // locals: 3 end, 4 splat
  ...get(2), ...SPLAT, ...set(4),
  ...endOf(0, 1, 3),
  0x02, 0x40, 0x03, 0x40,
  ...get(0), ...get(3), GE_U, 0x0d, 1,
  ...get(0), ...load(0), ...get(4), ...EQ, ...ANY_TRUE, 0x0d, 1,
  ...get(0), ...i32(16), ADD, ...set(0),
  0x0c, 0, 0x0b, 0x0b,
  ...get(0),
  0x0b,
];

/**
 * above(ptr, n, threshold, out) → count: writes the byte addresses of the 4-float
 * groups holding a value > threshold to `out` (i32 each) and returns how many;
 * n a multiple of 4. The caller checks the four members of each group.
 */
const aboveBody = [
  ...vector([[2, I32], [1, V128]]), // locals: 4 end, 5 count, 6 splat
  ...get(2), ...SPLAT, ...set(6),
  ...endOf(0, 1, 4),
  ...loopOver(0, 4, 16, [
    ...get(0), ...load(0), ...get(6), ...GT, ...ANY_TRUE,
    0x04, 0x40, // if
    ...get(3), ...get(5), ...i32(2), SHL, ADD, ...get(0), 0x36, 2, 0, // i32.store out[count] = ptr
    ...get(5), ...i32(1), ADD, ...set(5),
    0x0b,
  ]),
  ...get(5),
  0x0b,
];

const body = (b: number[]) => [...leb(b.length), ...b];
const MODULE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  ...section(1, vector([
    [0x60, 2, I32, I32, 1, F32], // max
    [0x60, 3, I32, I32, F32, 1, I32], // find
    [0x60, 4, I32, I32, F32, I32, 1, I32], // above
  ])),
  ...section(3, vector([[0], [1], [2]])),
  ...section(5, vector([[0x00, 1]])), // one memory, 1 page to start, grown on demand
  ...section(7, vector([[...name('memory'), 2, 0], [...name('max'), 0, 0], [...name('find'), 0, 1], [...name('above'), 0, 2]])),
  ...section(10, vector([body(maxBody), body(findBody), body(aboveBody)])),
]);

interface Exports {
  memory: WebAssembly.Memory;
  max(ptr: number, n: number): number;
  find(ptr: number, n: number, value: number): number;
  above(ptr: number, n: number, threshold: number, out: number): number;
}

const PAGE = 65536;

/**
 * One row of logits at a time, copied into WASM memory (a memcpy, ~10 µs for
 * 100k floats). Layout: the row's floats, then room for one i32 per 4-float group.
 */
export class SimdScan {
  private floats = new Float32Array(0);
  private groups = new Int32Array(0);
  private capacity = 0;
  private length = 0;

  constructor(private readonly exports: Exports) {}

  /** Copies `values` in; the other methods then read this row. */
  load(values: Float32Array): void {
    const n = values.length;
    if (n > this.capacity) this.grow(n);
    this.floats.set(values);
    this.length = n;
  }

  /** The largest value (NaN ignored; -Infinity when every value is NaN or -Infinity). */
  max(): number {
    const n = this.length;
    const n16 = n - (n % 16);
    let m = this.exports.max(0, n16);
    const f = this.floats;
    for (let i = n16; i < n; i++) if (f[i] > m) m = f[i];
    return m;
  }

  /** The lowest index holding `value` (which must be present). */
  indexOf(value: number): number {
    const n4 = this.length - (this.length % 4);
    let i = this.exports.find(0, n4, value) >> 2;
    const f = this.floats;
    while (i < this.length && f[i] !== value) i++;
    if (i === this.length) throw new Error(`SimdScan.indexOf: ${value} is not in the row`);
    return i;
  }

  /**
   * Writes the ids of the entries > threshold to `out`, in id order, and
   * returns how many. The vector pass finds the 4-float groups with a member
   * above it, so a peaked row costs one vector pass and a few scalar checks.
   */
  collectAbove(threshold: number, out: Int32Array): number {
    const n = this.length;
    const n4 = n - (n % 4);
    // The vector compare is in float32: against the largest float32 below the
    // threshold it passes a superset; the exact test is the scalar one.
    const groupCount = this.exports.above(0, n4, below(threshold), this.capacity * 4);
    const f = this.floats;
    const groups = this.groups;
    let count = 0;
    for (let g = 0; g < groupCount; g++) {
      const first = groups[g] >> 2;
      for (let i = first; i < first + 4; i++) if (f[i] > threshold) out[count++] = i;
    }
    for (let i = n4; i < n; i++) if (f[i] > threshold) out[count++] = i;
    return count;
  }

  private grow(n: number): void {
    const capacity = Math.ceil(n / 16) * 16;
    const bytes = capacity * 4 + (capacity / 4) * 4;
    const memory = this.exports.memory;
    const pages = Math.ceil(bytes / PAGE) - memory.buffer.byteLength / PAGE;
    if (pages > 0) memory.grow(pages);
    this.capacity = capacity;
    this.floats = new Float32Array(memory.buffer, 0, capacity);
    this.groups = new Int32Array(memory.buffer, capacity * 4, capacity / 4);
  }
}

const f32 = new Float32Array(1);
const bits = new Int32Array(f32.buffer);
/** The largest float32 strictly below x (x finite or ±Infinity). */
function below(x: number): number {
  if (Number.isNaN(x)) return x;
  f32[0] = x;
  if (f32[0] < x) return f32[0];
  if (f32[0] === 0) return -1.4e-45; // the smallest negative subnormal
  if (f32[0] === -Infinity) return -Infinity;
  bits[0] += f32[0] > 0 ? -1 : 1;
  return f32[0];
}

function instantiate(): SimdScan | undefined {
  if (process.env.MMREC_NO_SIMD === '1' || !WebAssembly.validate(MODULE)) return undefined;
  const instance = new WebAssembly.Instance(new WebAssembly.Module(MODULE));
  return new SimdScan(instance.exports as unknown as Exports);
}

/** This thread's scanner (sampling is synchronous: one row at a time), or undefined without WebAssembly SIMD. */
export const simdScan: SimdScan | undefined = instantiate();
