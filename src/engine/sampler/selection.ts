/** Quickselect for the heaviest prefix of a small array pair (a candidate bucket's members). */

export type Measure = 'count' | 'mass';

/** Below this many entries a range is insertion-sorted rather than partitioned. */
const SMALL_RANGE = 32;

/**
 * Reorders ids/weights[0, n) so that the shortest heaviest-first prefix whose
 * measure (entries, or summed weight) reaches `needed` comes first, and returns
 * its length. Expected linear time; pivots are deterministic (median of three).
 */
export function heaviestPrefix(ids: Int32Array, weights: Float64Array, n: number, needed: number, measure: Measure): number {
  const swap = (i: number, j: number) => {
    const id = ids[i];
    ids[i] = ids[j];
    ids[j] = id;
    const w = weights[i];
    weights[i] = weights[j];
    weights[j] = w;
  };
  let lo = 0;
  let hi = n;
  while (hi - lo > SMALL_RANGE) {
    // Three-way partition: [lo, lt) heavier than the pivot, [lt, gt) equal, [gt, hi) lighter.
    const a = weights[lo];
    const b = weights[(lo + hi) >>> 1];
    const c = weights[hi - 1];
    const pivot = a < b ? (b < c ? b : a < c ? c : a) : a < c ? a : b < c ? c : b;
    let lt = lo;
    let gt = hi;
    let heavier = 0;
    for (let i = lo; i < gt; ) {
      const w = weights[i];
      if (w > pivot) {
        heavier += measure === 'mass' ? w : 1;
        swap(lt++, i++);
      } else if (w < pivot) {
        swap(i, --gt);
      } else {
        i++;
      }
    }
    if (heavier >= needed) {
      hi = lt;
      continue;
    }
    needed -= heavier;
    const equal = measure === 'mass' ? (gt - lt) * pivot : gt - lt;
    if (equal >= needed) return lt + Math.min(gt - lt, Math.max(1, Math.ceil(measure === 'mass' ? needed / pivot : needed)));
    needed -= equal;
    lo = gt;
  }
  for (let i = lo + 1; i < hi; i++) {
    for (let j = i; j > lo && weights[j - 1] < weights[j]; j--) swap(j - 1, j);
  }
  for (let i = lo; i < hi; i++) {
    needed -= measure === 'mass' ? weights[i] : 1;
    if (needed <= 0) return i + 1;
  }
  return hi; // rounding left a sliver uncovered: keep all
}
