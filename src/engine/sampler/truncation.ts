/**
 * Truncation units (top-k, top-p, min-p): each narrows the candidate set to its
 * heaviest tokens, in the order they are listed (Hugging Face's order: top-k,
 * then top-p over what top-k kept, then min-p). None sorts the vocabulary.
 */
import type { CandidateSet } from './candidate-set.ts';

export interface Truncation {
  apply(candidates: CandidateSet): void;
}

/** Keeps the k most likely tokens. */
export class TopK implements Truncation {
  constructor(private readonly k: number) {}

  apply(candidates: CandidateSet): void {
    candidates.keepTopK(this.k);
  }
}

/** Keeps the smallest set of most likely tokens whose probability sums to at least p. */
export class TopP implements Truncation {
  constructor(private readonly p: number) {}

  apply(candidates: CandidateSet): void {
    candidates.keepTopMass(this.p * candidates.total);
  }
}

/**
 * Keeps tokens at least minP times as likely as the most likely one. The most
 * likely token has weight exactly 1, so the test is weight ≥ minP.
 */
export class MinP implements Truncation {
  constructor(private readonly minP: number) {}

  apply(candidates: CandidateSet): void {
    candidates.keepAtLeast(this.minP);
  }
}
