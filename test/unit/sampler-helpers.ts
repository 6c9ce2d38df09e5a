import { createRng } from '../../src/engine/sampler/rng.ts';
import type { SamplingParams } from '../../src/engine/types.ts';
import { NEUTRAL_SAMPLING } from '../../src/engine/sampler/presets.ts';

export const defaults: SamplingParams = NEUTRAL_SAMPLING;

export function params(overrides: Partial<SamplingParams>): SamplingParams {
  return { ...defaults, ...overrides };
}

/** Gaussian logits (std `spread`), reproducible from `seed`. */
export function randomLogits(vocab: number, spread: number, seed: number): Float32Array {
  const rng = createRng(seed);
  const out = new Float32Array(vocab);
  for (let i = 0; i < vocab; i++) {
    const u = 1 - rng.next();
    const v = rng.next();
    out[i] = spread * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return out;
}

/** Naive reference: log-softmax of scale·logits over the whole vocabulary, in float64 with Math.exp. */
export function naiveLogSoftmax(logits: Float32Array, scale = 1): Float64Array {
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v);
  let sum = 0;
  for (const v of logits) sum += Math.exp(scale * (v - max));
  const logZ = Math.log(sum);
  return Float64Array.from(logits, (v) => scale * (v - max) - logZ);
}

/** Naive reference of the kept set: full sort, then top-k, top-p (renormalised over top-k), min-p. */
export function naiveKeptSet(logits: Float32Array, p: Pick<SamplingParams, 'temperature' | 'topK' | 'topP' | 'minP'>): Set<number> {
  const logprobs = naiveLogSoftmax(logits, 1 / p.temperature);
  let order = Array.from(logprobs.keys()).sort((a, b) => logprobs[b] - logprobs[a] || a - b);
  if (p.topK > 0) order = order.slice(0, p.topK);
  if (p.topP < 1) {
    const mass = order.reduce((s, id) => s + Math.exp(logprobs[id]), 0);
    let cumulative = 0;
    let size = 0;
    while (size < order.length && cumulative < p.topP * mass) cumulative += Math.exp(logprobs[order[size++]]);
    order = order.slice(0, size);
  }
  if (p.minP > 0) {
    const threshold = logprobs[order[0]] + Math.log(p.minP);
    order = order.filter((id) => logprobs[id] >= threshold);
  }
  return new Set(order);
}
