/**
 * Which tokens an automaton state accepts: a walk of the vocabulary's byte
 * trie that steps the state along each edge and abandons a subtree as soon as
 * no thread accepts its prefix, so the work is proportional to the accepted
 * prefixes, not to the 100k tokens.
 *
 * One shortcut keeps string bodies cheap: a thread looping in `text` (or
 * `anyBytes`, or an automaton state that every character leads back to) at a
 * character boundary accepts every token made only of characters it allows,
 * and stays where it is. Those tokens (95% of the vocabulary inside a JSON
 * string) come from a bitset precomputed once per character class; only the
 * others (quotes, backslashes, control bytes, partial UTF-8) are walked, in a
 * trie of their own.
 *
 * With a budget, only tokens after which the grammar can still be completed
 * within `budget` symbols are allowed (every single byte being a token, a
 * completion of n symbols takes at most n tokens): that is how a reply closes
 * before max_tokens cuts it.
 */
import { isWholeText, stateCost, step, SPECIAL_SYMBOL_BASE, type Frame } from './matcher.ts';
import { TokenMask } from './token-mask.ts';
import type { ByteTrie } from './byte-trie.ts';
import type { TokenPartition, TokenVocabulary } from './vocabulary.ts';

export interface ComputedMask {
  mask: TokenMask;
  /** An upper bound on the cost (stateCost) of the state after any allowed token. */
  worst: number;
}

export function computeMask(vocabulary: TokenVocabulary, threads: readonly Frame[], budget = Infinity): ComputedMask {
  const bits = new Uint32Array(vocabulary.words);
  let trie = vocabulary.trie;
  let worst = 0;
  const loop = loopPartition(vocabulary, threads);
  if (loop && loop.cost <= budget) {
    bits.set(loop.partition.kept);
    trie = loop.partition.rest;
    // A kept token leaves the looping thread where it is: what follows costs no more than it.
    worst = loop.cost;
  }
  worst = Math.max(worst, walk(trie, 0, threads, bits, budget));
  for (const id of vocabulary.specialIds) {
    const next = step(threads, SPECIAL_SYMBOL_BASE + id);
    if (next.length === 0) continue;
    const cost = stateCost(next);
    if (cost > budget) continue;
    bits[id >>> 5] |= 1 << (id & 31);
    if (cost > worst) worst = cost;
  }
  return { mask: new TokenMask(bits, vocabulary.size), worst };
}

/** A thread whose tokens of one character class all keep it in place, and that class's partition. */
function loopPartition(vocabulary: TokenVocabulary, threads: readonly Frame[]): { partition: TokenPartition; cost: number } | undefined {
  for (const t of threads) {
    const node = t.node;
    if (node === null) continue;
    if (node.kind === 'text' && t.pos === 0) return { partition: vocabulary.partition(node.className, (b) => isWholeText(b, node.excluded)), cost: t.cost };
    if (node.kind === 'anyBytes') return { partition: vocabulary.partition('anyBytes', () => true), cost: t.cost };
    if (node.kind === 'dfa' && node.dfa.loops) {
      const s = t.pos % node.dfa.size;
      const loop = node.dfa.loops[s];
      // A count that still matters (a bounded length) changes the position with every character.
      const free = node.maxChars === Infinity && (t.pos - s) / node.dfa.size >= node.minChars;
      if (loop && free) return { partition: vocabulary.partition(loop.name, loop.keep), cost: t.cost };
    }
  }
  return undefined;
}

/** Sets the bits of the accepted tokens below `node`; returns the highest cost after one of them. */
function walk(trie: ByteTrie, node: number, threads: readonly Frame[], bits: Uint32Array, budget: number): number {
  const { firstChild, childCount, edgeByte, tokenAt } = trie;
  const end = firstChild[node] + childCount[node];
  let worst = 0;
  for (let c = firstChild[node]; c < end; c++) {
    const next = step(threads, edgeByte[c]);
    if (next.length === 0) continue;
    const token = tokenAt[c];
    if (token >= 0) {
      const cost = stateCost(next);
      if (cost <= budget) {
        bits[token >>> 5] |= 1 << (token & 31);
        if (cost > worst) worst = cost;
      }
    }
    if (childCount[c] > 0) {
      const below = walk(trie, c, next, bits, budget);
      if (below > worst) worst = below;
    }
  }
  return worst;
}
