/**
 * The set of tokens allowed at one step, and the cheapest way to ban the rest
 * in a row of logits. Masks are cached per automaton state and applied once per
 * generated token, so the representation is chosen for applying: a short list
 * of allowed ids (fill the row with -Infinity, put them back), a short list of
 * banned ids (ban those), or the bitset (skip whole words that are all allowed).
 */
const SHORT_LIST = 1 / 16;

export class TokenMask {
  /** How many tokens are allowed. */
  readonly count: number;
  private readonly bits?: Uint32Array;
  private readonly allowedIds?: Int32Array;
  private readonly bannedIds?: Int32Array;
  private readonly scratch?: Float32Array;

  /** `bits`: bit i of word i>>5 set for each allowed id below `size`; the mask keeps it, so it must not change after. */
  constructor(bits: Uint32Array, readonly size: number) {
    let count = 0;
    for (let w = 0; w < bits.length; w++) count += popcount(bits[w]);
    this.count = count;
    if (count <= size * SHORT_LIST) {
      this.allowedIds = idsWhere(bits, size, 1, count);
      this.scratch = new Float32Array(count);
    } else if (size - count <= size * SHORT_LIST) {
      this.bannedIds = idsWhere(bits, size, 0, size - count);
    } else {
      this.bits = bits;
    }
  }

  /** Estimated bytes it holds. */
  get bytes(): number {
    return 64 + (this.bits?.byteLength ?? 0) + (this.allowedIds?.byteLength ?? 0) * 2 + (this.bannedIds?.byteLength ?? 0);
  }

  has(id: number): boolean {
    if (id < 0 || id >= this.size) return false;
    if (this.bits) return ((this.bits[id >>> 5] >>> (id & 31)) & 1) === 1;
    if (this.allowedIds) return binarySearch(this.allowedIds, id);
    return !binarySearch(this.bannedIds!, id);
  }

  /** Sets every disallowed entry of `values` (one row of logits, length `size`) to -Infinity. */
  apply(values: Float32Array): void {
    if (values.length !== this.size) throw new RangeError(`a token mask for ${this.size} tokens applied to ${values.length} logits`);
    const { allowedIds, bannedIds, bits } = this;
    if (allowedIds) {
      const kept = this.scratch!;
      for (let k = 0; k < allowedIds.length; k++) kept[k] = values[allowedIds[k]];
      values.fill(-Infinity);
      for (let k = 0; k < allowedIds.length; k++) values[allowedIds[k]] = kept[k];
    } else if (bannedIds) {
      for (let k = 0; k < bannedIds.length; k++) values[bannedIds[k]] = -Infinity;
    } else {
      // Visit the banned ids only (lowest clear bit first): the cost follows the
      // banned count, not 32 per word that holds any.
      const size = this.size;
      for (let w = 0, words = bits!.length; w < words; w++) {
        let banned = ~bits![w];
        const base = w << 5;
        while (banned !== 0) {
          const id = base + 31 - Math.clz32(banned & -banned);
          if (id >= size) break;
          values[id] = -Infinity;
          banned &= banned - 1;
        }
      }
    }
  }
}

/** The ids whose bit is `bit`, ascending; whole words that hold none are skipped. */
function idsWhere(bits: Uint32Array, size: number, bit: number, count: number): Int32Array {
  const out = new Int32Array(count);
  let k = 0;
  for (let w = 0; w < bits.length; w++) {
    let word = bit === 1 ? bits[w] : ~bits[w] >>> 0;
    while (word !== 0) {
      const j = 31 - Math.clz32(word & -word);
      const id = (w << 5) + j;
      if (id >= size) return out;
      out[k++] = id;
      word = (word & (word - 1)) >>> 0;
    }
  }
  return out;
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

function binarySearch(sorted: Int32Array, id: number): boolean {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] === id) return true;
    if (sorted[mid] < id) lo = mid + 1;
    else hi = mid - 1;
  }
  return false;
}
