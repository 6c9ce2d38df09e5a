/**
 * A small grammar language over bytes and special tokens, for constraints the
 * engine enforces token by token. It is context free (nodes may refer to one
 * another through `ref`, recursion included), so it can describe JSON shaped by
 * a JSON Schema; the engine runs it as a pushdown automaton (matcher.ts).
 *
 * Terminals: a byte string, a byte class, a special token, `text` (a run of
 * whole UTF-8 characters minus some ASCII bytes: the body of a quoted string),
 * `anyBytes` (unconstrained text), `literals` (one of a set of byte strings,
 * held in a trie: an enum is one terminal, not one alternative per value) and
 * `dfa` (a byte automaton: a string's pattern or format, a bounded number).
 * `text`, `anyBytes` and automaton states that loop on every character are
 * loops the mask computation knows how to skip (see mask.ts): that is what
 * keeps the cost of a step inside a string far below a walk of the whole
 * vocabulary.
 *
 * Every cost of building is bounded: the builder counts the bytes its nodes
 * take and stops at its limit; the checks are linear (a Knuth-style shortest
 * derivation for productivity and the minimum length, one depth-first search
 * for left recursion and branching).
 */
import type { ByteDfa } from './byte-dfa.ts';
import { ByteTrie } from './byte-trie.ts';

interface Base {
  /** Unique within its grammar; part of the automaton's state keys. */
  readonly id: number;
  /** Can derive at least one finite string (set by GrammarBuilder.check). */
  productive: boolean;
  /** The fewest symbols (bytes, special tokens) it derives; Infinity when unproductive (set by check). */
  minLength: number;
  /** How many automaton threads entering it opens at once (set by check; -1 before). */
  width: number;
}

export interface BytesNode extends Base {
  readonly kind: 'bytes';
  readonly bytes: Uint8Array;
  /** rest[p]: the fewest tokens that write bytes[p..] (a byte each without a vocabulary: see GrammarLimits.segment). */
  readonly rest: Int32Array;
}
export interface ClassNode extends Base {
  readonly kind: 'class';
  /** accepts[b] === 1 for each byte b of the class. */
  readonly accepts: Uint8Array;
}
export interface SpecialNode extends Base {
  readonly kind: 'special';
  /** The special token's id. */
  readonly token: number;
}
export interface SeqNode extends Base {
  readonly kind: 'seq';
  readonly items: readonly GrammarNode[];
  /** rest[p]: the fewest symbols items[p..] derive (set by check). */
  rest: number[];
}
export interface ChoiceNode extends Base {
  readonly kind: 'choice';
  readonly options: readonly GrammarNode[];
}
export interface StarNode extends Base {
  readonly kind: 'star';
  readonly item: GrammarNode;
}
export interface TextNode extends Base {
  readonly kind: 'text';
  /** excluded[b] === 1 for each ASCII byte that may not appear (bytes ≥ 0x80 form whole UTF-8 characters). */
  readonly excluded: Uint8Array;
  /** Identifies the excluded set, for the vocabulary's partition cache. */
  readonly className: string;
}
export interface AnyBytesNode extends Base {
  readonly kind: 'anyBytes';
}
export interface LiteralsNode extends Base {
  readonly kind: 'literals';
  /** The strings; a node with tokenAt ≥ 0 ends one. */
  readonly trie: ByteTrie;
  /** Per trie node, the fewest bytes to the end of a string. */
  readonly minRest: Int32Array;
}
export interface DfaNode extends Base {
  readonly kind: 'dfa';
  readonly dfa: ByteDfa;
  /**
   * Bounds on the characters read (states marked boundary end one); used only
   * with an automaton that accepts at every boundary and reads a one-byte
   * character from every boundary state (any JSON string body).
   */
  readonly minChars: number;
  readonly maxChars: number;
  /** The count kept in a position: maxChars, or minChars when unbounded (more makes no difference). */
  readonly countCap: number;
}
export interface RefNode extends Base {
  readonly kind: 'ref';
  target?: GrammarNode;
}

export type GrammarNode = BytesNode | ClassNode | SpecialNode | SeqNode | ChoiceNode | StarNode | TextNode | AnyBytesNode | LiteralsNode | DfaNode | RefNode;

/** A grammar that cannot be run: a reference never defined, or a loop that consumes nothing. */
export class GrammarError extends Error {}

/** A grammar over one of the builder's limits. */
export class GrammarLimitError extends GrammarError {
  constructor(
    message: string,
    readonly limit: 'bytes' | 'branching',
  ) {
    super(message);
  }
}

/** A grammar checked by GrammarBuilder.build, ready to run. */
export interface Grammar {
  readonly root: GrammarNode;
  /** The most threads one position of it opens at once (see GrammarBuilder.check). */
  readonly branching: number;
  /** Estimated bytes its nodes take. */
  readonly bytes: number;
}

export interface GrammarLimits {
  /** Estimated bytes of all nodes together (GrammarLimitError 'bytes' past it, as soon as a node is added). */
  maxBytes?: number;
  /** Threads one position may open at once (GrammarLimitError 'branching' from check). */
  maxBranching?: number;
  /**
   * The fewest tokens that write each suffix of a byte string (result[p] for
   * bytes[p..], result[length] = 0): with it, minimum lengths count tokens of
   * the literal parts rather than bytes (both are upper bounds on what a
   * completion needs, a token per byte being always possible; see matcher.ts).
   */
  segment?: (bytes: Uint8Array) => Int32Array;
}

export interface BuilderMark {
  readonly nodes: number;
  readonly bytes: number;
  readonly edges: number;
}

const encoder = new TextEncoder();
/** Estimated bytes of a node object, of one reference to a node (an item, an option). */
const NODE_BYTES = 96;
const REF_BYTES = 8;
/** Sequences shorter than this are merged into the sequence that contains them (fewer frames), longer ones are kept whole (no quadratic copying along a chain). */
const FLATTEN = 8;
const MAX_WIDTH = 2 ** 30;

export class GrammarBuilder {
  private readonly nodes: GrammarNode[] = [];
  /** Nodes below this index have been checked. */
  private checked = 0;
  /** Estimated bytes of the nodes so far. */
  usedBytes = 0;
  /** Sequence items and choice options so far (tests and benchmarks: the grammar's size is linear in the schema's). */
  edges = 0;
  /** Nodes the checks have gone through so far (each check: the new nodes, then those reachable from its root). */
  checkWork = 0;

  get nodeCount(): number {
    return this.nodes.length;
  }

  /** A point to roll back to (see rollback). */
  mark(): BuilderMark {
    return { nodes: this.nodes.length, bytes: this.usedBytes, edges: this.edges };
  }

  /**
   * Forgets the nodes added since `mark` (a schema given up on, to be
   * replaced by a looser one): nothing older refers to them, so they are
   * garbage; their bytes are given back.
   */
  rollback(mark: BuilderMark): void {
    this.nodes.length = mark.nodes;
    this.usedBytes = mark.bytes;
    this.edges = mark.edges;
    this.checked = Math.min(this.checked, mark.nodes);
  }

  constructor(readonly limits: GrammarLimits = {}) {}

  private add<T extends GrammarNode>(node: Omit<T, 'id' | 'productive' | 'minLength' | 'width'>, bytes = 0): T {
    this.charge(NODE_BYTES + bytes);
    const full = node as T;
    Object.assign(full, { id: this.nodes.length, productive: false, minLength: Infinity, width: -1 });
    this.nodes.push(full);
    return full;
  }

  private charge(bytes: number): void {
    this.usedBytes += bytes;
    const max = this.limits.maxBytes;
    if (max !== undefined && this.usedBytes > max) throw new GrammarLimitError(`the grammar would take more than ${max} bytes`, 'bytes');
  }

  /** Exactly these bytes (a string is taken as UTF-8). The empty string matches nothing-consumed. */
  bytes(value: string | Uint8Array): GrammarNode {
    const bytes = typeof value === 'string' ? encoder.encode(value) : value;
    if (bytes.length === 0) return this.seq();
    const rest = this.limits.segment ? this.limits.segment(bytes) : Int32Array.from({ length: bytes.length + 1 }, (_, p) => bytes.length - p);
    return this.add<BytesNode>({ kind: 'bytes', bytes, rest }, bytes.length * 5);
  }

  /** One byte among `chars` (ASCII). */
  oneOf(chars: string): ClassNode {
    const accepts = new Uint8Array(256);
    for (let i = 0; i < chars.length; i++) accepts[chars.charCodeAt(i)] = 1;
    return this.add<ClassNode>({ kind: 'class', accepts }, 256);
  }

  special(token: number): SpecialNode {
    return this.add<SpecialNode>({ kind: 'special', token });
  }

  seq(...items: GrammarNode[]): GrammarNode {
    const flat = items.flatMap((i) => (i.kind === 'seq' && i.items.length < FLATTEN ? i.items : [i]));
    if (flat.length === 1) return flat[0];
    this.edges += flat.length;
    return this.add<SeqNode>({ kind: 'seq', items: flat, rest: [] }, flat.length * REF_BYTES * 2);
  }

  /** One of the options; with none, a node that matches nothing (never productive). */
  choice(...options: GrammarNode[]): GrammarNode {
    if (options.length === 1) return options[0];
    this.edges += options.length;
    return this.add<ChoiceNode>({ kind: 'choice', options }, options.length * REF_BYTES);
  }

  optional(item: GrammarNode): GrammarNode {
    return this.choice(item, this.seq());
  }

  /** Zero or more of `item`, which must consume at least one byte. */
  star(item: GrammarNode): StarNode {
    return this.add<StarNode>({ kind: 'star', item });
  }

  /** Zero or more whole UTF-8 characters, none of them one of the ASCII `excluded` bytes. */
  text(excluded: (byte: number) => boolean): TextNode {
    const table = new Uint8Array(128);
    for (let b = 0; b < 128; b++) table[b] = excluded(b) ? 1 : 0;
    return this.add<TextNode>({ kind: 'text', excluded: table, className: `text:${Buffer.from(table).toString('hex')}` }, 128);
  }

  anyBytes(): AnyBytesNode {
    return this.add<AnyBytesNode>({ kind: 'anyBytes' });
  }

  /** One of `values` (non-empty byte strings), as one terminal; no value: matches nothing. */
  literals(values: readonly Uint8Array[]): GrammarNode {
    const distinct = new Map<string, Uint8Array>();
    for (const v of values) if (v.length > 0) distinct.set(Buffer.from(v).toString('latin1'), v);
    if (distinct.size === 0) return this.choice();
    if (distinct.size === 1) return this.bytes([...distinct.values()][0]);
    // Charged before the trie is built: its nodes are at most the bytes of the values.
    const total = [...distinct.values()].reduce((n, v) => n + v.length, 0);
    this.charge(total * 17);
    this.usedBytes -= total * 17;
    const trie = ByteTrie.build([...distinct.values()].map((bytes, id) => ({ id, bytes })));
    const minRest = new Int32Array(trie.nodeCount);
    for (let n = trie.nodeCount - 1; n >= 0; n--) {
      if (trie.tokenAt[n] >= 0) continue;
      let best = Infinity;
      for (let c = trie.firstChild[n]; c < trie.firstChild[n] + trie.childCount[n]; c++) best = Math.min(best, minRest[c] + 1);
      minRest[n] = best;
    }
    return this.add<LiteralsNode>({ kind: 'literals', trie, minRest }, trie.nodeCount * 17);
  }

  /** What the automaton accepts (an automaton accepting nothing: matches nothing); character bounds: see DfaNode. */
  dfa(dfa: ByteDfa, minChars = 0, maxChars = Infinity): GrammarNode {
    const countCap = Number.isFinite(maxChars) ? maxChars : minChars;
    return this.add<DfaNode>({ kind: 'dfa', dfa, minChars, maxChars, countCap }, dfa.cells * 4 + dfa.size * 16 + 256);
  }

  /** A node to be defined later with `define` (for recursion). */
  ref(): RefNode {
    return this.add<RefNode>({ kind: 'ref' });
  }

  define(ref: RefNode, target: GrammarNode): void {
    ref.target = target;
  }

  /**
   * Checks the nodes added since the last check and the grammar reachable
   * from `root`: every reference defined, no repeated item that can consume
   * nothing, no left recursion; marks the productive nodes (the automaton
   * never enters the others, so it never starts something it cannot finish),
   * each node's minimum length and branching. Throws GrammarError, or
   * GrammarLimitError when `root` opens more threads at once than allowed.
   * Returns root's branching: the widest node reachable from it.
   */
  check(root: GrammarNode): number {
    for (let i = this.checked; i < this.nodes.length; i++) {
      const n = this.nodes[i];
      if (n.kind === 'ref' && !n.target) throw new GrammarError(`reference node ${n.id} was never defined`);
    }
    minLengths(this.nodes, this.checked);
    for (let i = this.checked; i < this.nodes.length; i++) {
      const n = this.nodes[i];
      n.productive = n.minLength < Infinity;
      if (n.kind === 'star' && n.item.minLength === 0) throw new GrammarError('a repeated item must consume input');
      if (n.kind === 'seq') {
        const rest = new Array<number>(n.items.length + 1);
        rest[n.items.length] = 0;
        for (let p = n.items.length - 1; p >= 0; p--) rest[p] = rest[p + 1] + n.items[p].minLength;
        n.rest = rest;
      }
    }
    this.checkWork += this.nodes.length - this.checked;
    this.checked = this.nodes.length;
    const nodes = reachable(root);
    this.checkWork += nodes.length;
    leftRecursionAndWidth(nodes);
    let branching = 0;
    for (const n of nodes) branching = Math.max(branching, n.width);
    const max = this.limits.maxBranching;
    if (max !== undefined && branching > max) {
      throw new GrammarLimitError(`one position of the grammar opens ${branching >= MAX_WIDTH ? 'over a billion' : branching} alternatives at once, more than ${max}`, 'branching');
    }
    return branching;
  }

  build(root: GrammarNode): Grammar {
    const branching = this.check(root);
    return { root, branching, bytes: this.usedBytes };
  }
}

/**
 * Each new node's fewest derived symbols (Knuth's generalisation of
 * Dijkstra's algorithm: a sequence is the sum of its items, a choice the
 * least of its options), in O(E log V). Nodes below `from` are final already.
 */
function minLengths(nodes: GrammarNode[], from: number): void {
  const count = nodes.length - from;
  const pending = new Int32Array(count);
  const sum = new Float64Array(count);
  const done = new Uint8Array(count);
  const heap = new MinHeap();
  // Parents of each new node, in flat arrays (head / next links): one entry per occurrence as an item, option or target.
  const head = new Int32Array(count).fill(-1);
  const link: number[] = [];
  const parent: number[] = [];
  const addParent = (child: GrammarNode, p: number) => {
    const k = child.id - from;
    parent.push(p);
    link.push(head[k]);
    head[k] = parent.length - 1;
  };
  for (let i = from; i < nodes.length; i++) {
    const n = nodes[i];
    const k = i - from;
    switch (n.kind) {
      case 'seq': {
        let s = 0;
        for (const item of n.items) {
          if (item.id >= from) {
            pending[k]++;
            addParent(item, i);
          } else s += item.minLength;
        }
        sum[k] = s;
        if (pending[k] === 0 && s < Infinity) heap.push(s, i);
        break;
      }
      case 'choice': {
        let best = Infinity;
        for (const o of n.options) {
          if (o.id >= from) addParent(o, i);
          else best = Math.min(best, o.minLength);
        }
        if (best < Infinity) heap.push(best, i);
        break;
      }
      case 'ref':
        if (n.target!.id >= from) addParent(n.target!, i);
        else if (n.target!.minLength < Infinity) heap.push(n.target!.minLength, i);
        break;
      default:
        heap.push(leafLength(n), i);
    }
  }
  while (heap.size > 0) {
    const [value, i] = heap.pop();
    const k = i - from;
    if (done[k] || value === Infinity) continue;
    done[k] = 1;
    nodes[i].minLength = value;
    for (let e = head[k]; e >= 0; e = link[e]) {
      const p = parent[e];
      const pk = p - from;
      if (done[pk]) continue;
      if (nodes[p].kind === 'seq') {
        sum[pk] += value;
        if (--pending[pk] === 0) heap.push(sum[pk], p);
      } else heap.push(value, p);
    }
  }
}

function leafLength(n: GrammarNode): number {
  switch (n.kind) {
    case 'bytes':
      return n.rest[0];
    case 'class':
    case 'special':
      return 1;
    case 'literals':
      return n.minRest[0];
    case 'dfa': {
      const d = n.dfa.dist[0];
      return d < 0 ? Infinity : d + n.minChars;
    }
    default:
      // star, text, anyBytes: nothing
      return 0;
  }
}

class MinHeap {
  private readonly values: number[] = [];
  private readonly ids: number[] = [];

  get size(): number {
    return this.values.length;
  }

  push(value: number, id: number): void {
    const { values, ids } = this;
    let i = values.length;
    values.push(value);
    ids.push(id);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (values[p] <= value) break;
      values[i] = values[p];
      ids[i] = ids[p];
      i = p;
    }
    values[i] = value;
    ids[i] = id;
  }

  pop(): [number, number] {
    const { values, ids } = this;
    const top: [number, number] = [values[0], ids[0]];
    const lastValue = values.pop()!;
    const lastId = ids.pop()!;
    const n = values.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const c = l + 1 < n && values[l + 1] < values[l] ? l + 1 : l;
        if (values[c] >= lastValue) break;
        values[i] = values[c];
        ids[i] = ids[c];
        i = c;
      }
      values[i] = lastValue;
      ids[i] = lastId;
    }
    return top;
  }
}

/** The nodes a node can start with (its first symbol may come from them). */
function leftChildren(n: GrammarNode): readonly GrammarNode[] {
  switch (n.kind) {
    case 'seq': {
      const out: GrammarNode[] = [];
      for (const item of n.items) {
        out.push(item);
        if (item.minLength !== 0) break;
      }
      return out;
    }
    case 'choice':
      return n.options;
    case 'star':
      return [n.item];
    case 'ref':
      return [n.target!];
    default:
      return [];
  }
}

/** Threads entering `n` opens, from its left children's (all final). */
function widthOf(n: GrammarNode): number {
  if (!n.productive) return 0;
  let w = 0;
  switch (n.kind) {
    case 'seq':
      for (const item of n.items) {
        w += item.width;
        if (item.minLength !== 0) break;
      }
      break;
    case 'choice':
      for (const o of n.options) if (o.productive) w += o.width;
      break;
    case 'star':
      w = n.item.productive ? n.item.width : 0;
      break;
    case 'ref':
      w = n.target!.width;
      break;
    default:
      w = 1;
  }
  return Math.min(w, MAX_WIDTH);
}

/**
 * A node that can reach itself without consuming input would send the
 * automaton's expansion into an endless loop (a schema whose `$ref` points back
 * to itself with no object or array in between, for one). Cycle search (DFS,
 * iterative: recursive schemas nest deeper than the call stack likes) over the
 * "can start with" edges; the same search computes each node's width in post
 * order (the edges form a DAG once no cycle is found). Nodes whose width is
 * known were searched by an earlier check.
 */
function leftRecursionAndWidth(nodes: readonly GrammarNode[]): void {
  const open = new Set<number>();
  for (const start of nodes) {
    if (start.width >= 0) continue;
    open.add(start.id);
    const stack = [{ node: start, children: leftChildren(start), next: 0 }];
    while (stack.length > 0) {
      const top = stack[stack.length - 1];
      if (top.next === top.children.length) {
        top.node.width = widthOf(top.node);
        open.delete(top.node.id);
        stack.pop();
        continue;
      }
      const child = top.children[top.next++];
      if (open.has(child.id)) throw new GrammarError('the grammar can loop back to the same place without consuming input (left recursion)');
      if (child.width < 0) {
        open.add(child.id);
        stack.push({ node: child, children: leftChildren(child), next: 0 });
      }
    }
  }
}

function reachable(root: GrammarNode): GrammarNode[] {
  const seen = new Set<number>([root.id]);
  const out: GrammarNode[] = [root];
  for (let i = 0; i < out.length; i++) {
    const n = out[i];
    const children = n.kind === 'seq' ? n.items : n.kind === 'choice' ? n.options : n.kind === 'star' ? [n.item] : n.kind === 'ref' ? [n.target!] : [];
    for (const c of children) {
      if (!seen.has(c.id)) {
        seen.add(c.id);
        out.push(c);
      }
    }
  }
  return out;
}
