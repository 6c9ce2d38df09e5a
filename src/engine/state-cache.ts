/**
 * The conversation state cache: recurrent states keyed by the exact token
 * prefix that produced them, so a request whose prompt continues an earlier one
 * restores the longest cached prefix and prefills only the rest.
 *
 * Keys live in a radix trie of token ids: lookup walks the prompt once (O(prompt)),
 * every hit is exact (no hashing, no collisions), and a conversation's prefixes
 * share their tokens (memory O(distinct tokens), not O(prefixes × length)).
 * States are never mutated after they are stored, so a hit hands out the stored
 * state itself. The cache is bounded by bytes (states + key tokens + a per-node
 * overhead) and evicts the least recently used entry first. Optionally it is
 * saved to a directory on close (and periodically), and loaded back at start,
 * so a restart keeps warm conversations.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { RecurrentState, StateSpec } from './state.ts';

/** Bytes charged per trie node besides its tokens (object, Map slot, typed array header). */
const NODE_OVERHEAD = 160;
/** Version 2 ends with the SHA-256 of everything before it: a file damaged anywhere is refused whole. */
const MAGIC = 'MMREC-STATE-CACHE 2\n';
const DIGEST_BYTES = 32;

/** True when every element of the state is a finite number (float16 states are raw bits: exponent all ones is Inf/NaN). */
export function isFiniteState(state: RecurrentState): boolean {
  for (const t of state.tensors) {
    if (t instanceof Uint16Array) {
      for (let i = 0; i < t.length; i++) if ((t[i] & 0x7c00) === 0x7c00) return false;
    } else {
      for (let i = 0; i < t.length; i++) if (!Number.isFinite(t[i])) return false;
    }
  }
  return true;
}

interface Node {
  /** Tokens from the parent to this node. */
  edge: Int32Array;
  parent?: Node;
  children: Map<number, Node>;
  entry?: Entry;
}

interface Entry {
  node: Node;
  state: RecurrentState;
  bytes: number;
}

export interface CacheHit {
  /** Prompt tokens the state covers. */
  length: number;
  state: RecurrentState;
}

export interface StateCacheStats {
  entries: number;
  bytes: number;
  maxBytes: number;
  hits: number;
  misses: number;
  /** Prompt tokens restored from the cache, over all hits. */
  hitTokens: number;
  inserts: number;
  evictions: number;
}

export interface StateCacheOptions {
  maxBytes: number;
  /** Directory to save to and load from; absent = memory only. */
  dir?: string;
  /** Names the file in `dir` and guards it: a file written for another model (or graph) is ignored. */
  modelKey: string;
  /** File name stem in `dir` (the model id). */
  name: string;
}

function stateBytes(state: RecurrentState): number {
  return state.tensors.reduce((n, t) => n + t.byteLength, 0);
}

export class StateCache {
  private readonly root: Node = { edge: new Int32Array(0), children: new Map() };
  /** Map order is recency order: the first entry is the least recently used. */
  private readonly lru = new Map<Node, Entry>();
  private bytesUsed = 0;
  private counters = { hits: 0, misses: 0, hitTokens: 0, inserts: 0, evictions: 0 };
  private dirty = false;

  constructor(
    readonly specs: readonly StateSpec[],
    readonly options: StateCacheOptions,
  ) {}

  get bytes(): number {
    return this.bytesUsed;
  }

  get size(): number {
    return this.lru.size;
  }

  stats(): StateCacheStats {
    return { entries: this.lru.size, bytes: this.bytesUsed, maxBytes: this.options.maxBytes, ...this.counters };
  }

  /** The longest cached prefix of `tokens` no longer than `maxLength`; counts a hit or a miss. */
  lookup(tokens: readonly number[], maxLength: number): CacheHit | undefined {
    let node = this.root;
    let i = 0;
    let best: { node: Node; length: number } | undefined;
    while (i < maxLength) {
      const child = node.children.get(tokens[i]);
      if (!child) break;
      const edge = child.edge;
      if (i + edge.length > maxLength) break;
      let k = 1; // edge[0] === tokens[i] by the Map key
      while (k < edge.length && tokens[i + k] === edge[k]) k++;
      if (k < edge.length) break;
      i += k;
      node = child;
      if (node.entry) best = { node, length: i };
    }
    if (!best) {
      this.counters.misses++;
      return undefined;
    }
    const entry = best.node.entry!;
    this.touch(entry);
    this.counters.hits++;
    this.counters.hitTokens += best.length;
    return { length: best.length, state: entry.state };
  }

  /** Whether exactly this prefix is cached (no statistics, no recency change). */
  has(tokens: readonly number[], length = tokens.length): boolean {
    let node = this.root;
    let i = 0;
    while (i < length) {
      const child = node.children.get(tokens[i]);
      if (!child || i + child.edge.length > length) return false;
      for (let k = 0; k < child.edge.length; k++) if (child.edge[k] !== tokens[i + k]) return false;
      i += child.edge.length;
      node = child;
    }
    return node.entry !== undefined;
  }

  /** Stores the state after `tokens[0..length)`. The state must not be modified afterwards. */
  insert(tokens: readonly number[], length: number, state: RecurrentState): void {
    if (length < 1 || state.batch !== 1) return;
    // A state that is not finite would poison every conversation continued from it: never kept.
    if (!isFiniteState(state)) return;
    const sBytes = stateBytes(state);
    // An entry that alone would not fit is not stored (nor does it evict anything).
    if (sBytes + length * 4 + NODE_OVERHEAD > this.options.maxBytes) return;
    const node = this.nodeFor(tokens, length);
    if (node.entry) {
      this.touch(node.entry); // same tokens, same state: keep the one we have
      return;
    }
    const entry: Entry = { node, state, bytes: sBytes };
    node.entry = entry;
    this.lru.set(node, entry);
    this.bytesUsed += sBytes;
    this.counters.inserts++;
    this.dirty = true;
    this.evictTo(this.options.maxBytes, entry);
  }

  /** Drops least recently used entries until the cache holds at most `maxBytes` (never `keep`). */
  private evictTo(maxBytes: number, keep?: Entry): void {
    for (const entry of this.lru.values()) {
      if (this.bytesUsed <= maxBytes) break;
      if (entry === keep) continue;
      this.remove(entry);
      this.counters.evictions++;
    }
  }

  private touch(entry: Entry): void {
    this.lru.delete(entry.node);
    this.lru.set(entry.node, entry);
  }

  /** Finds or creates the node for `tokens[0..length)`, splitting an edge where the key ends or diverges inside it. */
  private nodeFor(tokens: readonly number[], length: number): Node {
    let node = this.root;
    let i = 0;
    while (i < length) {
      const child = node.children.get(tokens[i]);
      if (!child) {
        const leaf: Node = { edge: Int32Array.from(tokens.slice(i, length)), parent: node, children: new Map() };
        node.children.set(tokens[i], leaf);
        this.bytesUsed += leaf.edge.byteLength + NODE_OVERHEAD;
        return leaf;
      }
      const edge = child.edge;
      let k = 1;
      while (k < edge.length && i + k < length && tokens[i + k] === edge[k]) k++;
      if (k === edge.length) {
        node = child;
        i += k;
        continue;
      }
      // Split child's edge after k tokens: node → mid → child.
      const mid: Node = { edge: edge.slice(0, k), parent: node, children: new Map() };
      child.edge = edge.slice(k);
      child.parent = mid;
      mid.children.set(child.edge[0], child);
      node.children.set(tokens[i], mid);
      this.bytesUsed += NODE_OVERHEAD;
      node = mid;
      i += k;
    }
    return node;
  }

  private remove(entry: Entry): void {
    const node = entry.node;
    node.entry = undefined;
    this.lru.delete(node);
    this.bytesUsed -= entry.bytes;
    this.dirty = true;
    this.prune(node);
  }

  /** Removes empty leaves upwards and merges a stateless node into its only child. */
  private prune(start: Node): void {
    let node: Node | undefined = start;
    while (node && node !== this.root && !node.entry) {
      const parent: Node = node.parent!;
      if (node.children.size === 0) {
        parent.children.delete(node.edge[0]);
        this.bytesUsed -= node.edge.byteLength + NODE_OVERHEAD;
        node = parent;
        continue;
      }
      if (node.children.size === 1) {
        const [only] = node.children.values();
        const merged = new Int32Array(node.edge.length + only.edge.length);
        merged.set(node.edge);
        merged.set(only.edge, node.edge.length);
        only.edge = merged;
        only.parent = parent;
        parent.children.set(merged[0], only);
        this.bytesUsed -= NODE_OVERHEAD;
      }
      break;
    }
  }

  private get file(): string | undefined {
    const { dir, name } = this.options;
    return dir ? join(dir, `${name.replace(/[^A-Za-z0-9._-]/g, '_')}.statecache`) : undefined;
  }

  /**
   * Writes the cache to its directory atomically: a temporary file, flushed to
   * disk, then renamed over the previous one. The trie is written node by node,
   * so shared prefixes are stored once; the file ends with a SHA-256 of its
   * contents. Returns the bytes written, or 0 when there is nothing new or no
   * directory. On failure (a read-only directory, a full disk) the temporary
   * file is removed, the previous file is left as it was, and the error is thrown.
   */
  save(): number {
    const file = this.file;
    if (!file || !this.dirty) return 0;
    const nodes: Array<[number, number]> = []; // [parent index, edge length]
    const edges: Int32Array[] = [];
    const index = new Map<Node, number>();
    const stack: Node[] = [...this.root.children.values()];
    while (stack.length > 0) {
      const node = stack.pop()!;
      index.set(node, nodes.length);
      nodes.push([node.parent === this.root ? -1 : index.get(node.parent!)!, node.edge.length]);
      edges.push(node.edge);
      stack.push(...node.children.values());
    }
    const entries = [...this.lru.keys()].map((n) => index.get(n)!); // least recently used first
    const header = Buffer.from(
      JSON.stringify({ modelKey: this.options.modelKey, specs: this.specs.map((s) => ({ dtype: s.dtype, rowSize: s.rowSize })), nodes, entries }),
    );
    const parts: Uint8Array[] = [Buffer.from(MAGIC), u32(header.length), header];
    for (const e of edges) parts.push(new Uint8Array(e.buffer, e.byteOffset, e.byteLength));
    for (const node of this.lru.keys()) for (const t of node.entry!.state.tensors) parts.push(new Uint8Array(t.buffer, t.byteOffset, t.byteLength));
    const digest = createHash('sha256');
    for (const p of parts) digest.update(p);
    parts.push(digest.digest());
    const tmp = `${file}.${process.pid}.tmp`;
    let written = 0;
    try {
      mkdirSync(this.options.dir!, { recursive: true });
      const fd = openSync(tmp, 'w');
      try {
        for (const p of parts) {
          for (let off = 0; off < p.byteLength; ) off += writeSync(fd, p, off);
          written += p.byteLength;
        }
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, file);
    } catch (e) {
      rmSync(tmp, { force: true });
      throw new Error(`cannot save the state cache to ${file}: ${(e as Error).message}`);
    }
    this.dirty = false;
    return written;
  }

  /**
   * Loads the saved cache, if there is one for this model. A missing file is an
   * empty cache; a file for another model or graph, or a damaged one (its
   * checksum does not match), is ignored (it is overwritten at the next save) and
   * the reason returned. A state that is not finite is never restored.
   * Temporary files left by a save that was interrupted are removed.
   */
  load(): { entries: number; ignored?: string; dropped?: number } {
    const file = this.file;
    if (!file) return { entries: 0 };
    this.removeStaleTemporaries(file);
    if (!existsSync(file)) return { entries: 0 };
    let data: Buffer;
    try {
      data = readFileSync(file);
    } catch (e) {
      return { entries: 0, ignored: `${file}: ${(e as Error).message}` };
    }
    try {
      if (data.subarray(0, MAGIC.length).toString() !== MAGIC) throw new Error('not a state cache file of this version');
      if (data.length < MAGIC.length + 4 + DIGEST_BYTES) throw new Error('truncated');
      const body = data.subarray(0, data.length - DIGEST_BYTES);
      if (!createHash('sha256').update(body).digest().equals(data.subarray(data.length - DIGEST_BYTES))) throw new Error('checksum mismatch');
      data = body;
      let at = MAGIC.length;
      const headerLength = data.readUInt32LE(at);
      at += 4;
      const header = JSON.parse(data.subarray(at, at + headerLength).toString()) as {
        modelKey: string;
        specs: Array<{ dtype: string; rowSize: number }>;
        nodes: Array<[number, number]>;
        entries: number[];
      };
      at += headerLength;
      if (header.modelKey !== this.options.modelKey) return { entries: 0, ignored: `${file} was written for another model (${header.modelKey})` };
      const specsMatch = header.specs.length === this.specs.length && header.specs.every((s, i) => s.dtype === this.specs[i].dtype && s.rowSize === this.specs[i].rowSize);
      if (!specsMatch) return { entries: 0, ignored: `${file} holds states of another shape` };
      // Copy out of the file buffer (its offsets need not be aligned) into arrays of our own.
      const take = (bytes: number): Uint8Array => {
        if (at + bytes > data.length) throw new Error('truncated');
        const out = new Uint8Array(bytes);
        out.set(data.subarray(at, at + bytes));
        at += bytes;
        return out;
      };
      const nodes: Node[] = [];
      for (const [parentIndex, edgeLength] of header.nodes) {
        const parent = parentIndex === -1 ? this.root : nodes[parentIndex];
        if (!parent || edgeLength < 1) throw new Error('bad node table');
        const edge = new Int32Array(take(edgeLength * 4).buffer);
        const node: Node = { edge, parent, children: new Map() };
        parent.children.set(edge[0], node);
        nodes.push(node);
        this.bytesUsed += edge.byteLength + NODE_OVERHEAD;
      }
      let dropped = 0;
      for (const i of header.entries) {
        const node = nodes[i];
        if (!node || node.entry) throw new Error('bad entry table');
        const tensors = this.specs.map((s) => {
          const raw = take(s.rowSize * (s.dtype === 'float16' ? 2 : 4));
          return s.dtype === 'float16' ? new Uint16Array(raw.buffer) : new Float32Array(raw.buffer);
        });
        const state = { batch: 1, tensors };
        if (!isFiniteState(state)) {
          dropped++;
          continue;
        }
        const entry: Entry = { node, state, bytes: stateBytes(state) };
        node.entry = entry;
        this.lru.set(node, entry);
        this.bytesUsed += entry.bytes;
      }
      if (at !== data.length) throw new Error('trailing bytes');
      // Nodes without entries or children (dropped states; a damaged file) are pruned, then the budget applies.
      for (const node of nodes) if (!node.entry && node.children.size === 0 && node.parent) this.prune(node);
      this.evictTo(this.options.maxBytes);
      this.dirty = dropped > 0;
      return dropped > 0 ? { entries: this.lru.size, dropped } : { entries: this.lru.size };
    } catch (e) {
      this.clear();
      return { entries: 0, ignored: `${file} is damaged (${(e as Error).message})` };
    }
  }

  /** `<file>.<pid>.tmp` files are only ever a save that did not finish. */
  private removeStaleTemporaries(file: string): void {
    const dir = this.options.dir!;
    const stem = file.slice(dir.length + 1);
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names) if (name.startsWith(`${stem}.`) && name.endsWith('.tmp')) rmSync(join(dir, name), { force: true });
  }

  clear(): void {
    this.root.children.clear();
    this.lru.clear();
    this.bytesUsed = 0;
    this.dirty = true;
  }
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}
