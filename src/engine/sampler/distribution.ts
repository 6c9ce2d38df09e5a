/**
 * The next-token distribution after the logits processors, built with at most
 * two passes over the vocabulary: one for the maximum, one that evaluates the
 * exponentials and collects the tokens that carry any probability mass into a
 * compact candidate set. Truncation and sampling then work on that set only.
 *
 * Tokens more than `cutoff` (in scaled-logit units) below the best one are left
 * out of the set and of the normaliser, with cutoff = ln(vocab / 1e-7) (27.6 for
 * 100k): each has probability below e^-cutoff, so together they weigh less than
 * 1e-7 of the mass. That bounds the error of every reported logprob by ~1e-7.
 */
import type { StepLogits } from './processors.ts';
import type { CandidateSet } from './candidate-set.ts';
import { simdScan } from './simd-scan.ts';

const NEGLIGIBLE_MASS = 1e-7;

export interface Argmax {
  max: number;
  /** Lowest id among the maximal logits. */
  argmax: number;
}

export class ModelOutputError extends Error {}

/** Every logit is -Infinity (banned) or NaN. */
export class NoPossibleTokenError extends ModelOutputError {}

/**
 * The maximum logit and its lowest id; NaN entries are ignored, and a row with
 * no possible token is refused loudly. WebAssembly SIMD where available (~5×
 * faster, see simd-scan.ts), else findArgmaxScalar.
 */
export function findArgmax(values: Float32Array): Argmax {
  if (!simdScan) return findArgmaxScalar(values);
  simdScan.load(values);
  const max = simdScan.max();
  checkMax(max);
  return { max, argmax: simdScan.indexOf(max) };
}

/**
 * findArgmax in plain JavaScript. Four independent running maxima let the CPU
 * overlap the comparisons (~1.4× faster than one); the argmax is then the first match.
 */
export function findArgmaxScalar(values: Float32Array): Argmax {
  const n = values.length;
  const end4 = n - (n % 4);
  let m0 = -Infinity;
  let m1 = -Infinity;
  let m2 = -Infinity;
  let m3 = -Infinity;
  for (let i = 0; i < end4; i += 4) {
    const v0 = values[i];
    const v1 = values[i + 1];
    const v2 = values[i + 2];
    const v3 = values[i + 3];
    if (v0 > m0) m0 = v0;
    if (v1 > m1) m1 = v1;
    if (v2 > m2) m2 = v2;
    if (v3 > m3) m3 = v3;
  }
  let max = Math.max(m0, m1, m2, m3);
  for (let i = end4; i < n; i++) if (values[i] > max) max = values[i];
  checkMax(max);
  let argmax = 0;
  while (values[argmax] !== max) argmax++;
  return { max, argmax };
}

function checkMax(max: number): void {
  if (max === -Infinity) throw new NoPossibleTokenError('no token is possible: every logit is NaN or banned (-inf)');
  if (max === Infinity) throw new ModelOutputError('the model produced an infinite logit');
}

export class Distribution {
  /** log Σ exp(scale·(logit − max)) over the candidates. */
  private readonly logNormaliser: number;

  private constructor(
    private readonly logits: StepLogits,
    private readonly max: number,
    private readonly candidates: CandidateSet,
    normaliser: number,
  ) {
    this.logNormaliser = Math.log(normaliser);
  }

  static build(logits: StepLogits, best: Argmax, candidates: CandidateSet): Distribution {
    const cutoff = Math.log(logits.values.length / NEGLIGIBLE_MASS);
    const total = candidates.fill(logits.values, best.max, logits.scale, cutoff);
    return new Distribution(logits, best.max, candidates, total);
  }

  /** build() for a caller that has not looked for the maximum: one pass over the vocabulary instead of two. */
  static buildFindingMax(logits: StepLogits, candidates: CandidateSet): Distribution {
    const cutoff = Math.log(logits.values.length / NEGLIGIBLE_MASS);
    const max = candidates.fillFindingMax(logits.values, logits.scale, cutoff);
    checkMax(max);
    return new Distribution(logits, max, candidates, candidates.total);
  }

  /** Log-probability of `id` under this (untruncated) distribution. */
  logprob(id: number): number {
    return this.logits.scale * (this.logits.values[id] - this.max) - this.logNormaliser;
  }

  /**
   * The `n` most likely tokens, most likely first (ties: lower id first). Read
   * from the candidate set when it holds enough tokens, else from the whole
   * vocabulary (a very peaked distribution).
   */
  top(n: number): Array<{ id: number; logprob: number }> {
    if (n <= 0) return [];
    const best = new TopN(n);
    const values = this.logits.values;
    if (this.candidates.count >= n) {
      const { ids, count } = this.candidates;
      for (let i = 0; i < count; i++) best.offer(ids[i], values[ids[i]]);
    } else {
      for (let i = 0; i < values.length; i++) best.offer(i, values[i]);
    }
    return best.sorted().map((id) => ({ id, logprob: this.logprob(id) }));
  }
}

/** Keeps the n largest values seen, in a small sorted array (n ≤ 20, so insertion beats a heap). */
class TopN {
  private readonly ids: number[] = [];
  private readonly values: number[] = [];
  constructor(private readonly n: number) {}

  offer(id: number, value: number): void {
    const full = this.ids.length === this.n;
    if (full && !(value > this.values[this.n - 1])) return;
    if (value === -Infinity || Number.isNaN(value)) return;
    let pos = full ? this.n - 1 : this.ids.length;
    // Offers arrive in increasing id order, so equal values stay behind earlier ids.
    while (pos > 0 && this.values[pos - 1] < value) {
      this.ids[pos] = this.ids[pos - 1];
      this.values[pos] = this.values[pos - 1];
      pos--;
    }
    this.ids[pos] = id;
    this.values[pos] = value;
  }

  sorted(): number[] {
    return this.ids.slice();
  }
}
