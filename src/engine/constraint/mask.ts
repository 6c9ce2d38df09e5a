/**
 * Which tokens an automaton state accepts: a walk of the vocabulary's byte
 * trie that steps the state along each edge and abandons a subtree as soon as
 * no thread accepts its prefix, so the work is proportional to the accepted
 * prefixes, not to the 100k tokens.
 *
 * One shortcut keeps string bodies cheap: a thread looping in `text` (or
 * `anyBytes`) at a character boundary accepts every token made only of
 * characters it allows, and stays where it is. Those tokens (95% of the
 * vocabulary inside a JSON string) come from a bitset precomputed once per
 * character class; only the others (quotes, backslashes, control bytes, partial
 * UTF-8) are walked, in a trie of their own.
 */
import { isWholeText, step, SPECIAL_SYMBOL_BASE, type Frame } from './matcher.ts';
import { TokenMask } from './token-mask.ts';
import type { ByteTrie } from './byte-trie.ts';
import type { TokenVocabulary } from './vocabulary.ts';

export function computeMask(vocabulary: TokenVocabulary, threads: readonly Frame[]): TokenMask {
  const bits = new Uint32Array(vocabulary.words);
  let trie = vocabulary.trie;
  const loop = threads.find((t) => t.node !== null && ((t.node.kind === 'text' && t.pos === 0) || t.node.kind === 'anyBytes'));
  if (loop) {
    const node = loop.node!;
    const partition =
      node.kind === 'text' ? vocabulary.partition(node.className, (b) => isWholeText(b, node.excluded)) : vocabulary.partition('anyBytes', () => true);
    bits.set(partition.kept);
    trie = partition.rest;
  }
  walk(trie, 0, threads, bits);
  for (const id of vocabulary.specialIds) {
    if (step(threads, SPECIAL_SYMBOL_BASE + id).length > 0) bits[id >>> 5] |= 1 << (id & 31);
  }
  return new TokenMask(bits, vocabulary.size);
}

function walk(trie: ByteTrie, node: number, threads: readonly Frame[], bits: Uint32Array): void {
  const { firstChild, childCount, edgeByte, tokenAt } = trie;
  const end = firstChild[node] + childCount[node];
  for (let c = firstChild[node]; c < end; c++) {
    const next = step(threads, edgeByte[c]);
    if (next.length === 0) continue;
    const token = tokenAt[c];
    if (token >= 0) bits[token >>> 5] |= 1 << (token & 31);
    if (childCount[c] > 0) walk(trie, c, next, bits);
  }
}
