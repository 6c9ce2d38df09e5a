/**
 * Length of the longest common subsequence of two sequences of integer
 * symbols (code points, token ids), by the bit-parallel algorithm of Hyyrö
 * (2004): the shorter sequence is a bit vector of ⌈m/32⌉ machine words and
 * each symbol of the longer one updates it with one add and a few logic
 * operations per word. O(⌈m/32⌉·n) time, O(σ·⌈m/32⌉) memory. The textbook
 * DP gives the same number; ROUGE-L and the Indel distance only need the
 * number, not the subsequence.
 */
export function lcsLengthOf(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const [pattern, text] = a.length <= b.length ? [a, b] : [b, a];
  const m = pattern.length;
  if (m === 0) return 0;
  const words = Math.ceil(m / 32);
  // For every symbol of the pattern, the positions where it occurs.
  const masks = new Map<number, Uint32Array>();
  for (let i = 0; i < m; i++) {
    let mask = masks.get(pattern[i]);
    if (mask === undefined) masks.set(pattern[i], (mask = new Uint32Array(words)));
    mask[i >>> 5] |= 1 << (i & 31);
  }
  const v = new Uint32Array(words).fill(0xffffffff);
  for (let j = 0; j < text.length; j++) {
    const mask = masks.get(text[j]);
    if (mask === undefined) continue; // V & ~0 = V, V + 0 = V: a symbol absent from the pattern changes nothing
    // V ← (V + (V & M)) | (V & ~M), the carry running from word to word.
    let carry = 0;
    for (let k = 0; k < words; k++) {
      const vk = v[k];
      const mk = mask[k];
      const sum = vk + ((vk & mk) >>> 0) + carry;
      carry = sum > 0xffffffff ? 1 : 0;
      v[k] = sum | (vk & ~mk);
    }
  }
  // The LCS length is the number of zero bits among the first m.
  let lcs = 0;
  for (let k = 0; k < words; k++) {
    let zeros = ~v[k];
    const bits = k === words - 1 ? m - 32 * k : 32;
    if (bits < 32) zeros &= (1 << bits) - 1;
    lcs += popcount(zeros);
  }
  return lcs;
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

/** Maps strings to small integers, the same string to the same number, for lcsLengthOf. */
export function internAll(sequences: ReadonlyArray<readonly string[]>): Int32Array[] {
  const ids = new Map<string, number>();
  return sequences.map((seq) => {
    const out = new Int32Array(seq.length);
    for (let i = 0; i < seq.length; i++) {
      let id = ids.get(seq[i]);
      if (id === undefined) ids.set(seq[i], (id = ids.size));
      out[i] = id;
    }
    return out;
  });
}
