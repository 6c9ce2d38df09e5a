/**
 * The tokens that carry probability mass at one step, with their unnormalised
 * weights exp(scale·(logit − max)) ∈ (0, 1], and the operations that narrow
 * them to their heaviest members (top-k, top-p, min-p) without sorting.
 *
 * Narrowing by rank uses a histogram of the weights: buckets read from the
 * float64 bits (exponent and top mantissa bits, 64 buckets per power of two,
 * heaviest first) locate the bucket where the cut falls; one pass keeps every
 * member above it and sets the boundary bucket's few members aside; a
 * quickselect among those places the exact cut. All linear, and deterministic:
 * the same weights always keep the same tokens in the same order, which seeded
 * sampling relies on. The passes are branch-free where the branch would be a
 * coin flip (the CPU mispredicts half of them otherwise; 3× slower).
 */
import { fastExpNonPositive } from './fast-exp.ts';
import { heaviestPrefix, type Measure } from './selection.ts';
import { simdScan } from './simd-scan.ts';

const BUCKETS_PER_OCTAVE_LOG2 = 6;
/** Weights are ≥ e^-30 or so: 64 octaves is ample. */
const BUCKET_COUNT = 64 << BUCKETS_PER_OCTAVE_LOG2;
/** High 32 bits of the float64 1.0; a weight's high word counts down from it. */
const HIGH_WORD_OF_ONE = 0x3ff00000;
const MANTISSA_BITS_IN_HIGH_WORD = 20;
const BUCKET_SHIFT = MANTISSA_BITS_IN_HIGH_WORD - BUCKETS_PER_OCTAVE_LOG2;

/**
 * Bucket of entry i from its weight's high word, 0 for the heaviest; a heavier
 * weight never gets a later bucket. (A free function on locals: V8 does not hoist
 * field reads out of these loops.)
 */
function bucketOf(highWords: Uint32Array, i: number): number {
  const b = (HIGH_WORD_OF_ONE - highWords[2 * i + 1]) >> BUCKET_SHIFT;
  return b < BUCKET_COUNT ? b : BUCKET_COUNT - 1;
}

if (new Uint8Array(new Float64Array([1]).buffer)[7] !== 0x3f) throw new Error('candidate-set.ts assumes a little-endian platform');

export class CandidateSet {
  readonly ids: Int32Array;
  readonly weights: Float64Array;
  /** The weights' float64 high words, for bucketing. */
  private readonly highWords: Uint32Array;
  /** The first `count` entries are live. */
  count = 0;
  /** Sum of the live weights. */
  total = 0;
  private readonly bucketMass = new Float64Array(BUCKET_COUNT);
  private readonly bucketCount = new Int32Array(BUCKET_COUNT);
  /** Where the boundary bucket's members wait while the cut is placed. */
  private readonly asideIds: Int32Array;
  private readonly asideWeights: Float64Array;

  constructor(capacity: number) {
    this.ids = new Int32Array(capacity);
    this.weights = new Float64Array(capacity);
    this.highWords = new Uint32Array(this.weights.buffer);
    this.asideIds = new Int32Array(capacity);
    this.asideWeights = new Float64Array(capacity);
  }

  /**
   * Refills the set from a row of logits: every token with scale·(logit − max) >
   * −cutoff, weighted exp(scale·(logit − max)). Returns the total weight.
   */
  fill(values: Float32Array, max: number, scale: number, cutoff: number): number {
    const { ids, weights } = this;
    const threshold = max - cutoff / scale; // in raw-logit units: no multiply for the tokens left out
    if (simdScan) {
      simdScan.load(values);
      return this.weigh(values, simdScan.collectAbove(threshold, ids), max, scale);
    }
    let count = 0;
    let total = 0;
    for (let i = 0, n = values.length; i < n; i++) {
      const v = values[i];
      if (v > threshold) {
        const w = fastExpNonPositive(scale * (v - max));
        ids[count] = i;
        weights[count] = w;
        count++;
        total += w;
      }
    }
    this.count = count;
    this.total = total;
    return total;
  }

  /**
   * fill() without knowing the maximum first: saves the sampler its separate
   * argmax pass over the vocabulary. One pass keeps every token within the
   * cutoff of the running maximum (a superset of the final set, in id order:
   * the running maximum never exceeds the final one); a pass over those few
   * then drops what the final maximum leaves out and weighs the rest. The set,
   * its order and its weights are exactly fill()'s. Returns the maximum
   * (-Infinity when no token is possible, for the caller to refuse).
   */
  fillFindingMax(values: Float32Array, scale: number, cutoff: number): number {
    const { ids, weights } = this;
    const margin = cutoff / scale;
    if (simdScan) {
      // Two vector passes (maximum, then the ids above the cut) beat the one scalar pass.
      simdScan.load(values);
      const max = simdScan.max();
      if (!(max > -Infinity && max < Infinity)) {
        this.count = 0;
        this.total = 0;
        return max;
      }
      this.weigh(values, simdScan.collectAbove(max - margin, ids), max, scale);
      return max;
    }
    let max = -Infinity;
    let threshold = -Infinity;
    let count = 0;
    for (let i = 0, n = values.length; i < n; i++) {
      const v = values[i];
      if (v > threshold) {
        ids[count] = i;
        weights[count] = v; // the raw logit for now
        count++;
        if (v > max) {
          max = v;
          threshold = v - margin;
        }
      }
    }
    threshold = max - margin;
    let kept = 0;
    let total = 0;
    for (let j = 0; j < count; j++) {
      const v = weights[j];
      if (v > threshold) {
        const w = fastExpNonPositive(scale * (v - max));
        ids[kept] = ids[j];
        weights[kept] = w;
        kept++;
        total += w;
      }
    }
    this.count = kept;
    this.total = total;
    return max;
  }

  /** Weighs the first `count` ids (already collected) as fill() does; returns the total. */
  private weigh(values: Float32Array, count: number, max: number, scale: number): number {
    const { ids, weights } = this;
    let total = 0;
    for (let j = 0; j < count; j++) {
      const w = fastExpNonPositive(scale * (values[ids[j]] - max));
      weights[j] = w;
      total += w;
    }
    this.count = count;
    this.total = total;
    return total;
  }

  /** Keeps the live entries of weight ≥ `threshold`, in their order. */
  keepAtLeast(threshold: number): void {
    const { ids, weights } = this;
    let kept = 0;
    let total = 0;
    for (let i = 0, n = this.count; i < n; i++) {
      const w = weights[i];
      const keep = +(w >= threshold);
      ids[kept] = ids[i];
      weights[kept] = w;
      kept += keep;
      total += w * keep;
    }
    this.count = kept;
    this.total = total;
  }

  /** Keeps the k heaviest entries (ties at the cut broken arbitrarily). */
  keepTopK(k: number): void {
    if (this.count > k) this.keepHeaviest(k, 'count');
  }

  /** Keeps the fewest heaviest entries whose weights sum to at least `mass`. */
  keepTopMass(mass: number): void {
    this.keepHeaviest(mass, 'mass');
  }

  /**
   * Narrows to the heaviest entries whose measure (their number, or their summed
   * weight) first reaches `target` in heaviest-first order. The kept entries end
   * up first, in no particular order.
   */
  private keepHeaviest(target: number, measure: Measure): void {
    const { ids, weights, highWords, bucketMass, bucketCount, asideIds, asideWeights } = this;
    const n = this.count;
    // A pass of its own: folded into fill()'s loop it cost more than it saved (V8, measured).
    bucketMass.fill(0);
    bucketCount.fill(0);
    for (let i = 0; i < n; i++) {
      const b = bucketOf(highWords, i);
      bucketMass[b] += weights[i];
      bucketCount[b]++;
    }

    const amount = measure === 'mass' ? bucketMass : bucketCount;
    let boundary = 0;
    let needed = target;
    while (boundary < BUCKET_COUNT - 1 && amount[boundary] < needed) needed -= amount[boundary++];

    let kept = 0;
    let aside = 0;
    let total = 0;
    for (let i = 0; i < n; i++) {
      const b = bucketOf(highWords, i);
      const id = ids[i];
      const w = weights[i];
      const keep = +(b < boundary);
      const setAside = +(b === boundary);
      ids[kept] = id;
      weights[kept] = w;
      asideIds[aside] = id;
      asideWeights[aside] = w;
      kept += keep;
      aside += setAside;
      total += w * keep;
    }
    const taken = heaviestPrefix(asideIds, asideWeights, aside, needed, measure);
    for (let j = 0; j < taken; j++) {
      ids[kept + j] = asideIds[j];
      weights[kept + j] = asideWeights[j];
      total += asideWeights[j];
    }
    this.count = kept + taken;
    this.total = total;
  }
}
