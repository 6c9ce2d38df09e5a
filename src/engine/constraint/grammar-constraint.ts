/**
 * A grammar as a TokenConstraint: one compiled grammar and one vocabulary,
 * shared by every generation that uses them, with the masks of the states
 * already met cached by state key. A generation that revisits a state (every
 * token inside a string, every element of a list) gets its mask from the cache;
 * so does a later request with the same grammar.
 */
import type { ConstraintMatcher, TokenConstraint } from '../types.ts';
import type { Grammar } from './grammar.ts';
import { computeMask } from './mask.ts';
import { canonicalThreads, initialThreads, isComplete, stateKey, step, SPECIAL_SYMBOL_BASE, type Frame } from './matcher.ts';
import type { TokenMask } from './token-mask.ts';
import type { TokenVocabulary } from './vocabulary.ts';

/** Bitsets are 12.5 KB for a 100k vocabulary: a few hundred states per grammar is plenty. */
const DEFAULT_CACHED_STATES = 256;

interface State {
  threads: readonly Frame[];
  mask?: TokenMask;
}

/** A token the constraint does not allow was fed to it: a bug in whatever chose the token. */
export class ConstraintViolation extends Error {}

export class GrammarConstraint implements TokenConstraint {
  private readonly states = new Map<string, State>();
  private readonly initial: State;
  /** Masks computed (cache misses), for tests and benchmarks. */
  masksComputed = 0;

  constructor(
    readonly grammar: Grammar,
    readonly vocabulary: TokenVocabulary,
    private readonly maxCachedStates = DEFAULT_CACHED_STATES,
  ) {
    this.initial = { threads: canonicalThreads(initialThreads(grammar.root)) };
  }

  start(): ConstraintMatcher {
    return new GrammarMatcher(this, this.initial);
  }

  /** The state for `threads`: the cached one with the same key (its mask and memoised frames reused) or a new one. */
  stateFor(threads: readonly Frame[]): State {
    const key = stateKey(threads);
    let state = this.states.get(key);
    if (state) {
      this.states.delete(key); // re-insert: the map's order is least recently used first
    } else {
      state = { threads: canonicalThreads(threads) };
      if (this.states.size >= this.maxCachedStates) this.states.delete(this.states.keys().next().value!);
    }
    this.states.set(key, state);
    return state;
  }

  maskOf(state: State): TokenMask {
    if (!state.mask) {
      state.mask = computeMask(this.vocabulary, state.threads);
      this.masksComputed++;
    }
    return state.mask;
  }
}

class GrammarMatcher implements ConstraintMatcher {
  constructor(
    private readonly constraint: GrammarConstraint,
    private state: State,
  ) {}

  allowed(): TokenMask {
    return this.constraint.maskOf(this.state);
  }

  accept(id: number): void {
    const vocabulary = this.constraint.vocabulary;
    let threads = this.state.threads;
    if (vocabulary.isSpecial(id)) {
      threads = step(threads, SPECIAL_SYMBOL_BASE + id);
    } else {
      const bytes = vocabulary.tokenBytes(id) ?? [];
      if (bytes.length === 0) threads = [];
      for (let i = 0; i < bytes.length && threads.length > 0; i++) threads = step(threads, bytes[i]);
    }
    if (threads.length === 0) throw new ConstraintViolation(`token ${id} is not allowed by the constraint at this point`);
    this.state = this.constraint.stateFor(threads);
  }

  get done(): boolean {
    return isComplete(this.state.threads);
  }
}
