/**
 * A byte trie over token byte strings, in flat arrays.
 *
 * Nodes are numbered breadth first, so the children of a node are consecutive
 * ids [firstChild, firstChild + childCount), in increasing byte order. A walk
 * that rejects an edge skips the whole subtree below it: the cost of finding
 * the tokens an automaton accepts is proportional to the prefixes it accepts
 * (plus one rejected edge each), not to the vocabulary.
 */
export class ByteTrie {
  /** Node 0 is the root (the empty prefix). */
  readonly firstChild: Int32Array;
  readonly childCount: Int32Array;
  /** The byte on the edge into each node (the root's is unused). */
  readonly edgeByte: Uint8Array;
  /** The token whose bytes end at each node, or -1. */
  readonly tokenAt: Int32Array;

  private constructor(firstChild: Int32Array, childCount: Int32Array, edgeByte: Uint8Array, tokenAt: Int32Array) {
    this.firstChild = firstChild;
    this.childCount = childCount;
    this.edgeByte = edgeByte;
    this.tokenAt = tokenAt;
  }

  get nodeCount(): number {
    return this.tokenAt.length;
  }

  /** `tokens`: ids with non-empty, distinct byte strings. */
  static build(tokens: ReadonlyArray<{ id: number; bytes: Uint8Array }>): ByteTrie {
    const sorted = [...tokens].sort((a, b) => compareBytes(a.bytes, b.bytes));
    // Upper bound on nodes: one per byte, plus the root.
    const capacity = sorted.reduce((n, t) => n + t.bytes.length, 1);
    const firstChild = new Int32Array(capacity);
    const childCount = new Int32Array(capacity);
    const edgeByte = new Uint8Array(capacity);
    const tokenAt = new Int32Array(capacity).fill(-1);
    // Breadth-first queue of nodes, each owning the run sorted[lo, hi) of tokens
    // that start with its prefix (of length `depth`).
    const lo: number[] = [0];
    const hi: number[] = [sorted.length];
    const depth: number[] = [0];
    let nodes = 1;
    for (let n = 0; n < nodes; n++) {
      let start = lo[n];
      const end = hi[n];
      const d = depth[n];
      if (start < end && sorted[start].bytes.length === d) tokenAt[n] = sorted[start++].id;
      firstChild[n] = nodes;
      while (start < end) {
        const byte = sorted[start].bytes[d];
        let stop = start + 1;
        while (stop < end && sorted[stop].bytes[d] === byte) stop++;
        edgeByte[nodes] = byte;
        lo.push(start);
        hi.push(stop);
        depth.push(d + 1);
        nodes++;
        start = stop;
      }
      childCount[n] = nodes - firstChild[n];
    }
    return new ByteTrie(firstChild.slice(0, nodes), childCount.slice(0, nodes), edgeByte.slice(0, nodes), tokenAt.slice(0, nodes));
  }
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}
