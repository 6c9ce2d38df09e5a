/**
 * What the constraint machinery knows about a tokenizer: each ordinary token's
 * bytes (in a byte trie), and which ids are special tokens, matched as whole
 * symbols rather than as bytes. Built once per tokenizer; it knows nothing of
 * any particular tokenizer or chat format.
 */
import { ByteTrie } from './byte-trie.ts';

/** A split of the ordinary tokens by a predicate on their bytes. */
export interface TokenPartition {
  /** Bitset (bit i of word i>>5) of the tokens the predicate holds for. */
  kept: Uint32Array;
  /** A trie of the ordinary tokens it does not hold for. */
  rest: ByteTrie;
}

export class TokenVocabulary {
  /** Logits per step: ids run from 0 to size - 1. */
  readonly size: number;
  readonly trie: ByteTrie;
  readonly specialIds: readonly number[];
  private readonly bytes: Array<Uint8Array | undefined>;
  private readonly special: ReadonlySet<number>;
  private readonly partitions = new Map<string, TokenPartition>();

  /**
   * `bytesOf(id)`: the bytes of an ordinary token, undefined for ids that are
   * special or unused (an unused id is never allowed under a constraint).
   */
  constructor(size: number, bytesOf: (id: number) => Uint8Array | undefined, specialIds: readonly number[]) {
    this.size = size;
    this.special = new Set(specialIds);
    this.specialIds = [...this.special].filter((id) => id >= 0 && id < size).sort((a, b) => a - b);
    this.bytes = new Array(size);
    const tokens: Array<{ id: number; bytes: Uint8Array }> = [];
    for (let id = 0; id < size; id++) {
      if (this.special.has(id)) continue;
      const b = bytesOf(id);
      if (b === undefined || b.length === 0) continue;
      this.bytes[id] = b;
      tokens.push({ id, bytes: b });
    }
    this.trie = ByteTrie.build(tokens);
  }

  get words(): number {
    return (this.size + 31) >>> 5;
  }

  isSpecial(id: number): boolean {
    return this.special.has(id);
  }

  /** An ordinary token's bytes; undefined for special and unused ids. */
  tokenBytes(id: number): Uint8Array | undefined {
    return this.bytes[id];
  }

  /**
   * The fewest tokens whose bytes, one after the other, are each suffix of
   * `bytes` (result[p] for bytes[p..]; result[length] = 0): a walk of the
   * trie from each position. Where no token starts, a byte counts one (every
   * byte is a token of the tokenizers served).
   */
  minTokens(bytes: Uint8Array): Int32Array {
    const n = bytes.length;
    const best = new Int32Array(n + 1);
    const { firstChild, childCount, edgeByte, tokenAt } = this.trie;
    for (let i = n - 1; i >= 0; i--) {
      let b = best[i + 1] + 1;
      let node = 0;
      for (let j = i; j < n; j++) {
        let lo = firstChild[node];
        let hi = lo + childCount[node] - 1;
        let next = -1;
        while (lo <= hi) {
          const mid = (lo + hi) >>> 1;
          if (edgeByte[mid] === bytes[j]) {
            next = mid;
            break;
          }
          if (edgeByte[mid] < bytes[j]) lo = mid + 1;
          else hi = mid - 1;
        }
        if (next < 0) break;
        node = next;
        if (tokenAt[node] >= 0 && best[j + 1] + 1 < b) b = best[j + 1] + 1;
      }
      best[i] = b;
    }
    return best;
  }

  /**
   * The ordinary tokens split by `keep`, computed once per `name` (the name
   * must identify the predicate). Lets an automaton state that maps every
   * token of a known class to itself skip the trie walk over that class.
   */
  partition(name: string, keep: (bytes: Uint8Array) => boolean): TokenPartition {
    let p = this.partitions.get(name);
    if (!p) {
      const kept = new Uint32Array(this.words);
      const rest: Array<{ id: number; bytes: Uint8Array }> = [];
      for (let id = 0; id < this.size; id++) {
        const b = this.bytes[id];
        if (b === undefined) continue;
        if (keep(b)) kept[id >>> 5] |= 1 << (id & 31);
        else rest.push({ id, bytes: b });
      }
      p = { kept, rest: ByteTrie.build(rest) };
      this.partitions.set(name, p);
    }
    return p;
  }
}
