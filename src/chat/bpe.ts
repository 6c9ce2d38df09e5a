/**
 * Byte-pair encoding with tiktoken's exact result and a bounded cost.
 *
 * tiktoken merges, in every round, the adjacent pair of parts with the lowest
 * rank (the leftmost on a tie) until no pair is in the vocabulary. js-tiktoken
 * does that by rescanning the whole piece after every merge, which is
 * quadratic in the piece: a regex piece is a whole run of letters, spaces or
 * punctuation, so 6 KB of "aaaa…" took 11 s of the event loop. Here a piece
 * of more than a few dozen bytes is merged with a heap of candidate pairs
 * ordered by (rank, position): each round pops the same pair tiktoken's scan
 * would pick, so the tokens are identical, in O(n log n).
 *
 * `steps()` is a generator that yields every WORK_PER_YIELD units of work, so
 * a caller can interleave a long encode with other work (ChatTokenizer's
 * encodeTextAsync gives the event loop a turn every few milliseconds).
 */

/** Pieces up to this many bytes use the simple scan (faster for the short pieces of ordinary text). */
const SCAN_MAX_BYTES = 48;
/** Units (bytes scanned, heap operations) between two yields of steps(). */
export const WORK_PER_YIELD = 4096;

const textEncoder = new TextEncoder();

/** A vocabulary of byte strings, keyed by their latin1 rendering (one char per byte). */
export class BytePairEncoder {
  private readonly ranks: Map<string, number>;
  /** The longest token in bytes: longer spans are never looked up. */
  private readonly maxTokenBytes: number;
  private readonly pattern: RegExp;

  constructor(tokens: Iterable<[number, Uint8Array]>, pattern: string) {
    this.ranks = new Map();
    let longest = 1;
    for (const [rank, bytes] of tokens) {
      this.ranks.set(latin1(bytes), rank);
      if (bytes.length > longest) longest = bytes.length;
    }
    this.maxTokenBytes = longest;
    this.pattern = new RegExp(pattern, 'gu');
  }

  /** All tokens of `text`, at once. */
  encode(text: string): number[] {
    const it = this.steps(text);
    for (;;) {
      const r = it.next();
      if (r.done) return r.value;
    }
  }

  /** The encoding as resumable work: yields between units of work, returns the tokens. */
  *steps(text: string): Generator<void, number[]> {
    const out: number[] = [];
    const pattern = new RegExp(this.pattern);
    let work = 0;
    for (const match of text.matchAll(pattern)) {
      const bytes = textEncoder.encode(match[0]);
      const key = latin1(bytes);
      work += bytes.length;
      const whole = this.ranks.get(key);
      if (whole !== undefined) out.push(whole);
      else if (bytes.length <= SCAN_MAX_BYTES) this.mergeByScan(key, out);
      else work = yield* this.mergeByHeap(key, out, work);
      if (work >= WORK_PER_YIELD) {
        work = 0;
        yield;
      }
    }
    return out;
  }

  private rank(key: string, start: number, end: number): number {
    if (end - start > this.maxTokenBytes) return Infinity;
    return this.ranks.get(key.slice(start, end)) ?? Infinity;
  }

  /** tiktoken's own loop: after each merge, rescan for the lowest-ranked pair. */
  private mergeByScan(key: string, out: number[]): void {
    const starts: number[] = [];
    for (let i = 0; i <= key.length; i++) starts.push(i);
    for (;;) {
      let best = Infinity;
      let at = -1;
      for (let i = 0; i + 2 < starts.length; i++) {
        const r = this.rank(key, starts[i], starts[i + 2]);
        if (r < best) {
          best = r;
          at = i;
        }
      }
      if (at < 0) break;
      starts.splice(at + 1, 1);
    }
    for (let i = 0; i + 1 < starts.length; i++) out.push(this.tokenOf(key, starts[i], starts[i + 1]));
  }

  /**
   * The same merges, found with a heap. Parts are named by their first byte's
   * offset (a merge keeps the left part's name), so ordering candidates by
   * (rank, name) is ordering them as the scan would. A candidate is stale once
   * its left part changed (its version moved on) or died.
   */
  private *mergeByHeap(key: string, out: number[], work: number): Generator<void, number> {
    const n = key.length;
    const next = new Int32Array(n);
    const prev = new Int32Array(n);
    const version = new Int32Array(n);
    const dead = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      next[i] = i + 1; // n: no next part
      prev[i] = i - 1;
    }
    const end = (part: number) => (next[part] < n ? next[next[part]] : n);
    const heap = new PairHeap(n);
    const offer = (part: number) => {
      if (next[part] >= n) return;
      const r = this.rank(key, part, end(part));
      if (r !== Infinity) heap.push(r, part, version[part]);
    };
    for (let i = 0; i + 1 < n; i++) offer(i);
    while (heap.size > 0) {
      const { part, ver } = heap.pop();
      if (++work >= WORK_PER_YIELD) {
        work = 0;
        yield;
      }
      if (dead[part] || ver !== version[part]) continue;
      const right = next[part];
      dead[right] = 1;
      next[part] = next[right];
      if (next[right] < n) prev[next[right]] = part;
      version[part]++;
      offer(part);
      const left = prev[part];
      if (left >= 0) {
        version[left]++;
        offer(left);
      }
    }
    for (let part = 0; part < n; part = next[part]) out.push(this.tokenOf(key, part, next[part]));
    return work;
  }

  private tokenOf(key: string, start: number, end: number): number {
    const rank = this.ranks.get(key.slice(start, end));
    // Every single byte is a token, and merges only make tokens: a miss is a vocabulary without its bytes.
    if (rank === undefined) throw new Error(`the vocabulary has no token for bytes ${start}–${end} of a piece`);
    return rank;
  }
}

/** A min-heap of (rank, part, version), ties broken by the smaller part. */
class PairHeap {
  private ranks: Float64Array;
  private parts: Int32Array;
  private versions: Int32Array;
  size = 0;

  constructor(capacity: number) {
    this.ranks = new Float64Array(Math.max(16, capacity));
    this.parts = new Int32Array(this.ranks.length);
    this.versions = new Int32Array(this.ranks.length);
  }

  private less(a: number, b: number): boolean {
    return this.ranks[a] < this.ranks[b] || (this.ranks[a] === this.ranks[b] && this.parts[a] < this.parts[b]);
  }

  private swap(a: number, b: number): void {
    const r = this.ranks[a];
    this.ranks[a] = this.ranks[b];
    this.ranks[b] = r;
    const p = this.parts[a];
    this.parts[a] = this.parts[b];
    this.parts[b] = p;
    const v = this.versions[a];
    this.versions[a] = this.versions[b];
    this.versions[b] = v;
  }

  push(rank: number, part: number, version: number): void {
    if (this.size === this.ranks.length) this.grow();
    let i = this.size++;
    this.ranks[i] = rank;
    this.parts[i] = part;
    this.versions[i] = version;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  pop(): { part: number; ver: number } {
    const top = { part: this.parts[0], ver: this.versions[0] };
    this.size--;
    if (this.size > 0) {
      this.ranks[0] = this.ranks[this.size];
      this.parts[0] = this.parts[this.size];
      this.versions[0] = this.versions[this.size];
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.size && this.less(l, m)) m = l;
        if (r < this.size && this.less(r, m)) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return top;
  }

  private grow(): void {
    const grow = <T extends Float64Array | Int32Array>(a: T): T => {
      const b = new (a.constructor as new (n: number) => T)(a.length * 2);
      b.set(a);
      return b;
    };
    this.ranks = grow(this.ranks);
    this.parts = grow(this.parts);
    this.versions = grow(this.versions);
  }
}

function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}
