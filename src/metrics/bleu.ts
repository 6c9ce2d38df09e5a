/**
 * BLEU as sacrebleu 2.6.0 computes it (`sacrebleu.metrics.BLEU`, and the
 * `corpus_bleu` / `sentence_bleu` functions of `sacrebleu.compat`): n-gram
 * precisions clipped by the highest count in any one reference, the closest
 * reference length (the shorter on a tie) for the brevity penalty, sacrebleu's
 * smoothing methods and effective order, and its reproducibility signature.
 * Scores are on sacrebleu's 0–100 scale.
 *
 * References follow sacrebleu's layout: `references[k][i]` is the k-th
 * reference of segment i (one array per reference stream); `null` marks a
 * segment without a k-th reference (the signature then says `nrefs:var`).
 */
import { BLEU_TOKENIZERS, bleuTokenize, type BleuTokenizerName } from './bleu-tokenizers.ts';
import { pyFixed, pyRstrip } from './python-text.ts';

export { BLEU_TOKENIZERS, type BleuTokenizerName } from './bleu-tokenizers.ts';

/** The sacrebleu release whose behaviour this module reproduces; it ends the signature. */
export const SACREBLEU_VERSION = '2.6.0';

export const BLEU_SMOOTH_METHODS = ['exp', 'floor', 'add-k', 'none'] as const;
export type BleuSmoothMethod = (typeof BLEU_SMOOTH_METHODS)[number];

/** sacrebleu's defaults for the smoothing value (Chen & Cherry 2014); exp and none take none. */
const SMOOTH_DEFAULTS: Record<BleuSmoothMethod, number | null> = { none: null, floor: 0.1, 'add-k': 1, exp: null };

export const MAX_NGRAM_ORDER = 4;

export interface BleuOptions {
  /** sacrebleu's `tokenize`; default '13a'. */
  tokenize?: BleuTokenizerName;
  /** Lowercase hypothesis and references first; default false. */
  lowercase?: boolean;
  /** default 'exp'. */
  smoothMethod?: BleuSmoothMethod;
  /** For floor (default 0.1) and add-k (default 1); ignored by exp and none. */
  smoothValue?: number;
  /** Stop at the highest n-gram order the hypothesis has (sacrebleu's `effective_order`). Default: false for corpus BLEU, true for sentence BLEU. */
  effectiveOrder?: boolean;
  /** default 4. */
  maxNgramOrder?: number;
}

export interface BleuScore {
  /** BLEU, 0–100. */
  score: number;
  /** Matched n-grams per order (with add-k smoothing, k is added from order 2 on, as sacrebleu reports them). */
  counts: number[];
  /** Hypothesis n-grams per order (likewise). */
  totals: number[];
  /** Precisions per order, 0–100, after smoothing. */
  precisions: number[];
  /** Brevity penalty. */
  bp: number;
  /** sacrebleu's sys_len: hypothesis tokens. */
  sysLen: number;
  /** sacrebleu's ref_len: the closest reference's tokens, summed over segments. */
  refLen: number;
  /** sysLen / refLen, 0 when refLen is 0. */
  ratio: number;
  /** sacrebleu's signature, e.g. nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0 */
  signature: string;
}

interface ResolvedOptions {
  tokenize: BleuTokenizerName;
  lowercase: boolean;
  smoothMethod: BleuSmoothMethod;
  smoothValue: number | null;
  effectiveOrder: boolean;
  maxNgramOrder: number;
}

function resolve(options: BleuOptions, effectiveOrderDefault: boolean): ResolvedOptions {
  const smoothMethod = options.smoothMethod ?? 'exp';
  if (!Object.hasOwn(SMOOTH_DEFAULTS, smoothMethod)) throw new RangeError(`unknown BLEU smoothing method ${JSON.stringify(smoothMethod)} (one of ${BLEU_SMOOTH_METHODS.join(', ')})`);
  const tokenize = options.tokenize ?? '13a';
  if (!(BLEU_TOKENIZERS as readonly string[]).includes(tokenize)) throw new RangeError(`unknown BLEU tokenizer ${JSON.stringify(tokenize)} (one of ${BLEU_TOKENIZERS.join(', ')})`);
  const maxNgramOrder = options.maxNgramOrder ?? MAX_NGRAM_ORDER;
  if (!Number.isInteger(maxNgramOrder) || maxNgramOrder < 1) throw new RangeError(`maxNgramOrder must be a positive integer (got ${maxNgramOrder})`);
  const smoothValue = options.smoothValue ?? SMOOTH_DEFAULTS[smoothMethod];
  return {
    tokenize,
    lowercase: options.lowercase ?? false,
    smoothMethod,
    smoothValue,
    effectiveOrder: options.effectiveOrder ?? effectiveOrderDefault,
    maxNgramOrder,
  };
}

/** sacrebleu's `my_log`: log, with log(0) floored to -9999999999. */
function flooredLog(x: number): number {
  return x === 0 ? -9999999999 : Math.log(x);
}

/**
 * BLEU from its sufficient statistics (sacrebleu's `BLEU.compute_bleu`). Its
 * defaults are compute_bleu's own: no smoothing, no effective order.
 */
export function computeBleu(
  correctIn: readonly number[],
  totalIn: readonly number[],
  sysLen: number,
  refLen: number,
  options: { smoothMethod?: BleuSmoothMethod; smoothValue?: number | null; effectiveOrder?: boolean; maxNgramOrder?: number } = {},
): Omit<BleuScore, 'signature'> {
  const smoothMethod = options.smoothMethod ?? 'none';
  const smoothValue = options.smoothValue ?? SMOOTH_DEFAULTS[smoothMethod] ?? 0;
  const maxOrder = options.maxNgramOrder ?? MAX_NGRAM_ORDER;
  const correct = correctIn.slice();
  const total = totalIn.slice();
  let bp = 1;
  if (sysLen < refLen) bp = sysLen > 0 ? Math.exp(1 - refLen / sysLen) : 0;
  const precisions = new Array<number>(maxOrder).fill(0);
  const ratio = refLen ? sysLen / refLen : 0;
  // No match at any order: 0, whatever the smoothing (sacrebleu #141).
  if (!correct.some((c) => c !== 0)) return { score: 0, counts: correct, totals: total, precisions, bp, sysLen, refLen, ratio };

  let smoothMteval = 1;
  let effOrder = maxOrder;
  for (let n = 1; n <= maxOrder; n++) {
    if (smoothMethod === 'add-k' && n > 1) {
      correct[n - 1] += smoothValue;
      total[n - 1] += smoothValue;
    }
    if (total[n - 1] === 0) break;
    if (options.effectiveOrder) effOrder = n;
    if (correct[n - 1] === 0) {
      if (smoothMethod === 'exp') {
        smoothMteval *= 2;
        precisions[n - 1] = 100 / (smoothMteval * total[n - 1]);
      } else if (smoothMethod === 'floor') {
        precisions[n - 1] = (100 * smoothValue) / total[n - 1];
      }
    } else {
      precisions[n - 1] = (100 * correct[n - 1]) / total[n - 1];
    }
  }
  let logSum = 0;
  for (let i = 0; i < effOrder; i++) logSum += flooredLog(precisions[i]);
  return { score: bp * Math.exp(logSum / effOrder), counts: correct, totals: total, precisions, bp, sysLen, refLen, ratio };
}

/**
 * N-gram counts, one map per order (index n-1). Tokens hold no whitespace, so
 * a space joins an n-gram's tokens into an unambiguous key.
 */
function ngramCounts(tokens: readonly string[], maxOrder: number): Array<Map<string, number>> {
  const counts = Array.from({ length: maxOrder }, () => new Map<string, number>());
  for (let i = 0; i < tokens.length; i++) {
    let key = tokens[i];
    for (let n = 1; n <= maxOrder && i + n <= tokens.length; n++) {
      if (n > 1) key += ` ${tokens[i + n - 1]}`;
      const m = counts[n - 1];
      m.set(key, (m.get(key) ?? 0) + 1);
    }
  }
  return counts;
}

/** One segment's references, ready to score any hypothesis against. */
interface ReferenceInfo {
  /** Per order, per n-gram, its highest count in any one reference. */
  ngrams: Array<Map<string, number>>;
  lengths: number[];
}

function preprocess(line: string, o: ResolvedOptions): string[] {
  return bleuTokenize(pyRstrip(o.lowercase ? line.toLowerCase() : line), o.tokenize);
}

function referenceInfo(refs: readonly string[], o: ResolvedOptions): ReferenceInfo {
  let ngrams: Array<Map<string, number>> | undefined;
  const lengths: number[] = [];
  for (const ref of refs) {
    const tokens = preprocess(ref, o);
    const counts = ngramCounts(tokens, o.maxNgramOrder);
    lengths.push(tokens.length);
    if (ngrams === undefined) {
      ngrams = counts;
      continue;
    }
    for (let n = 0; n < counts.length; n++) {
      const merged = ngrams[n];
      for (const [g, c] of counts[n]) if (c > (merged.get(g) ?? 0)) merged.set(g, c);
    }
  }
  if (ngrams === undefined) throw new RangeError('BLEU: a segment has no reference');
  return { ngrams, lengths };
}

/** The reference length closest to the hypothesis length, the shorter on a tie. */
function closestRefLength(hypLen: number, refLens: readonly number[]): number {
  let bestDiff = -1;
  let best = -1;
  for (const len of refLens) {
    const diff = Math.abs(hypLen - len);
    if (bestDiff === -1 || diff < bestDiff) {
      bestDiff = diff;
      best = len;
    } else if (diff === bestDiff && len < best) {
      best = len;
    }
  }
  return best;
}

/** [sysLen, refLen, correct_1..N, total_1..N] for one segment. */
function segmentStats(hypothesis: string, refs: ReferenceInfo, o: ResolvedOptions): number[] {
  const tokens = preprocess(hypothesis, o);
  const hypNgrams = ngramCounts(tokens, o.maxNgramOrder);
  const N = o.maxNgramOrder;
  const stats = new Array<number>(2 + 2 * N).fill(0);
  stats[0] = tokens.length;
  stats[1] = closestRefLength(tokens.length, refs.lengths);
  for (let n = 0; n < N; n++) {
    const refNgrams = refs.ngrams[n];
    for (const [g, count] of hypNgrams[n]) {
      stats[2 + N + n] += count;
      const refCount = refNgrams.get(g);
      if (refCount !== undefined) stats[2 + n] += Math.min(count, refCount);
    }
  }
  return stats;
}

function signature(o: ResolvedOptions, nrefs: number | 'var'): string {
  let smooth: string = o.smoothMethod;
  if (SMOOTH_DEFAULTS[o.smoothMethod] !== null) smooth += `[${pyFixed(o.smoothValue ?? 0, 2)}]`;
  return `nrefs:${nrefs}|case:${o.lowercase ? 'lc' : 'mixed'}|eff:${o.effectiveOrder ? 'yes' : 'no'}|tok:${o.tokenize}|smooth:${smooth}|version:${SACREBLEU_VERSION}`;
}

function scoreFromStats(stats: readonly number[], o: ResolvedOptions, nrefs: number | 'var'): BleuScore {
  const N = o.maxNgramOrder;
  const result = computeBleu(stats.slice(2, 2 + N), stats.slice(2 + N), stats[0], stats[1], {
    smoothMethod: o.smoothMethod,
    smoothValue: o.smoothValue,
    effectiveOrder: o.effectiveOrder,
    maxNgramOrder: N,
  });
  return { ...result, signature: signature(o, nrefs) };
}

/**
 * Corpus BLEU (sacrebleu's `corpus_bleu` / `BLEU().corpus_score`): segment
 * statistics summed over the corpus, then one BLEU. `references` holds one
 * array per reference stream, each as long as `hypotheses`.
 */
export function corpusBleu(hypotheses: readonly string[], references: ReadonlyArray<ReadonlyArray<string | null>>, options: BleuOptions = {}): BleuScore {
  const o = resolve(options, false);
  if (hypotheses.length === 0) throw new RangeError('corpusBleu: no hypotheses');
  if (references.length === 0) throw new RangeError('corpusBleu: no references');
  for (const [k, stream] of references.entries()) {
    if (stream.length !== hypotheses.length) throw new RangeError(`corpusBleu: reference stream ${k} has ${stream.length} segments, the hypotheses ${hypotheses.length}`);
  }
  const N = o.maxNgramOrder;
  const totals = new Array<number>(2 + 2 * N).fill(0);
  const refCounts = new Set<number>();
  for (let i = 0; i < hypotheses.length; i++) {
    const refs: string[] = [];
    for (const stream of references) {
      const r = stream[i];
      if (r !== null && r !== undefined) refs.push(r);
    }
    refCounts.add(refs.length);
    const stats = segmentStats(hypotheses[i], referenceInfo(refs, o), o);
    for (let j = 0; j < stats.length; j++) totals[j] += stats[j];
  }
  return scoreFromStats(totals, o, refCounts.size === 1 ? [...refCounts][0] : 'var');
}

/**
 * Sentence BLEU (sacrebleu's `sentence_bleu`): one hypothesis against one or
 * more references, with effective order unless `effectiveOrder: false`.
 */
export function sentenceBleu(hypothesis: string, references: readonly string[], options: BleuOptions = {}): BleuScore {
  const o = resolve(options, true);
  if (references.length === 0) throw new RangeError('sentenceBleu: no references');
  return scoreFromStats(segmentStats(hypothesis, referenceInfo(references, o), o), o, references.length);
}

/** The tokens BLEU compares for `line` under these options (lowercasing, right strip, tokenizer). */
export function bleuTokens(line: string, options: Pick<BleuOptions, 'tokenize' | 'lowercase'> = {}): string[] {
  return preprocess(line, resolve(options, false));
}
