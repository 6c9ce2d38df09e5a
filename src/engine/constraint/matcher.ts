/**
 * The grammar run as a pushdown automaton over symbols: bytes 0–255, and a
 * special token `id` as symbol 256 + id.
 *
 * A state is a small set of threads (alternatives still alive: `choice` and
 * repetition make the grammar nondeterministic, e.g. JSON Schema's anyOf). A
 * thread is a continuation: a persistent linked stack of frames, each a grammar
 * node and a position in it (the next item of a sequence, the offset in a byte
 * string, the state of an automaton, the UTF-8 bytes still owed inside
 * `text`). A thread's top frame is always a terminal; the END frame marks a
 * thread that has matched the whole grammar.
 *
 * Frames are interned in an arena (one node, position and next frame: one
 * object), so equal threads are the same object, a state's key is its
 * threads' ids, and every fact derived from a frame is memoised on it: its
 * expansion into threads, its successors per symbol, and its cost — the fewest
 * symbols that complete the grammar from it. A walk of the token trie
 * therefore mostly follows memoised links: stepping a thread that stays inside
 * a string returns the very same thread array, without allocating. The arena
 * counts what it holds; once past its byte limit it stops interning and
 * memoising (see GrammarConstraint, which then starts a new one).
 */
import type { GrammarNode } from './grammar.ts';

export const SPECIAL_SYMBOL_BASE = 256;

/** Estimated bytes of a frame with its arena entry, of one memoised successor, of one thread reference. */
const FRAME_BYTES = 160;
const SUCCESSOR_BYTES = 48;
const THREAD_BYTES = 8;

export class Arena {
  private readonly frames = new Map<string, Frame>();
  /** Estimated bytes of the frames and memos held. */
  bytes = 0;
  private nextUid = 1;

  /**
   * `limit`: bytes past which nothing more is interned or memoised.
   * `maxThreads`: threads a state keeps; more (only heavily ambiguous grammars
   * get there) are cut to the first ones in canonical order, which keeps every
   * output valid and every mask's cost bounded.
   */
  constructor(
    readonly limit = Infinity,
    readonly maxThreads = Infinity,
  ) {}

  get full(): boolean {
    return this.bytes > this.limit;
  }

  get frameCount(): number {
    return this.frames.size;
  }

  frame(node: GrammarNode, pos: number, next: Frame | null): Frame {
    const key = `${node.id}.${pos}.${next === null ? -1 : next.uid}`;
    let f = this.frames.get(key);
    if (!f) {
      f = new Frame(node, pos, next, this, this.nextUid++);
      if (!this.full) {
        this.frames.set(key, f);
        this.bytes += FRAME_BYTES;
      }
    }
    return f;
  }

  /** The frame for the same thread in this arena (a thread of another arena, rebuilt bottom up). */
  adopt(f: Frame): Frame {
    if (f.arena === this || f === END) return f;
    const chain: Frame[] = [];
    for (let x: Frame | null = f; x !== null && x.arena !== this; x = x.next) chain.push(x);
    let next: Frame | null = chain[chain.length - 1].next;
    for (let i = chain.length - 1; i >= 0; i--) next = this.frame(chain[i].node!, chain[i].pos, next);
    return next!;
  }
}

export class Frame {
  threads: readonly Frame[] | undefined = undefined;
  successors: Map<number, readonly Frame[]> | undefined = undefined;
  /** The fewest symbols that complete the grammar from this thread (free text: none owed). */
  readonly cost: number;

  constructor(
    readonly node: GrammarNode | null,
    readonly pos: number,
    readonly next: Frame | null,
    readonly arena: Arena | null,
    readonly uid: number,
  ) {
    this.cost = node === null ? 0 : node.kind === 'anyBytes' ? 0 : localCost(node, pos) + (next === null ? 0 : next.cost);
  }
}

/** What a frame's own node still needs, below the frames under it. */
function localCost(n: GrammarNode, pos: number): number {
  switch (n.kind) {
    case 'seq':
      return n.rest[pos];
    case 'star':
      return 0;
    case 'bytes':
      return n.rest[pos];
    case 'class':
    case 'special':
      return 1;
    case 'text':
      return pos >> 3;
    case 'literals':
      return n.minRest[pos];
    case 'dfa': {
      const s = pos % n.dfa.size;
      const c = (pos - s) / n.dfa.size;
      return n.dfa.dist[s] + Math.max(0, n.minChars - c);
    }
    default:
      // a root frame on a choice or a reference
      return n.minLength;
  }
}

/** The thread that has matched the whole grammar. */
export const END = new Frame(null, 0, null, null, 0);
const NO_THREADS: readonly Frame[] = [];

/** The threads at the start of the grammar (a fresh arena unless one is given). */
export function initialThreads(root: GrammarNode, arena = new Arena()): readonly Frame[] {
  return threadsOf(arena.frame(root, 0, null));
}

/** True when no thread can consume anything more: the grammar is complete. */
export function isComplete(threads: readonly Frame[]): boolean {
  return threads.length > 0 && threads.every((t) => t === END);
}

/** The fewest symbols that complete the grammar from a state (Infinity for no thread). */
export function stateCost(threads: readonly Frame[]): number {
  let best = Infinity;
  for (const t of threads) if (t.cost < best) best = t.cost;
  return best;
}

/** The threads after consuming `symbol`; empty when no thread accepts it. */
export function step(threads: readonly Frame[], symbol: number): readonly Frame[] {
  if (threads.length === 1) return stepThread(threads[0], symbol);
  let first: readonly Frame[] = NO_THREADS;
  let merged: Frame[] | undefined;
  let seen: Set<Frame> | undefined;
  for (const t of threads) {
    const r = stepThread(t, symbol);
    if (r.length === 0) continue;
    if (first.length === 0) {
      first = r;
      continue;
    }
    if (!merged) {
      merged = [...first];
      seen = new Set(first);
    }
    for (const x of r) {
      if (!seen!.has(x)) {
        seen!.add(x);
        merged.push(x);
      }
    }
  }
  const out = merged ?? first;
  const max = out[0]?.arena?.maxThreads ?? Infinity;
  return out.length > max ? out.slice(0, max) : out;
}

/** A canonical key for a thread set: equal keys accept exactly the same continuations. */
export function stateKey(threads: readonly Frame[]): string {
  return canonicalThreads(threads)
    .map((t) => t.uid)
    .join(' ');
}

/** The thread set without duplicates, in id order. */
export function canonicalThreads(threads: readonly Frame[]): Frame[] {
  return [...new Set(threads)].sort((a, b) => a.uid - b.uid);
}

function stepThread(t: Frame, symbol: number): readonly Frame[] {
  // Most threads wait for one byte (a literal's next one): refusing the other 255 needs no memo.
  const n = t.node;
  if (n === null) return NO_THREADS;
  if (n.kind === 'bytes' ? n.bytes[t.pos] !== symbol : n.kind === 'class' ? symbol >= SPECIAL_SYMBOL_BASE || n.accepts[symbol] === 0 : n.kind === 'special' && symbol !== SPECIAL_SYMBOL_BASE + n.token) {
    return NO_THREADS;
  }
  let r = t.successors?.get(symbol);
  if (r === undefined) {
    const s = advance(t, symbol);
    r = s === undefined ? NO_THREADS : s === null ? threadsOf(null) : threadsOf(s);
    const arena = t.arena;
    if (arena && !arena.full) {
      t.successors ??= new Map();
      t.successors.set(symbol, r);
      arena.bytes += SUCCESSOR_BYTES;
    }
  }
  return r;
}

/** The terminal threads reachable from `f` without consuming input. */
function threadsOf(f: Frame | null): readonly Frame[] {
  if (f === null) return [END];
  if (f.threads !== undefined) return f.threads;
  const out: Frame[] = [];
  expand(f, out, new Set());
  const arena = f.arena!;
  if (!arena.full) {
    f.threads = out;
    arena.bytes += THREAD_BYTES * out.length + 16;
  }
  return out;
}

function addOne(out: Frame[], seen: Set<Frame>, t: Frame): void {
  if (!seen.has(t)) {
    seen.add(t);
    out.push(t);
  }
}

function addAll(out: Frame[], seen: Set<Frame>, threads: readonly Frame[]): void {
  for (const t of threads) addOne(out, seen, t);
}

function enter(node: GrammarNode, next: Frame | null, arena: Arena, out: Frame[], seen: Set<Frame>): void {
  if (node.productive) expand(arena.frame(node, 0, next), out, seen);
}

function expand(f: Frame, out: Frame[], seen: Set<Frame>): void {
  const n = f.node!;
  const arena = f.arena!;
  switch (n.kind) {
    case 'seq':
      if (f.pos === n.items.length) addAll(out, seen, threadsOf(f.next));
      else enter(n.items[f.pos], f.pos + 1 < n.items.length ? arena.frame(n, f.pos + 1, f.next) : f.next, arena, out, seen);
      return;
    case 'choice':
      for (const o of n.options) enter(o, f.next, arena, out, seen);
      return;
    case 'star':
      addAll(out, seen, threadsOf(f.next));
      enter(n.item, f, arena, out, seen);
      return;
    case 'ref':
      enter(n.target!, f.next, arena, out, seen);
      return;
    case 'text':
      addOne(out, seen, f);
      if (f.pos === 0) addAll(out, seen, threadsOf(f.next));
      return;
    case 'anyBytes':
      addOne(out, seen, f);
      addAll(out, seen, threadsOf(f.next));
      return;
    case 'literals':
      if (n.trie.childCount[f.pos] > 0) addOne(out, seen, f);
      if (n.trie.tokenAt[f.pos] >= 0) addAll(out, seen, threadsOf(f.next));
      return;
    case 'dfa': {
      const size = n.dfa.size;
      const s = f.pos % size;
      const c = (f.pos - s) / size;
      // More input: inside a character, or at a boundary with characters left.
      if (!n.dfa.boundary[s] || c < n.maxChars) addOne(out, seen, f);
      if (n.dfa.accept[s] && c >= n.minChars) addAll(out, seen, threadsOf(f.next));
      return;
    }
    default:
      addOne(out, seen, f);
  }
}

/**
 * The frame after a terminal consumes `symbol`: the advanced frame, null when
 * that was the grammar's last symbol, undefined when it does not accept it.
 */
function advance(t: Frame, symbol: number): Frame | null | undefined {
  if (t === END) return undefined;
  const n = t.node!;
  const arena = t.arena!;
  switch (n.kind) {
    case 'bytes':
      if (symbol !== n.bytes[t.pos]) return undefined;
      return t.pos + 1 < n.bytes.length ? arena.frame(n, t.pos + 1, t.next) : t.next;
    case 'class':
      return symbol < SPECIAL_SYMBOL_BASE && n.accepts[symbol] === 1 ? t.next : undefined;
    case 'special':
      return symbol === SPECIAL_SYMBOL_BASE + n.token ? t.next : undefined;
    case 'anyBytes':
      return symbol < SPECIAL_SYMBOL_BASE ? t : undefined;
    case 'text':
      return advanceText(t, symbol, n.excluded);
    case 'literals': {
      if (symbol >= SPECIAL_SYMBOL_BASE) return undefined;
      const { firstChild, childCount, edgeByte } = n.trie;
      let lo = firstChild[t.pos];
      let hi = lo + childCount[t.pos] - 1;
      while (lo <= hi) {
        const mid = (lo + hi) >>> 1;
        if (edgeByte[mid] === symbol) return arena.frame(n, mid, t.next);
        if (edgeByte[mid] < symbol) lo = mid + 1;
        else hi = mid - 1;
      }
      return undefined;
    }
    case 'dfa': {
      if (symbol >= SPECIAL_SYMBOL_BASE) return undefined;
      const dfa = n.dfa;
      const s = t.pos % dfa.size;
      const c = (t.pos - s) / dfa.size;
      if (dfa.boundary[s] && c >= n.maxChars) return undefined;
      const to = dfa.next(s, symbol);
      if (to < 0) return undefined;
      const count = dfa.boundary[to] && c < n.countCap ? c + 1 : c;
      return arena.frame(n, count * dfa.size + to, t.next);
    }
    default:
      throw new Error(`${n.kind} is not a terminal`);
  }
}

/**
 * UTF-8 inside `text`: pos 0 is a character boundary; otherwise pos encodes the
 * continuation bytes still owed (pos >> 3) and the range the next one must fall
 * in (pos & 7, see CONTINUATION), which excludes overlong forms, surrogates and
 * code points above U+10FFFF.
 */
const CONTINUATION: ReadonlyArray<readonly [number, number]> = [
  [0x80, 0xbf],
  [0xa0, 0xbf], // after E0
  [0x80, 0x9f], // after ED
  [0x90, 0xbf], // after F0
  [0x80, 0x8f], // after F4
];

function leadState(b: number): number {
  if (b >= 0xc2 && b <= 0xdf) return (1 << 3) | 0;
  if (b === 0xe0) return (2 << 3) | 1;
  if (b === 0xed) return (2 << 3) | 2;
  if (b >= 0xe1 && b <= 0xef) return (2 << 3) | 0;
  if (b === 0xf0) return (3 << 3) | 3;
  if (b >= 0xf1 && b <= 0xf3) return (3 << 3) | 0;
  if (b === 0xf4) return (3 << 3) | 4;
  return -1;
}

function advanceText(t: Frame, b: number, excluded: Uint8Array): Frame | undefined {
  if (b >= SPECIAL_SYMBOL_BASE) return undefined;
  const arena = t.arena!;
  if (t.pos === 0) {
    if (b < 0x80) return excluded[b] === 1 ? undefined : t;
    const s = leadState(b);
    if (s < 0) return undefined;
    return arena.frame(t.node!, s, t.next);
  }
  const [lo, hi] = CONTINUATION[t.pos & 7];
  if (b < lo || b > hi) return undefined;
  const owed = (t.pos >> 3) - 1;
  // Back at the character boundary: the frame at position 0 (the same object, interned).
  return arena.frame(t.node!, owed === 0 ? 0 : owed << 3, t.next);
}

/** True when `bytes` are whole UTF-8 characters, none an excluded ASCII byte: such a token keeps a `text` thread where it is. */
export function isWholeText(bytes: Uint8Array, excluded: Uint8Array): boolean {
  let owed = 0;
  let range = 0;
  for (const b of bytes) {
    if (owed > 0) {
      const [lo, hi] = CONTINUATION[range];
      if (b < lo || b > hi) return false;
      owed--;
      range = 0;
    } else if (b < 0x80) {
      if (excluded[b] === 1) return false;
    } else {
      const s = leadState(b);
      if (s < 0) return false;
      owed = s >> 3;
      range = s & 7;
    }
  }
  return owed === 0;
}

/** The bytes a grammar node's texts can start with (the node must have been checked: see GrammarBuilder.check). */
export function firstBytes(node: GrammarNode): number[] {
  const threads = initialThreads(node);
  const out: number[] = [];
  for (let b = 0; b < SPECIAL_SYMBOL_BASE; b++) if (step(threads, b).length > 0) out.push(b);
  return out;
}
