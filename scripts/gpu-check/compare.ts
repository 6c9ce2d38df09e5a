/**
 * How far one execution provider's outputs are from the CPU provider's.
 *
 * The tolerance every provider must meet (README, "GPU execution providers"):
 * for each logit and state value, |provider − cpu| ≤ PARITY_TOLERANCE · max(1, |cpu|).
 * The floor of 1 keeps values near zero from turning float32 rounding noise into a
 * large relative error. Top-1 agreement (the greedy token) is reported beside it,
 * not required: a near tie may flip on any rounding difference.
 */

export const PARITY_TOLERANCE = 1e-3;

export class Divergence {
  /** Largest |got − ref|. */
  maxAbs = 0;
  /** Largest |got − ref| / max(1, |ref|): the quantity the tolerance bounds. */
  maxRel = 0;
  /** Values compared. */
  values = 0;
  /** Positions (rows of `vocab` logits) compared, and how many had the same argmax. */
  positions = 0;
  top1Same = 0;

  /** Adds ref vs got; with `vocab`, each run of `vocab` values is one position's logits. */
  add(ref: ArrayLike<number>, got: ArrayLike<number>, vocab?: number): this {
    if (ref.length !== got.length) throw new RangeError(`cannot compare ${ref.length} values with ${got.length}`);
    for (let i = 0; i < ref.length; i++) {
      const d = Math.abs(got[i] - ref[i]);
      // NaN compares false: count it as an infinite difference rather than hiding it.
      const diff = Number.isNaN(d) ? Infinity : d;
      if (diff > this.maxAbs) this.maxAbs = diff;
      const rel = diff / Math.max(1, Math.abs(ref[i]));
      if (rel > this.maxRel) this.maxRel = rel;
    }
    this.values += ref.length;
    if (vocab) {
      for (let p = 0; p + vocab <= ref.length; p += vocab) {
        this.positions++;
        if (argmax(ref, p, vocab) === argmax(got, p, vocab)) this.top1Same++;
      }
    }
    return this;
  }

  get withinTolerance(): boolean {
    return this.values > 0 && this.maxRel <= PARITY_TOLERANCE;
  }

  toJSON() {
    return {
      maxAbs: this.maxAbs,
      maxRel: this.maxRel,
      values: this.values,
      positions: this.positions,
      top1Agreement: this.positions ? this.top1Same / this.positions : null,
      withinTolerance: this.withinTolerance,
    };
  }
}

function argmax(a: ArrayLike<number>, start: number, n: number): number {
  let best = start;
  for (let i = start + 1; i < start + n; i++) if (a[i] > a[best]) best = i;
  return best - start;
}
