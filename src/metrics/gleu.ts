/**
 * GLEU (Google-BLEU, Wu et al. 2016) as NLTK 3.8 computes it
 * (`nltk.translate.gleu_score.sentence_gleu` / `corpus_gleu`): all n-grams of
 * orders minLen…maxLen (default 1…4) of hypothesis and reference; a sentence
 * scores matches / max(hypothesis n-grams, reference n-grams), i.e. the lower
 * of precision and recall, against its best reference; a corpus sums the
 * matches and the denominators over its sentences. 0–1.
 *
 * NLTK takes token lists; so do these functions (index.ts's
 * `whitespaceTokens` is Python's str.split() for text).
 */

export interface GleuOptions {
  /** Lowest n-gram order; default 1. */
  minLen?: number;
  /** Highest n-gram order; default 4. */
  maxLen?: number;
}

/** Counts of every n-gram with minLen ≤ n ≤ maxLen (NLTK's `everygrams`), keyed by token ids. */
function everygramCounts(tokens: readonly string[], ids: Map<string, number>, minLen: number, maxLen: number): { counts: Map<string, number>; total: number } {
  const codes = tokens.map((t) => {
    let id = ids.get(t);
    if (id === undefined) ids.set(t, (id = ids.size));
    return id;
  });
  const counts = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < codes.length; i++) {
    let key = '';
    for (let n = 1; n <= maxLen && i + n <= codes.length; n++) {
      key = n === 1 ? `${codes[i]}` : `${key},${codes[i + n - 1]}`;
      if (n < minLen) continue;
      counts.set(key, (counts.get(key) ?? 0) + 1);
      total++;
    }
  }
  return { counts, total };
}

function resolve(options: GleuOptions): [number, number] {
  const minLen = options.minLen ?? 1;
  const maxLen = options.maxLen ?? 4;
  if (!Number.isInteger(minLen) || !Number.isInteger(maxLen) || minLen < 1 || maxLen < minLen) throw new RangeError(`GLEU needs integers 1 ≤ minLen ≤ maxLen (got ${minLen}, ${maxLen})`);
  return [minLen, maxLen];
}

/** NLTK's `corpus_gleu(list_of_references, hypotheses)`, arguments in hypothesis-first order. */
export function corpusGleu(hypotheses: ReadonlyArray<readonly string[]>, references: ReadonlyArray<ReadonlyArray<readonly string[]>>, options: GleuOptions = {}): number {
  const [minLen, maxLen] = resolve(options);
  if (hypotheses.length !== references.length) throw new RangeError(`corpusGleu: ${hypotheses.length} hypotheses but ${references.length} reference sets`);
  let corpusMatch = 0;
  let corpusAll = 0;
  for (let s = 0; s < hypotheses.length; s++) {
    const ids = new Map<string, number>();
    const hyp = everygramCounts(hypotheses[s], ids, minLen, maxLen);
    let best: [number, number] | undefined;
    for (const reference of references[s]) {
      const ref = everygramCounts(reference, ids, minLen, maxLen);
      let tp = 0;
      for (const [g, c] of ref.counts) {
        const h = hyp.counts.get(g);
        if (h !== undefined) tp += Math.min(c, h);
      }
      const nAll = Math.max(hyp.total, ref.total);
      // The best reference by tp / nAll, the first on ties (Python's max keeps the first).
      if (nAll > 0 && (best === undefined || tp / nAll > best[0] / best[1])) best = [tp, nAll];
    }
    if (best !== undefined) {
      corpusMatch += best[0];
      corpusAll += best[1];
    }
  }
  return corpusAll === 0 ? 0 : corpusMatch / corpusAll;
}

/** NLTK's `sentence_gleu(references, hypothesis)`, arguments in hypothesis-first order. */
export function sentenceGleu(hypothesis: readonly string[], references: ReadonlyArray<readonly string[]>, options: GleuOptions = {}): number {
  return corpusGleu([hypothesis], [references], options);
}
