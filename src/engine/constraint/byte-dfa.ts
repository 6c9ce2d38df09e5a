/**
 * Deterministic automata over bytes, for the regular parts of a grammar (a
 * string's pattern or format, a number's range): one automaton state is one
 * thread of the pushdown automaton, however many alternatives the regular
 * expression had, so a mask walk steps one table lookup per byte.
 *
 * Built from a nondeterministic automaton (Thompson style: epsilon moves and
 * byte-range moves) by the subset construction over byte classes, intersected
 * by the product construction, minimised (Moore), and trimmed: every state
 * left can still reach acceptance, so the automaton never enters a dead end.
 * Sizes are bounded by the caller (DfaLimitError).
 *
 * States may be marked `boundary`: the bytes read so far are whole units of
 * whatever the bytes encode (characters of a JSON string body: see
 * chat/json-string.ts), which is where a character count advances.
 */

/** A set of tokens (by their bytes) that a state maps to itself: a vocabulary partition, built once per name (see mask.ts). */
export interface LoopClass {
  name: string;
  keep: (bytes: Uint8Array) => boolean;
}

/** An automaton over the limit it was built under. */
export class DfaLimitError extends Error {}

/** A nondeterministic automaton under construction. State 0 is created by the constructor. */
export class Nfa {
  private readonly eps: number[][] = [];
  /** Per state: lo, hi, target triples. */
  private readonly moves: number[][] = [];
  private readonly boundary: boolean[] = [];

  constructor(private readonly maxStates: number) {}

  get size(): number {
    return this.eps.length;
  }

  state(boundary = true): number {
    if (this.eps.length >= this.maxStates) throw new DfaLimitError(`more than ${this.maxStates} automaton states`);
    this.eps.push([]);
    this.moves.push([]);
    this.boundary.push(boundary);
    return this.eps.length - 1;
  }

  epsilon(from: number, to: number): void {
    this.eps[from].push(to);
  }

  move(from: number, lo: number, hi: number, to: number): void {
    this.moves[from].push(lo, hi, to);
  }

  /**
   * The deterministic automaton accepting what this one accepts from `start`
   * to `accept`. Its cost is bounded: at most `maxStates` states, and at most
   * 64 × maxStates state-set members gone through.
   */
  determinize(start: number, accept: number, maxStates: number): ByteDfa {
    let work = 0;
    const maxWork = 64 * maxStates;
    // Byte classes: bytes no move tells apart.
    const cuts = new Uint8Array(257);
    cuts[0] = 1;
    for (const m of this.moves) for (let i = 0; i < m.length; i += 3) (cuts[m[i]] = 1), (cuts[m[i + 1] + 1] = 1);
    const classOf = new Uint8Array(256);
    let classes = 0;
    for (let b = 0; b < 256; b++) {
      if (cuts[b] && b > 0) classes++;
      classOf[b] = classes;
    }
    classes++;
    const representative = new Int32Array(classes);
    for (let b = 255; b >= 0; b--) representative[classOf[b]] = b;

    const closure = (set: number[]): number[] => {
      work += set.length;
      if (work > maxWork) throw new DfaLimitError(`building the automaton took more than ${maxWork} steps`);
      const seen = new Set<number>(set);
      const stack = [...set];
      while (stack.length > 0) {
        const s = stack.pop()!;
        for (const t of this.eps[s]) if (!seen.has(t)) (seen.add(t), stack.push(t));
      }
      return [...seen].sort((a, b) => a - b);
    };
    const ids = new Map<string, number>();
    const sets: number[][] = [];
    const table: number[] = [];
    const add = (set: number[]): number => {
      const key = set.join(',');
      let id = ids.get(key);
      if (id === undefined) {
        if (sets.length >= maxStates) throw new DfaLimitError(`more than ${maxStates} automaton states`);
        id = sets.length;
        ids.set(key, id);
        sets.push(set);
      }
      return id;
    };
    add(closure([start]));
    for (let d = 0; d < sets.length; d++) {
      const set = sets[d];
      for (let c = 0; c < classes; c++) {
        const b = representative[c];
        const targets: number[] = [];
        work += set.length;
        for (const s of set) {
          const m = this.moves[s];
          for (let i = 0; i < m.length; i += 3) if (b >= m[i] && b <= m[i + 1]) targets.push(m[i + 2]);
        }
        table[d * classes + c] = targets.length === 0 ? -1 : add(closure(targets));
      }
    }
    const size = sets.length;
    const acceptFlags = new Uint8Array(size);
    const boundaryFlags = new Uint8Array(size);
    sets.forEach((set, d) => {
      acceptFlags[d] = set.includes(accept) ? 1 : 0;
      // A set mixes boundary and inner states only where no byte string leads to both; it is at a boundary if any member is.
      boundaryFlags[d] = set.some((s) => this.boundary[s]) ? 1 : 0;
    });
    return ByteDfa.trimmed(classOf, classes, Int32Array.from(table), acceptFlags, boundaryFlags);
  }
}

export class ByteDfa {
  readonly size: number;
  /** Min bytes from each state to acceptance. */
  readonly dist: Int32Array;
  /** Per state, the vocabulary partition (by name) whose tokens it maps to itself; set by whoever knows the encoding. */
  loops: Array<LoopClass | undefined> | undefined = undefined;

  private constructor(
    readonly classOf: Uint8Array,
    readonly classes: number,
    /** state * classes + class → state, or -1. */
    readonly table: Int32Array,
    readonly accept: Uint8Array,
    readonly boundary: Uint8Array,
  ) {
    this.size = accept.length;
    this.dist = distances(this);
  }

  /** The state after `byte`, or -1. State 0 is the start. */
  next(state: number, byte: number): number {
    return this.table[state * this.classes + this.classOf[byte]];
  }

  /** Transitions (state × class entries): what the automaton costs to keep and to build. */
  get cells(): number {
    return this.table.length;
  }

  accepts(bytes: Uint8Array): boolean {
    let s = 0;
    for (const b of bytes) {
      s = this.next(s, b);
      if (s < 0) return false;
    }
    return this.accept[s] === 1;
  }

  /** Accepts what both accept. */
  intersect(other: ByteDfa, maxStates: number): ByteDfa {
    return this.product(other, maxStates, false);
  }

  /** Accepts what either accepts. */
  union(other: ByteDfa, maxStates: number): ByteDfa {
    return this.product(other, maxStates, true);
  }

  /** The product automaton; `either`: union (a side may have died), else intersection. */
  private product(other: ByteDfa, maxStates: number, either: boolean): ByteDfa {
    const pairClass = new Map<number, number>();
    const classOf = new Uint8Array(256);
    for (let b = 0; b < 256; b++) {
      const key = this.classOf[b] * 256 + other.classOf[b];
      let c = pairClass.get(key);
      if (c === undefined) (c = pairClass.size), pairClass.set(key, c);
      classOf[b] = c;
    }
    const classes = pairClass.size;
    const pairs: Array<[number, number, number]> = [...pairClass.entries()].map(([key, c]) => [c, Math.floor(key / 256), key % 256]);
    pairs.sort((x, y) => x[0] - y[0]);
    const ids = new Map<number, number>();
    const states: Array<[number, number]> = [];
    const add = (a: number, b: number): number => {
      const key = (a + 1) * (other.size + 1) + b + 1;
      let id = ids.get(key);
      if (id === undefined) {
        if (states.length >= maxStates) throw new DfaLimitError(`more than ${maxStates} automaton states`);
        id = states.length;
        ids.set(key, id);
        states.push([a, b]);
      }
      return id;
    };
    add(0, 0);
    const table: number[] = [];
    for (let d = 0; d < states.length; d++) {
      const [a, b] = states[d];
      for (const [c, ca, cb] of pairs) {
        const ta = a < 0 ? -1 : this.table[a * this.classes + ca];
        const tb = b < 0 ? -1 : other.table[b * other.classes + cb];
        table[d * classes + c] = either ? (ta < 0 && tb < 0 ? -1 : add(ta, tb)) : ta < 0 || tb < 0 ? -1 : add(ta, tb);
      }
    }
    const flag = (mine: Uint8Array, theirs: Uint8Array, a: number, b: number, dead: number) => (a < 0 ? dead : mine[a]) & (b < 0 ? dead : theirs[b]);
    const accept = Uint8Array.from(states, ([a, b]) => (either ? (a >= 0 && this.accept[a]) || (b >= 0 && other.accept[b]) ? 1 : 0 : flag(this.accept, other.accept, a, b, 0)));
    const boundary = Uint8Array.from(states, ([a, b]) => flag(this.boundary, other.boundary, a, b, 1));
    return ByteDfa.trimmed(classOf, classes, Int32Array.from(table), accept, boundary);
  }

  /**
   * Drops the states that cannot reach acceptance (so no walk ever enters a
   * dead end) and merges equivalent ones (Moore's partition refinement).
   * When the start state itself cannot accept, the result has one state, not
   * accepting: the empty language.
   */
  static trimmed(classOf: Uint8Array, classes: number, table: Int32Array, accept: Uint8Array, boundary: Uint8Array): ByteDfa {
    const size = accept.length;
    // Live: states that reach acceptance (reverse search).
    const reverse: number[][] = Array.from({ length: size }, () => []);
    for (let s = 0; s < size; s++) for (let c = 0; c < classes; c++) if (table[s * classes + c] >= 0) reverse[table[s * classes + c]].push(s);
    const live = new Uint8Array(size);
    const stack: number[] = [];
    for (let s = 0; s < size; s++) if (accept[s]) (live[s] = 1), stack.push(s);
    while (stack.length > 0) for (const p of reverse[stack.pop()!]) if (!live[p]) (live[p] = 1), stack.push(p);
    if (!live[0]) return new ByteDfa(new Uint8Array(256), 1, Int32Array.of(-1), Uint8Array.of(0), Uint8Array.of(1));
    // Moore: blocks by (accept, boundary), refined by the blocks the classes lead to.
    let block = new Int32Array(size).fill(-1);
    const initial = new Map<number, number>();
    for (let s = 0; s < size; s++) {
      if (!live[s]) continue;
      const key = accept[s] * 2 + boundary[s];
      if (!initial.has(key)) initial.set(key, initial.size);
      block[s] = initial.get(key)!;
    }
    let blocks = initial.size;
    for (;;) {
      const signatures = new Map<string, number>();
      const next = new Int32Array(size).fill(-1);
      for (let s = 0; s < size; s++) {
        if (!live[s]) continue;
        let sig = String(block[s]);
        for (let c = 0; c < classes; c++) {
          const t = table[s * classes + c];
          sig += ',' + (t >= 0 && live[t] ? block[t] : -1);
        }
        let id = signatures.get(sig);
        if (id === undefined) (id = signatures.size), signatures.set(sig, id);
        next[s] = id;
      }
      const stable = signatures.size === blocks;
      block = next;
      blocks = signatures.size;
      if (stable) break;
    }
    // Renumber so that the start state's block is 0, in order of first appearance from it.
    const order = new Int32Array(blocks).fill(-1);
    const representative: number[] = [];
    const queue = [0];
    order[block[0]] = 0;
    representative.push(0);
    for (let q = 0; q < queue.length; q++) {
      const s = queue[q];
      for (let c = 0; c < classes; c++) {
        const t = table[s * classes + c];
        if (t < 0 || !live[t] || order[block[t]] >= 0) continue;
        order[block[t]] = representative.length;
        representative.push(t);
        queue.push(t);
      }
    }
    const n = representative.length;
    const out = new Int32Array(n * classes);
    for (let d = 0; d < n; d++) {
      const s = representative[d];
      for (let c = 0; c < classes; c++) {
        const t = table[s * classes + c];
        out[d * classes + c] = t >= 0 && live[t] ? order[block[t]] : -1;
      }
    }
    return new ByteDfa(
      classOf,
      classes,
      out,
      Uint8Array.from(representative, (s) => accept[s]),
      Uint8Array.from(representative, (s) => boundary[s]),
    );
  }
}

/** Breadth-first distances to acceptance, over the reversed transitions. */
function distances(dfa: ByteDfa): Int32Array {
  const { size, classes, table, accept } = dfa;
  const reverse: number[][] = Array.from({ length: size }, () => []);
  for (let s = 0; s < size; s++) {
    for (let c = 0; c < classes; c++) {
      const t = table[s * classes + c];
      if (t >= 0) reverse[t].push(s);
    }
  }
  const dist = new Int32Array(size).fill(-1);
  const queue: number[] = [];
  for (let s = 0; s < size; s++) if (accept[s]) (dist[s] = 0), queue.push(s);
  for (let q = 0; q < queue.length; q++) {
    const t = queue[q];
    for (const s of reverse[t]) if (dist[s] < 0) (dist[s] = dist[t] + 1), queue.push(s);
  }
  return dist;
}
