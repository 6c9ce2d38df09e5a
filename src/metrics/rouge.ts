/**
 * ROUGE as Google's rouge-score (0.1.2, `rouge_score.rouge_scorer.RougeScorer`)
 * computes it: ROUGE-N (N = 1…9) from clipped n-gram overlap, ROUGE-L from
 * the longest common subsequence, ROUGE-Lsum from the summary-level union LCS
 * over newline-separated sentences, each as precision, recall and F-measure.
 *
 * Its default tokenizer: lowercase, every run of characters other than a–z
 * and 0–9 becomes a space, split, optionally stem (NLTK's Porter stemmer,
 * NLTK_EXTENSIONS mode, on tokens longer than 3 characters), keep non-empty
 * tokens. rouge-score's `split_summaries` (NLTK sentence splitting for
 * ROUGE-Lsum) and custom tokenizers are not supported.
 *
 * Cost: ROUGE-N is linear in the tokens; ROUGE-L O(n·m/32) time and O(n)
 * memory (bit-parallel LCS length); ROUGE-Lsum O(Σ nᵢ·mⱼ) time and
 * O(max nᵢ·mⱼ) memory (it needs each sentence pair's LCS table to read the
 * subsequence back). Callers that take untrusted text bound its length
 * (see text-similarity.ts).
 */
import { internAll, lcsLengthOf } from './lcs.ts';
import { porterStem } from './porter-stemmer.ts';

export const ROUGE_TYPES = ['rouge1', 'rouge2', 'rouge3', 'rouge4', 'rouge5', 'rouge6', 'rouge7', 'rouge8', 'rouge9', 'rougeL', 'rougeLsum'] as const;
export type RougeType = (typeof ROUGE_TYPES)[number];

export interface RougeScore {
  precision: number;
  recall: number;
  fmeasure: number;
}

export interface RougeOptions {
  /** Porter-stem tokens longer than 3 characters (rouge-score's `use_stemmer`); default false. */
  useStemmer?: boolean;
}

const ZERO: RougeScore = Object.freeze({ precision: 0, recall: 0, fmeasure: 0 });

/** rouge-score's `scoring.fmeasure`. */
function fmeasure(precision: number, recall: number): number {
  return precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
}

function score(precision: number, recall: number): RougeScore {
  return { precision, recall, fmeasure: fmeasure(precision, recall) };
}

/** rouge-score's default tokenizer (`tokenize.tokenize(text, stemmer)`). */
export function rougeTokenize(text: string, useStemmer = false): string[] {
  const spaced = text.toLowerCase().replace(/[^a-z0-9]+/g, ' ');
  const tokens: string[] = [];
  for (const raw of spaced.split(' ')) {
    if (raw === '') continue;
    const token = useStemmer && raw.length > 3 ? porterStem(raw) : raw;
    if (/^[a-z0-9]+$/.test(token)) tokens.push(token);
  }
  return tokens;
}

/** N-gram counts; tokens are [a-z0-9]+, so a space joins them unambiguously. */
function ngramCounts(tokens: readonly string[], n: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i + n <= tokens.length; i++) {
    const key = n === 1 ? tokens[i] : tokens.slice(i, i + n).join(' ');
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

function scoreNgrams(target: readonly string[], prediction: readonly string[], n: number): RougeScore {
  const targetNgrams = ngramCounts(target, n);
  const predictionNgrams = ngramCounts(prediction, n);
  let overlap = 0;
  for (const [g, c] of targetNgrams) overlap += Math.min(c, predictionNgrams.get(g) ?? 0);
  const targetCount = Math.max(0, target.length - n + 1);
  const predictionCount = Math.max(0, prediction.length - n + 1);
  return score(overlap / Math.max(predictionCount, 1), overlap / Math.max(targetCount, 1));
}

/** Length of the longest common subsequence of two token lists (rouge-score's `_lcs_table(...)[-1][-1]`). */
export function lcsLength(a: readonly string[], b: readonly string[]): number {
  const [x, y] = internAll([a, b]);
  return lcsLengthOf(x, y);
}

function scoreLcs(target: readonly string[], prediction: readonly string[]): RougeScore {
  if (target.length === 0 || prediction.length === 0) return { ...ZERO };
  const lcs = lcsLength(target, prediction);
  return score(lcs / prediction.length, lcs / target.length);
}

/**
 * Indices into `ref` of one longest common subsequence with `can`, read back
 * from the full table the way rouge-score's `_backtrack_norec` does (on a tie
 * it moves up in `ref`), so the union below picks the same tokens.
 */
export function lcsIndices(ref: readonly string[], can: readonly string[]): number[] {
  const cols = can.length + 1;
  const t = new Uint32Array((ref.length + 1) * cols);
  for (let i = 1; i <= ref.length; i++) {
    for (let j = 1; j <= can.length; j++) {
      t[i * cols + j] = ref[i - 1] === can[j - 1] ? t[(i - 1) * cols + j - 1] + 1 : Math.max(t[(i - 1) * cols + j], t[i * cols + j - 1]);
    }
  }
  const indices: number[] = [];
  let i = ref.length;
  let j = can.length;
  while (i > 0 && j > 0) {
    if (ref[i - 1] === can[j - 1]) {
      indices.push(i - 1);
      i--;
      j--;
    } else if (t[i * cols + j - 1] > t[(i - 1) * cols + j]) {
      j--;
    } else {
      i--;
    }
  }
  return indices.reverse();
}

/** Summary-level LCS (ROUGE paper §3.2) with rouge-score's guard against counting a token more often than it occurs. */
function summaryLevelLcs(refSents: readonly string[][], canSents: readonly string[][]): RougeScore {
  if (refSents.length === 0 || canSents.length === 0) return { ...ZERO };
  let m = 0;
  let n = 0;
  const refCounts = new Map<string, number>();
  const canCounts = new Map<string, number>();
  for (const s of refSents) {
    m += s.length;
    for (const t of s) refCounts.set(t, (refCounts.get(t) ?? 0) + 1);
  }
  for (const s of canSents) {
    n += s.length;
    for (const t of s) canCounts.set(t, (canCounts.get(t) ?? 0) + 1);
  }
  if (n === 0 || m === 0) return { ...ZERO };
  let hits = 0;
  for (const r of refSents) {
    const union = new Set<number>();
    for (const c of canSents) for (const i of lcsIndices(r, c)) union.add(i);
    for (const i of [...union].sort((a, b) => a - b)) {
      const t = r[i];
      const inCan = canCounts.get(t) ?? 0;
      const inRef = refCounts.get(t) ?? 0;
      if (inCan > 0 && inRef > 0) {
        hits++;
        canCounts.set(t, inCan - 1);
        refCounts.set(t, inRef - 1);
      }
    }
  }
  return score(hits / n, hits / m);
}

/** ROUGE-Lsum's sentences: the lines of the text, empty lines dropped (rouge-score without `split_summaries`). */
function sentences(text: string, useStemmer: boolean): string[][] {
  return text
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => rougeTokenize(line, useStemmer));
}

function checkTypes(types: readonly RougeType[]): void {
  for (const t of types) if (!(ROUGE_TYPES as readonly string[]).includes(t)) throw new RangeError(`invalid ROUGE type ${JSON.stringify(t)} (rouge1…rouge9, rougeL, rougeLsum)`);
}

/**
 * ROUGE scores of `prediction` against `target` (rouge-score's
 * `RougeScorer(types, use_stemmer).score(target, prediction)`; note the
 * argument order here: prediction first).
 */
export function rouge<T extends RougeType>(prediction: string, target: string, types: readonly T[], options: RougeOptions = {}): Record<T, RougeScore> {
  checkTypes(types);
  const useStemmer = options.useStemmer ?? false;
  const result = {} as Record<T, RougeScore>;
  let targetTokens: string[] | undefined;
  let predictionTokens: string[] | undefined;
  for (const type of types) {
    if (type === 'rougeLsum') {
      result[type] = summaryLevelLcs(sentences(target, useStemmer), sentences(prediction, useStemmer));
      continue;
    }
    targetTokens ??= rougeTokenize(target, useStemmer);
    predictionTokens ??= rougeTokenize(prediction, useStemmer);
    result[type] = type === 'rougeL' ? scoreLcs(targetTokens, predictionTokens) : scoreNgrams(targetTokens, predictionTokens, Number(type.slice(5)));
  }
  return result;
}

/**
 * rouge-score's `score_multi(targets, prediction)`: per ROUGE type, the score
 * against the target with the highest F-measure (the first on ties).
 */
export function rougeMulti<T extends RougeType>(prediction: string, targets: readonly string[], types: readonly T[], options: RougeOptions = {}): Record<T, RougeScore> {
  if (targets.length === 0) throw new RangeError('rougeMulti: no targets');
  const perTarget = targets.map((t) => rouge(prediction, t, types, options));
  const best = {} as Record<T, RougeScore>;
  for (const type of types) {
    let chosen = perTarget[0][type];
    for (const s of perTarget) if (s[type].fmeasure > chosen.fmeasure) chosen = s[type];
    best[type] = chosen;
  }
  return best;
}
