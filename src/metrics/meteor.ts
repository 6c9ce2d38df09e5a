/**
 * METEOR as NLTK 3.8 computes it (`nltk.translate.meteor_score.meteor_score`
 * and `single_meteor_score`, defaults alpha 0.9, beta 3, gamma 0.5), with the
 * exact and stem matching stages and no WordNet synonym stage: the scores NLTK
 * gives when called with `wordnet=` an object whose `synsets()` finds nothing.
 * (With the real WordNet, NLTK may also match synonyms and scores can be
 * higher; reproducing that needs NLTK's WordNet reader and morphy over the
 * WordNet 3.0 database, which this module does not carry.)
 *
 * The steps, as NLTK takes them: lowercase every token (str.lower); match
 * identical tokens, scanning the hypothesis from its last token and, for
 * each, the reference from its last unmatched token; then match the leftovers
 * by Porter stem (NLTK_EXTENSIONS mode) the same way; count chunks (runs of
 * matches adjacent in both); F-mean = P·R / (α·P + (1−α)·R), penalty =
 * γ·(chunks / matches)^β, score = (1 − penalty)·F-mean; 0 when nothing matches
 * or a side is empty. Several references: the best score.
 *
 * NLTK 3.8 takes pre-tokenized input (since NLTK 3.6.6; earlier releases split
 * strings themselves); so do these functions. Cost: O(n + m) per reference
 * (NLTK's scan is O(n·m); the matches are the same).
 */
import { porterStem } from './porter-stemmer.ts';


export interface MeteorOptions {
  /** Relative weight of precision and recall; default 0.9. */
  alpha?: number;
  /** Shape of the fragmentation penalty; default 3. */
  beta?: number;
  /** Weight of the fragmentation penalty; default 0.5. */
  gamma?: number;
}

type Enumerated = Array<[index: number, word: string]>;

/**
 * NLTK's `_match_enums`: from the last hypothesis word down, pair it with the
 * last equal reference word still free; both leave their lists. NLTK scans
 * the reference list for each word (O(n·m)); the last free equal word is the
 * top of that word's stack of free positions, which gives the same pairs in
 * O(n + m).
 */
function matchEnums(hyp: Enumerated, ref: Enumerated): { matches: Array<[number, number]>; hypLeft: Enumerated; refLeft: Enumerated } {
  const free = new Map<string, number[]>();
  for (let j = 0; j < ref.length; j++) {
    const stack = free.get(ref[j][1]);
    if (stack === undefined) free.set(ref[j][1], [j]);
    else stack.push(j);
  }
  const taken = new Uint8Array(ref.length);
  const matches: Array<[number, number]> = [];
  const hypLeft: Enumerated = [];
  for (let i = hyp.length - 1; i >= 0; i--) {
    const j = free.get(hyp[i][1])?.pop();
    if (j === undefined) {
      hypLeft.push(hyp[i]);
      continue;
    }
    taken[j] = 1;
    matches.push([hyp[i][0], ref[j][0]]);
  }
  hypLeft.reverse();
  return { matches, hypLeft, refLeft: ref.filter((_, j) => taken[j] === 0) };
}

/** NLTK's `_count_chunks` over matches sorted by hypothesis position. */
function countChunks(matches: ReadonlyArray<[number, number]>): number {
  let chunks = 1;
  for (let i = 0; i < matches.length - 1; i++) {
    if (!(matches[i + 1][0] === matches[i][0] + 1 && matches[i + 1][1] === matches[i][1] + 1)) chunks++;
  }
  return chunks;
}

/** NLTK's `single_meteor_score(reference, hypothesis)` (exact + stem), hypothesis first. */
export function singleMeteorScore(hypothesis: readonly string[], reference: readonly string[], options: MeteorOptions = {}): number {
  const alpha = options.alpha ?? 0.9;
  const beta = options.beta ?? 3;
  const gamma = options.gamma ?? 0.5;
  const hyp: Enumerated = hypothesis.map((w, i) => [i, w.toLowerCase()]);
  const ref: Enumerated = reference.map((w, i) => [i, w.toLowerCase()]);
  const translationLength = hyp.length;
  const referenceLength = ref.length;

  const exact = matchEnums(hyp, ref);
  const stemmedHyp: Enumerated = exact.hypLeft.map(([i, w]) => [i, porterStem(w)]);
  const stemmedRef: Enumerated = exact.refLeft.map(([i, w]) => [i, porterStem(w)]);
  const stem = matchEnums(stemmedHyp, stemmedRef);
  const matches = [...exact.matches, ...stem.matches].sort((a, b) => a[0] - b[0]);

  // NLTK returns 0 on any division by zero here.
  const m = matches.length;
  if (translationLength === 0 || referenceLength === 0) return 0;
  const precision = m / translationLength;
  const recall = m / referenceLength;
  const denominator = alpha * precision + (1 - alpha) * recall;
  if (denominator === 0 || m === 0) return 0;
  const fmean = (precision * recall) / denominator;
  const fragmentation = countChunks(matches) / m;
  const penalty = gamma * fragmentation ** beta;
  return (1 - penalty) * fmean;
}

/** NLTK's `meteor_score(references, hypothesis)`: the best single score over the references. */
export function meteorScore(hypothesis: readonly string[], references: ReadonlyArray<readonly string[]>, options: MeteorOptions = {}): number {
  if (references.length === 0) throw new RangeError('meteorScore: no references');
  let best = -Infinity;
  for (const reference of references) best = Math.max(best, singleMeteorScore(hypothesis, reference, options));
  return best;
}
