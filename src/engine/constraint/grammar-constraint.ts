/**
 * A grammar as a TokenConstraint: one compiled grammar and one vocabulary,
 * shared by every generation that uses them, with the masks of the states
 * already met cached by state key. A generation that revisits a state (every
 * token inside a string, every element of a list) gets its mask from the cache;
 * so does a later request with the same grammar.
 *
 * Memory is bounded in bytes: the masks (least recently used states out) get
 * half the budget, the automaton's interned frames and memos the other half;
 * when those fill it, the constraint starts a new arena (the running
 * generations move their threads over at their next token).
 *
 * Closing in time: a matcher told how many tokens remain allows only tokens
 * after which the grammar can still be completed in what is left (see
 * computeMask's budget), so a constrained reply ends valid before max_tokens
 * cuts it whenever its shortest ending (counted in bytes, each byte being a
 * token) fits; when even that does not fit, only tokens that bring the ending
 * closer are allowed.
 */
import type { ConstraintMatcher, TokenConstraint } from '../types.ts';
import type { Grammar } from './grammar.ts';
import { computeMask } from './mask.ts';
import { Arena, canonicalThreads, END, initialThreads, isComplete, stateCost, stateKey, step, SPECIAL_SYMBOL_BASE, type Frame } from './matcher.ts';
import type { TokenMask } from './token-mask.ts';
import type { TokenVocabulary } from './vocabulary.ts';

export interface ConstraintOptions {
  /** Estimated bytes of masks, frames and memos one constraint keeps (default 32 MiB). */
  maxBytes?: number;
  /** Threads one state keeps (default 1024; see Arena). */
  maxThreads?: number;
}

const DEFAULT_BYTES = 32 * 2 ** 20;
const DEFAULT_THREADS = 1024;
/** Steered masks kept per state (one per remaining-token budget met near the end of replies). */
const STEERED_PER_STATE = 8;
const STATE_BYTES = 200;

interface State {
  key: string;
  threads: readonly Frame[];
  /** The fewest symbols that complete the grammar from here. */
  cost: number;
  mask?: TokenMask;
  /** An upper bound on the cost after any token of `mask`. */
  worst?: number;
  /** Masks restricted to a budget (remaining tokens - 1), by budget. */
  steered?: Map<number, TokenMask>;
  bytes: number;
}

/** A token the constraint does not allow was fed to it: a bug in whatever chose the token. */
export class ConstraintViolation extends Error {}

export class GrammarConstraint implements TokenConstraint {
  private readonly states = new Map<string, State>();
  private arena: Arena;
  private initial: State;
  private stateBytes = 0;
  private readonly maxBytes: number;
  private readonly maxThreads: number;
  /** Masks computed (cache misses), for tests and benchmarks. */
  masksComputed = 0;
  /** Times the arena filled its half of the budget and was replaced. */
  restarts = 0;

  constructor(
    readonly grammar: Grammar,
    readonly vocabulary: TokenVocabulary,
    options: ConstraintOptions = {},
  ) {
    this.maxBytes = options.maxBytes ?? DEFAULT_BYTES;
    this.maxThreads = options.maxThreads ?? DEFAULT_THREADS;
    this.arena = new Arena(this.maxBytes / 2, this.maxThreads);
    this.initial = this.newInitial();
  }

  /** Estimated bytes held: the grammar, the cached states and masks, the arena. */
  get bytes(): number {
    return this.grammar.bytes + this.stateBytes + this.arena.bytes;
  }

  start(): ConstraintMatcher {
    if (this.arena.full) this.restart();
    return new GrammarMatcher(this, this.initial);
  }

  private newInitial(): State {
    return this.stateFor(initialThreads(this.grammar.root, this.arena));
  }

  private restart(): void {
    this.restarts++;
    this.arena = new Arena(this.maxBytes / 2, this.maxThreads);
    this.states.clear();
    this.stateBytes = 0;
    this.initial = this.newInitial();
  }

  /** The state for `threads`: the cached one with the same key (its mask and memoised frames reused) or a new one. */
  stateFor(threads: readonly Frame[]): State {
    if (this.arena.full) this.restart();
    const arena = this.arena;
    const own = threads.every((t) => t === END || t.arena === arena) ? threads : threads.map((t) => arena.adopt(t));
    const key = stateKey(own);
    let state = this.states.get(key);
    if (state) {
      this.states.delete(key); // re-insert: the map's order is least recently used first
      this.states.set(key, state);
      return state;
    }
    const canonical = canonicalThreads(own).slice(0, this.maxThreads);
    state = { key, threads: canonical, cost: stateCost(canonical), bytes: STATE_BYTES + 8 * canonical.length };
    this.states.set(key, state);
    this.track(state, state.bytes);
    return state;
  }

  /** The allowed tokens in `state`, with `remaining` tokens left to generate (this one included). */
  maskOf(state: State, remaining = Infinity): TokenMask {
    if (!state.mask) {
      const { mask, worst } = computeMask(this.vocabulary, state.threads);
      state.mask = mask;
      state.worst = worst;
      this.masksComputed++;
      state.bytes += mask.bytes;
      this.track(state, mask.bytes);
    }
    // After this token, remaining - 1 are left. When even the shortest ending is longer (in bytes, an upper bound
    // on its tokens), every token must still bring the ending closer: longer tokens may yet make it fit.
    const budget = state.cost > remaining ? state.cost - 1 : remaining - 1;
    if (state.worst! <= budget) return state.mask;
    let steered = state.steered?.get(budget);
    if (!steered) {
      steered = computeMask(this.vocabulary, state.threads, budget).mask;
      this.masksComputed++;
      // Every byte is a token, so a state whose cost fits always allows one; a vocabulary without them could not.
      if (steered.count === 0) return state.mask;
      state.steered ??= new Map();
      if (state.steered.size >= STEERED_PER_STATE) {
        const first = state.steered.keys().next().value!;
        const dropped = state.steered.get(first)!;
        state.steered.delete(first);
        state.bytes -= dropped.bytes;
        this.track(state, -dropped.bytes);
      }
      state.steered.set(budget, steered);
      state.bytes += steered.bytes;
      this.track(state, steered.bytes);
    }
    return steered;
  }

  /** Counts bytes a state gained, if it is (still) cached (an evicted one's masks go with its matchers). */
  private track(state: State, bytes: number): void {
    if (this.states.get(state.key) !== state) return;
    this.stateBytes += bytes;
    while (this.stateBytes > this.maxBytes / 2 && this.states.size > 1) {
      const oldest = this.states.keys().next().value!;
      const evicted = this.states.get(oldest)!;
      this.states.delete(oldest);
      this.stateBytes -= evicted.bytes;
    }
  }
}

class GrammarMatcher implements ConstraintMatcher {
  constructor(
    private readonly constraint: GrammarConstraint,
    private state: ReturnType<GrammarConstraint['stateFor']>,
  ) {}

  allowed(remaining?: number): TokenMask {
    return this.constraint.maskOf(this.state, remaining);
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
