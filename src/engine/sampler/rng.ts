/**
 * A small seeded PRNG (xoshiro128**), one per request: the same seed gives the
 * same stream on every machine and Node version, which Math.random cannot.
 */
export interface Rng {
  /** Uniform in [0, 1) with 53 random bits. */
  next(): number;
}

/** splitmix32: spreads a 32-bit seed over the generator's 128-bit state so nearby seeds diverge at once. */
function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

class Xoshiro128 implements Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seedLow: number, seedHigh: number) {
    const mix = { s: seedLow ^ Math.imul(seedHigh, 0x27d4eb2d) };
    this.a = splitmix32(mix);
    this.b = splitmix32(mix) ^ seedHigh;
    this.c = splitmix32(mix);
    this.d = splitmix32(mix);
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1; // the all-zero state is a fixed point
  }

  private nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  next(): number {
    const high = this.nextUint32() >>> 5; // 27 bits
    const low = this.nextUint32() >>> 6; // 26 bits
    return (high * 67108864 + low) / 9007199254740992;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/**
 * A generator for `seed` (any safe integer, negative included: OpenAI's seed is a
 * 64-bit integer), or a randomly seeded one when `seed` is undefined.
 */
export function createRng(seed?: number): Rng {
  if (seed === undefined) {
    const words = crypto.getRandomValues(new Uint32Array(2));
    return new Xoshiro128(words[0], words[1]);
  }
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${seed}`);
  const low = seed % 4294967296;
  const high = Math.floor(seed / 4294967296);
  return new Xoshiro128(low | 0, high | 0);
}
