/**
 * The grammar run as a pushdown automaton over symbols: bytes 0–255, and a
 * special token `id` as symbol 256 + id.
 *
 * A state is a small set of threads (alternatives still alive: `choice` and
 * repetition make the grammar nondeterministic, e.g. JSON Schema's anyOf). A
 * thread is a continuation: a persistent linked stack of frames, each a grammar
 * node and a position in it (the next item of a sequence, the offset in a byte
 * string, the UTF-8 bytes still owed inside `text`). A thread's top frame is
 * always a terminal; the END frame marks a thread that has matched the whole
 * grammar.
 *
 * A frame never changes meaning, so frames are shared between threads and
 * states, and every fact derived from one is memoised on it: its expansion into threads, its
 * successors per symbol, its key. A walk of the token trie therefore mostly
 * follows memoised links: stepping a thread that stays inside a string returns
 * the very same thread array, without allocating.
 */
import type { GrammarNode } from './grammar.ts';

export const SPECIAL_SYMBOL_BASE = 256;

export class Frame {
  /** Set on a `text` frame owing UTF-8 continuation bytes: the frame at the character boundary it returns to. */
  boundary: Frame | undefined = undefined;
  threads: readonly Frame[] | undefined = undefined;
  successors: Map<number, readonly Frame[]> | undefined = undefined;
  key: string | undefined = undefined;

  constructor(
    readonly node: GrammarNode | null,
    readonly pos: number,
    readonly next: Frame | null,
  ) {}
}

/** The thread that has matched the whole grammar. */
const END = new Frame(null, 0, null);
const NO_THREADS: readonly Frame[] = [];

/** The threads at the start of the grammar. */
export function initialThreads(root: GrammarNode): readonly Frame[] {
  return threadsOf(new Frame(root, 0, null));
}

/** True when no thread can consume anything more: the grammar is complete. */
export function isComplete(threads: readonly Frame[]): boolean {
  return threads.length > 0 && threads.every((t) => t === END);
}

/** The threads after consuming `symbol`; empty when no thread accepts it. */
export function step(threads: readonly Frame[], symbol: number): readonly Frame[] {
  if (threads.length === 1) return stepThread(threads[0], symbol);
  let first: readonly Frame[] = NO_THREADS;
  let merged: Frame[] | undefined;
  for (const t of threads) {
    const r = stepThread(t, symbol);
    if (r.length === 0) continue;
    if (first.length === 0) {
      first = r;
      continue;
    }
    merged ??= [...first];
    for (const x of r) if (!merged.includes(x)) merged.push(x);
  }
  return merged ?? first;
}

/** A canonical key for a thread set: equal keys accept exactly the same continuations. */
export function stateKey(threads: readonly Frame[]): string {
  return [...new Set(threads.map(frameKey))].sort().join(' ');
}

/** The thread set with duplicates (equal keys) removed, in key order. */
export function canonicalThreads(threads: readonly Frame[]): Frame[] {
  const byKey = new Map<string, Frame>();
  for (const t of threads) if (!byKey.has(frameKey(t))) byKey.set(frameKey(t), t);
  return [...byKey.keys()].sort().map((k) => byKey.get(k)!);
}

function frameKey(f: Frame): string {
  if (f.key === undefined) {
    const here = f === END ? 'end' : `${f.node!.id}.${f.pos}`;
    f.key = f.next ? `${here}/${frameKey(f.next)}` : here;
  }
  return f.key;
}

function stepThread(t: Frame, symbol: number): readonly Frame[] {
  t.successors ??= new Map();
  let r = t.successors.get(symbol);
  if (r === undefined) {
    const s = advance(t, symbol);
    r = s === undefined ? NO_THREADS : s === null ? threadsOf(null) : threadsOf(s);
    t.successors.set(symbol, r);
  }
  return r;
}

/** The terminal threads reachable from `f` without consuming input. */
function threadsOf(f: Frame | null): readonly Frame[] {
  if (f === null) return [END];
  if (f.threads === undefined) {
    const out: Frame[] = [];
    expand(f, out);
    f.threads = out;
  }
  return f.threads;
}

function addOne(out: Frame[], t: Frame): void {
  if (!out.includes(t)) out.push(t);
}

function addAll(out: Frame[], threads: readonly Frame[]): void {
  for (const t of threads) addOne(out, t);
}

function enter(node: GrammarNode, next: Frame | null, out: Frame[]): void {
  if (node.productive) expand(new Frame(node, 0, next), out);
}

function expand(f: Frame, out: Frame[]): void {
  const n = f.node!;
  switch (n.kind) {
    case 'seq':
      if (f.pos === n.items.length) addAll(out, threadsOf(f.next));
      else enter(n.items[f.pos], f.pos + 1 < n.items.length ? new Frame(n, f.pos + 1, f.next) : f.next, out);
      return;
    case 'choice':
      for (const o of n.options) enter(o, f.next, out);
      return;
    case 'star':
      addAll(out, threadsOf(f.next));
      enter(n.item, f, out);
      return;
    case 'ref':
      enter(n.target!, f.next, out);
      return;
    case 'text':
      addOne(out, f);
      if (f.pos === 0) addAll(out, threadsOf(f.next));
      return;
    case 'anyBytes':
      addOne(out, f);
      addAll(out, threadsOf(f.next));
      return;
    default:
      addOne(out, f);
  }
}

/**
 * The frame after a terminal consumes `symbol`: the advanced frame, null when
 * that was the grammar's last symbol, undefined when it does not accept it.
 */
function advance(t: Frame, symbol: number): Frame | null | undefined {
  if (t === END) return undefined;
  const n = t.node!;
  switch (n.kind) {
    case 'bytes':
      if (symbol !== n.bytes[t.pos]) return undefined;
      return t.pos + 1 < n.bytes.length ? new Frame(n, t.pos + 1, t.next) : t.next;
    case 'class':
      return symbol < SPECIAL_SYMBOL_BASE && n.accepts[symbol] === 1 ? t.next : undefined;
    case 'special':
      return symbol === SPECIAL_SYMBOL_BASE + n.token ? t.next : undefined;
    case 'anyBytes':
      return symbol < SPECIAL_SYMBOL_BASE ? t : undefined;
    case 'text':
      return advanceText(t, symbol, n.excluded);
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
  if (t.pos === 0) {
    if (b < 0x80) return excluded[b] === 1 ? undefined : t;
    const s = leadState(b);
    if (s < 0) return undefined;
    const pending = new Frame(t.node, s, t.next);
    pending.boundary = t;
    return pending;
  }
  const [lo, hi] = CONTINUATION[t.pos & 7];
  if (b < lo || b > hi) return undefined;
  const owed = (t.pos >> 3) - 1;
  if (owed === 0) return t.boundary;
  const pending = new Frame(t.node, owed << 3, t.next);
  pending.boundary = t.boundary;
  return pending;
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
