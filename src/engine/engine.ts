/**
 * The MM-Rec engine: one model, many concurrent generations, continuously batched.
 *
 * A scheduler loop drives the model. Each round it
 *   1. admits waiting generations into the batch (at most maxBatchSize at once),
 *      restoring the longest cached prefix of each prompt from the state cache;
 *   2. runs one decode step: every decoding generation is a row of one batched
 *      call with one token per row (their states stacked in, split back out),
 *      and samples each row's next token after the call;
 *   3. runs one prefill chunk (at most prefillChunkSize tokens) of the oldest
 *      prompt still prefilling, as a separate call, since chunks differ in length.
 * Generations join and leave between steps, so a long prompt never freezes the
 * running streams for more than one chunk. Calls are posted to the model
 * worker ahead of time: while the main thread samples the decode step's rows
 * and hands tokens to HTTP, the worker already runs the prefill chunk (and,
 * with decodeLanes 2, the other half of the batch).
 *
 * Prefill feeds all prompt tokens but the last without asking for logits (the
 * LM head is skipped over the prompt); the last prompt token is the
 * generation's first decode row. Generations with the same prompt that arrive
 * while it is being prefilled (a request's n choices) share one prefill and
 * copy its state.
 *
 * The state cache (state-cache.ts) keeps the state at every cache boundary of a
 * prompt (the chat template's message ends: prefill chunks are split there), at
 * the end of the prompt, and at the end of the output (after one extra row step
 * that feeds the last generated token), so the next turn of a conversation
 * prefills only its new messages. A request may also ask for the state after
 * its prompt and after its output (onPromptState, onFinalState: the latter
 * takes that same extra step, cache or not), and start from a transient
 * state of its own, which the cache never sees: how a stored conversation is
 * continued from its state alone.
 */
import { statSync } from 'node:fs';
import type { ConstraintMatcher, EmbedRequest, Engine, EngineStats, GenerateRequest, GeneratedToken, Generation, GenerationResult, ModelInfo, ScoreRequest, ScoreResult } from './types.ts';
import { DEFAULT_SCORING, scoreSequences } from './scoring.ts';
import { DEFAULT_EMBEDDING_ROWS, embedSequences, embeddingBlocks } from './embedding.ts';
import { readModelDir, type ModelConfig } from './model-dir.ts';
import { ModelLoadError, OnnxModel, type ExecutionProviderChoice, type ModelRunner } from './onnx-model.ts';
import { WorkerModel } from './worker-model.ts';
import { emptyState, stackStates, stateRow, type RecurrentState, type StateSpec } from './state.ts';
import { StateCache } from './state-cache.ts';
import { TokenChannel } from './token-channel.ts';
import { CandidateSet } from './sampler/candidate-set.ts';
import { Sampler } from './sampler/sampler.ts';
import { ModelOutputError } from './sampler/distribution.ts';

export const DEFAULT_PREFILL_CHUNK = 256;
export const DEFAULT_MAX_BATCH_SIZE = 64;
/**
 * Background prompts prefilled per round at most. A round's calls are queued at the model
 * before an interactive prompt that arrives meanwhile: fewer of them keep its first token near.
 */
const BACKGROUND_PREFILLS_PER_ROUND = 1;
/** With two decode lanes: rows per lane below which decoding stays in one lane. */
const LANE_MIN_ROWS = 4;

export interface StepInfo {
  phase: 'prefill' | 'decode';
  /** The generations this step served (a shared prefill serves several). */
  generationIds: number[];
  /** Batch rows of the call. */
  rows: number;
  /** Tokens per row. */
  tokens: number;
  /** Time the model spent on the call, queueing excluded. */
  ms: number;
}

export interface StateCacheSettings {
  /** Budget in bytes (states, key tokens, bookkeeping); 0 = no cache. */
  maxBytes: number;
  /** Save the cache here on close (and every saveIntervalMs) and load it at start (loadCache). */
  dir?: string;
  /**
   * Also save every this many ms (when something changed). Default 0: only on
   * close, since a save writes the whole cache from this thread (about 1 s per
   * 256 MiB) and would stall every stream meanwhile.
   */
  saveIntervalMs?: number;
}

export interface EngineOptions {
  /** auto: CUDA, else WebGPU, else CPU (the reasons land in info.providerReason). */
  device?: ExecutionProviderChoice;
  intraOpThreads?: number;
  interOpThreads?: number;
  /** Largest number of prompt tokens per prefill call. */
  prefillChunkSize?: number;
  /** Generations in the batch at once (decoding or prefilling); more wait. */
  maxBatchSize?: number;
  /** Rows background generations may take (default three quarters of maxBatchSize): the rest stay free for interactive ones. */
  maxBackgroundRows?: number;
  /**
   * 1 (default): every decoding generation is a row of one call per step. 2: they
   * are split into two lanes whose steps alternate, so the model runs one lane
   * while this thread samples the other (and does the HTTP work its tokens cause).
   */
  decodeLanes?: 1 | 2;
  /** The conversation state cache; absent or maxBytes 0 = off. */
  stateCache?: StateCacheSettings;
  /**
   * 'worker' (default) keeps onnxruntime off the event loop; 'main' runs it on
   * the calling thread, for tools that have no event loop to protect.
   */
  thread?: 'worker' | 'main';
  /** Called after every model step: lets tests, benchmarks and metrics see the model work. */
  onStep?: (step: StepInfo) => void;
  /** Where the engine reports what it handles itself (a failed state cache save); pino's logger fits. */
  log?: EngineLog;
}

export interface EngineLog {
  warn(fields: Record<string, unknown>, message: string): void;
}

export class EngineClosedError extends Error {
  constructor() {
    super('the engine is closed and accepts no new generations');
  }
}

/** One generation, from generate() until its result settles (and its cache tail step, if any, ran). */
interface Sequence {
  id: number;
  request: GenerateRequest;
  sampler: Sampler;
  /** The request's constraint, this generation's position in it. */
  constraint?: ConstraintMatcher;
  stopIds: Set<number>;
  tokens: TokenChannel<GeneratedToken>;
  signal: AbortSignal;
  started: number;
  settle: { resolve(r: GenerationResult): void; reject(e: unknown): void };
  /** State before `next` is fed (set once prefill is done). */
  state?: RecurrentState;
  /** The token the next decode step feeds. */
  next: number;
  /** Every sampled token, the stop token included (the cache key of the output's end). */
  output: number[];
  completionTokens: number;
  timeToFirstTokenMs?: number;
  cachedTokens: number;
  /** The result is settled. */
  done: boolean;
  /** Done, and in the batch for one more step that feeds its last token, to cache the state after it. */
  tail: boolean;
  /** How it ended, while its tail step runs before it settles (request.onFinalState). */
  ending?: 'stop' | 'length';
  /** A decode step with this row is in flight. */
  stepping: boolean;
  /** Which of the two alternating decode lanes the row steps in (see schedule). */
  lane?: number;
}

/** One prompt being prefilled, for one generation or several with the same prompt. */
interface PrefillTask {
  prompt: readonly number[];
  /** Which initial state the prompt starts from ('' = zeros): only prompts from the same one share a prefill. */
  variant: string;
  /** Prepended to the prompt in the cache's keys: a state-tuned model's states live apart from the base's. */
  keyPrefix: readonly number[];
  /** Prompt tokens fed so far (the state covers prompt[0..pos)). */
  pos: number;
  /** Prefill stops before the last prompt token, which is fed by the first decode step. */
  end: number;
  state: RecurrentState;
  /** Offsets in (pos, end) where a chunk must end (cache boundaries). */
  cuts: number[];
  members: Sequence[];
  cachedTokens: number;
  /** Its states go into the state cache (not for a transient initial state). */
  cached: boolean;
}

function isInteractive(t: PrefillTask): boolean {
  return t.members.some((s) => s.request.priority !== 'background');
}

function samePrompt(a: readonly number[], b: readonly number[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class MMRecEngine implements Engine {
  /** Sampling is synchronous, so all samplers share one vocabulary-sized scratch. */
  private readonly candidates: CandidateSet;
  private readonly inFlight = new Set<Promise<GenerationResult>>();
  private readonly prefillChunk: number;
  private readonly maxBatch: number;
  private readonly maxBackground: number;
  private readonly decodeLanes: 1 | 2;
  private readonly cache?: StateCache;
  private readonly saveTimer?: NodeJS.Timeout;
  private nextGenerationId = 1;
  private closing?: Promise<void>;

  /** Not yet in the batch (it is full). */
  private readonly waiting: Sequence[] = [];
  /** Prompts being prefilled, oldest first. */
  private prefills: PrefillTask[] = [];
  /** Rows of the next decode step. */
  private decoding: Sequence[] = [];
  /** The scheduler loop, while it runs. */
  private loop?: Promise<void>;

  constructor(
    readonly info: ModelInfo,
    readonly config: ModelConfig,
    private readonly model: ModelRunner,
    private readonly options: EngineOptions = {},
    /** Guards a saved state cache against being loaded for another model (loadEngine sets it). */
    modelKey = `${info.id}|${JSON.stringify(model.signature)}`,
  ) {
    this.candidates = new CandidateSet(info.vocabSize);
    this.prefillChunk = options.prefillChunkSize ?? DEFAULT_PREFILL_CHUNK;
    if (!Number.isSafeInteger(this.prefillChunk) || this.prefillChunk < 1) throw new RangeError(`prefillChunkSize must be a positive integer, got ${this.prefillChunk}`);
    this.maxBatch = options.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE;
    this.maxBackground = options.maxBackgroundRows ?? Math.max(1, this.maxBatch - Math.max(1, Math.floor(this.maxBatch / 4)));
    this.decodeLanes = options.decodeLanes ?? 1;
    if (this.decodeLanes !== 1 && this.decodeLanes !== 2) throw new RangeError(`decodeLanes must be 1 or 2, got ${this.decodeLanes}`);
    if (!Number.isSafeInteger(this.maxBatch) || this.maxBatch < 1) throw new RangeError(`maxBatchSize must be a positive integer, got ${this.maxBatch}`);
    const cache = options.stateCache;
    if (cache && cache.maxBytes > 0) {
      this.cache = new StateCache(model.signature.states, { maxBytes: cache.maxBytes, dir: cache.dir, modelKey, name: info.id });
      if (cache.dir) {
        const interval = cache.saveIntervalMs ?? 0;
        if (interval > 0) {
          this.saveTimer = setInterval(() => this.saveCache(), interval);
          this.saveTimer.unref();
        }
      }
    }
  }

  /** The graph's state tensors (an initial state must match them). */
  get stateSpecs(): readonly StateSpec[] {
    return this.model.signature.states;
  }

  /** Loads the saved state cache (when a directory is configured); says what it found. */
  loadCache(): { entries: number; ignored?: string; dropped?: number } {
    return this.cache?.load() ?? { entries: 0 };
  }

  /** Saves the state cache to its directory now; returns the bytes written (0: nothing to save, or the save failed and was logged). */
  saveCache(): number {
    try {
      return this.cache?.save() ?? 0;
    } catch (e) {
      // A full or read-only disk must not take the server down: the cache stays in memory and the previous file stays as it was.
      this.options.log?.warn({ model: this.info.id, err: (e as Error).message }, 'state cache not saved');
      return 0;
    }
  }

  stats(): EngineStats {
    const s: EngineStats = {
      waiting: this.waiting.length,
      prefilling: this.prefills.reduce((n, t) => n + t.members.length, 0),
      decoding: this.decoding.filter((q) => !q.tail).length,
    };
    if (this.cache) s.stateCache = this.cache.stats();
    return s;
  }

  /**
   * Teacher-forced scores (scoring.ts). Its model calls queue behind the
   * scheduler's at the model worker, so a scoring run shares the model with
   * live traffic call by call rather than holding it.
   */
  score(requests: readonly ScoreRequest[], signal?: AbortSignal): Promise<ScoreResult[]> {
    if (this.closing) return Promise.reject(new EngineClosedError());
    for (const r of requests) {
      if (r.ids.length !== r.mask.length) throw new RangeError(`a scored sequence has ${r.ids.length} ids and ${r.mask.length} mask entries`);
      const bad = r.ids.find((id) => !Number.isInteger(id) || id < 0 || id >= this.info.vocabSize);
      if (bad !== undefined) throw new RangeError(`token id ${bad} is outside the vocabulary [0, ${this.info.vocabSize})`);
    }
    return this.trackOutsideScheduler(scoreSequences(this.model, requests, { ...DEFAULT_SCORING, padId: this.info.eosTokenIds[0], signal }));
  }

  /**
   * Last-state embeddings (embedding.ts), batched in calls of at most one
   * prefill chunk's tokens; like score(), its calls queue behind the
   * scheduler's at the model worker, so live streams wait at most one call.
   */
  embed(requests: readonly EmbedRequest[], signal?: AbortSignal): Promise<Float32Array[]> {
    if (this.closing) return Promise.reject(new EngineClosedError());
    for (const r of requests) {
      if (r.ids.length === 0) throw new RangeError('an embedded sequence needs at least one token');
      const bad = r.ids.find((id) => !Number.isInteger(id) || id < 0 || id >= this.info.vocabSize);
      if (bad !== undefined) throw new RangeError(`token id ${bad} is outside the vocabulary [0, ${this.info.vocabSize})`);
    }
    return this.trackOutsideScheduler(embedSequences(this.model, requests, { rows: DEFAULT_EMBEDDING_ROWS, tokensPerCall: this.prefillChunk, signal }));
  }

  /** Work that makes its own model calls (scoring, embeddings): close() waits for it as for generations. */
  private trackOutsideScheduler<T>(run: Promise<T>): Promise<T> {
    const tracked = run.then(
      () => undefined as unknown as GenerationResult,
      () => undefined as unknown as GenerationResult,
    );
    this.inFlight.add(tracked);
    void tracked.finally(() => this.inFlight.delete(tracked));
    return run;
  }

  generate(request: GenerateRequest): Generation {
    if (this.closing) throw new EngineClosedError();
    this.validate(request);
    const prompt = request.promptIds;
    // Everything that can throw on bad parameters (a seed, a constraint) runs before the generation is registered:
    // a generation that is registered always settles.
    const constraint = request.constraint?.start();
    const sampler = new Sampler(request.sampling, prompt, this.candidates, constraint);

    const cancel = new AbortController();
    const onAbort = () => cancel.abort();
    request.signal?.addEventListener('abort', onAbort, { once: true });
    if (request.signal?.aborted) cancel.abort();

    const tokens = new TokenChannel<GeneratedToken>(onAbort);
    let settle!: Sequence['settle'];
    const promise = new Promise<GenerationResult>((resolve, reject) => (settle = { resolve, reject }));
    const result = promise.then(
      (r) => {
        tokens.close();
        return r;
      },
      (e: unknown) => {
        tokens.fail(e);
        throw e;
      },
    );
    // A consumer that only iterates the tokens sees the error there; do not also report it as unhandled.
    result.catch(() => {});
    this.inFlight.add(result);
    void result
      .finally(() => {
        this.inFlight.delete(result);
        request.signal?.removeEventListener('abort', onAbort);
      })
      .catch(() => {});

    this.waiting.push({
      id: this.nextGenerationId++,
      request,
      // Built as before batching: one sampler per generation, from its parameters, prompt and constraint.
      sampler,
      constraint,
      stopIds: new Set(request.stopTokenIds),
      tokens,
      signal: cancel.signal,
      started: performance.now(),
      settle,
      next: prompt[prompt.length - 1],
      output: [],
      completionTokens: 0,
      cachedTokens: 0,
      done: false,
      tail: false,
      stepping: false,
    });
    this.wake();
    return { tokens, result };
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.allSettled([...this.inFlight]);
      while (this.loop) await this.loop; // the last cache tail steps
      if (this.saveTimer) clearInterval(this.saveTimer);
      this.saveCache();
      await this.model.dispose();
    })();
    return this.closing;
  }

  private validate(request: GenerateRequest): void {
    const { promptIds, maxTokens } = request;
    if (promptIds.length === 0) throw new RangeError('promptIds is empty: the model needs at least one token to predict from');
    const bad = promptIds.find((id) => !Number.isInteger(id) || id < 0 || id >= this.info.vocabSize);
    if (bad !== undefined) throw new RangeError(`prompt token id ${bad} is outside the vocabulary [0, ${this.info.vocabSize})`);
    if (!Number.isSafeInteger(maxTokens) || maxTokens < 1) throw new RangeError(`maxTokens must be a positive integer, got ${maxTokens}`);
    const initial = request.initialState?.state;
    if (initial) {
      const specs = this.model.signature.states;
      const fits = initial.batch === 1 && initial.tensors.length === specs.length && specs.every((spec, i) => initial.tensors[i].length === spec.rowSize && (spec.dtype === 'float16') === initial.tensors[i] instanceof Uint16Array);
      if (!fits) throw new RangeError(`the initial state "${request.initialState!.key}" does not have this model's state shapes`);
    }
  }

  /** Starts the scheduler loop unless it runs. It starts on a microtask, so generations created together (n choices) are admitted together. */
  private wake(): void {
    if (this.loop) return;
    this.loop = (async () => {
      await Promise.resolve();
      try {
        await this.schedule();
      } catch (e) {
        // A bug in the scheduler itself: fail every generation rather than leave them hanging.
        for (const s of [...this.waiting, ...this.prefills.flatMap((t) => t.members), ...this.decoding]) this.fail(s, e);
        this.waiting.length = 0;
        this.prefills = [];
        this.decoding = [];
      } finally {
        this.loop = undefined;
      }
    })();
    // Work that arrived while the loop was returning starts a new one.
    void this.loop.then(() => {
      if (this.waiting.length > 0 || this.prefills.length > 0 || this.decoding.length > 0) this.wake();
    });
  }

  /**
   * The loop. Calls are posted to the model ahead of time and awaited in the
   * order posted (the model runs them in that order), so a prefill chunk runs
   * while this thread samples the decode step posted before it. With
   * decodeLanes 2 and enough rows, the decoding generations are split into two
   * lanes that alternate: while the model runs one lane's step, this thread
   * samples the other lane's rows and posts its next step, so the model is not
   * idle while sampling and HTTP work happen. At most one decode step per lane
   * and one prefill round are in flight.
   */
  private async schedule(): Promise<void> {
    const pending: Array<Promise<unknown>> = [];
    const laneBusy = [false, false];
    let prefilling = false;
    for (;;) {
      this.dropAborted();
      this.admit();
      const lanes = this.decodeLanes === 2 && this.decoding.length >= 2 * LANE_MIN_ROWS ? 2 : 1;
      const size = [0, 0];
      for (const s of this.decoding) if (s.lane !== undefined && s.lane < lanes) size[s.lane]++;
      for (const s of this.decoding) {
        if (s.stepping || (s.lane !== undefined && s.lane < lanes)) continue;
        // A row new to decoding (or from a lane that closed) joins the smaller lane, an idle one on a tie.
        s.lane = lanes === 1 || size[0] < size[1] || (size[0] === size[1] && !laneBusy[0]) ? 0 : 1;
        size[s.lane]++;
      }
      for (let lane = 0; lane < lanes; lane++) {
        if (laneBusy[lane]) continue;
        const rows = this.decoding.filter((s) => s.lane === lane && !s.stepping);
        if (rows.length === 0) continue;
        for (const r of rows) r.stepping = true;
        laneBusy[lane] = true;
        pending.push(this.decodeStep(rows).finally(() => (laneBusy[lane] = false)));
      }
      if (!prefilling) {
        const tasks = this.nextPrefills();
        if (tasks.length > 0) {
          prefilling = true;
          pending.push(Promise.all(tasks.map((t) => this.prefillStep(t))).finally(() => (prefilling = false)));
        }
      }
      const oldest = pending.shift();
      if (!oldest) return;
      await oldest;
    }
  }

  /**
   * The oldest prompt's next chunk; short prompts behind it come along while the
   * round stays within one chunk's worth of tokens (many small prompts arriving
   * together do not take a round each). Interactive prompts go before
   * background ones, so batch work never delays an interactive first token
   * by its own prefill.
   */
  private nextPrefills(): PrefillTask[] {
    const tasks: PrefillTask[] = [];
    let budget = this.prefillChunk;
    const ordered = [...this.prefills.filter(isInteractive), ...this.prefills.filter((t) => !isInteractive(t))];
    let background = 0;
    for (const t of ordered) {
      const left = t.end - t.pos;
      if (tasks.length > 0 && left > budget) break;
      if (!isInteractive(t) && ++background > BACKGROUND_PREFILLS_PER_ROUND) break;
      tasks.push(t);
      budget -= left;
      if (budget <= 0) break;
    }
    return tasks;
  }

  private get active(): number {
    let n = this.decoding.reduce((k, s) => k + (s.tail ? 0 : 1), 0);
    for (const t of this.prefills) n += t.members.length;
    return n;
  }

  /**
   * Interactive generations first, in arrival order; background ones after
   * them, and only into the rows they may take, so that batch work fills the
   * gaps interactive traffic leaves instead of queueing ahead of it.
   */
  private admit(): void {
    let room = this.maxBatch - this.active;
    for (let i = 0; room > 0 && i < this.waiting.length; ) {
      if (this.waiting[i].request.priority === 'background' || !this.activate(this.waiting[i])) i++;
      else {
        this.waiting.splice(i, 1);
        room--;
      }
    }
    let backgroundRoom = Math.min(room, this.maxBackground - this.activeBackground);
    for (let i = 0; backgroundRoom > 0 && i < this.waiting.length; ) {
      if (this.waiting[i].request.priority !== 'background' || !this.activate(this.waiting[i])) i++;
      else {
        this.waiting.splice(i, 1);
        backgroundRoom--;
      }
    }
  }

  private get activeBackground(): number {
    let n = this.decoding.reduce((k, s) => k + (!s.tail && s.request.priority === 'background' ? 1 : 0), 0);
    for (const t of this.prefills) n += t.members.filter((s) => s.request.priority === 'background').length;
    return n;
  }

  /**
   * A cache key token per initial state: negative, so it can never equal a
   * token id, and first in the key, so the states of different initial
   * states never share a prefix.
   */
  private readonly variantTokens = new Map<string, number>();

  private keyPrefixOf(request: GenerateRequest): number[] {
    const key = request.initialState?.key;
    if (key === undefined) return [];
    let token = this.variantTokens.get(key);
    if (token === undefined) {
      token = -1 - this.variantTokens.size;
      this.variantTokens.set(key, token);
    }
    return [token];
  }

  /**
   * Puts a generation in the batch: joins a prefill of the same prompt, or restores the longest cached prefix and prefills the rest.
   * False when it should wait instead: another prompt is prefilling the same beginning, up to a point whose state will be cached
   * (see prefillingPrefixOf), so it waits for that state rather than prefill the same tokens again.
   */
  private activate(seq: Sequence): boolean {
    const prompt = seq.request.promptIds;
    const end = prompt.length - 1;
    const variant = seq.request.initialState?.key ?? '';
    const shared = this.prefills.find((t) => t.members.length > 0 && t.variant === variant && samePrompt(t.prompt, prompt));
    if (shared) {
      shared.members.push(seq);
      seq.cachedTokens = shared.cachedTokens;
      return true;
    }
    const cached = this.cache !== undefined && seq.request.initialState?.transient !== true;
    // Waiting for another prefill's state helps only a prompt the cache serves (a transient state's never is).
    if (cached && this.prefillingPrefixOf(prompt, variant, seq.request.priority === 'background')) return false;
    const keyPrefix = cached ? this.keyPrefixOf(seq.request) : [];
    let state: RecurrentState | undefined;
    let pos = 0;
    if (cached && end > 0) {
      const hit = this.cache!.lookup(keyPrefix.length > 0 ? [...keyPrefix, ...prompt] : prompt, end + keyPrefix.length);
      if (hit && hit.length > keyPrefix.length) {
        state = hit.state;
        pos = hit.length - keyPrefix.length;
      }
    }
    seq.cachedTokens = pos;
    state ??= seq.request.initialState?.state ?? emptyState(this.model.signature.states, 1);
    if (pos === end) {
      seq.state = state;
      this.decoding.push(seq);
      return true;
    }
    const cuts = [...new Set(seq.request.cacheBoundaries ?? [])].filter((b) => b > pos && b < end).sort((a, b) => a - b);
    this.prefills.push({ prompt, variant, keyPrefix, pos, end, state, cuts, members: [seq], cachedTokens: pos, cached });
    return true;
  }

  /**
   * Whether a prefill in progress has yet to reach a point that it caches (a cache boundary, or its end) and up to which `prompt`
   * is the same: a long system prompt or few-shot block shared by lines that arrive together is then prefilled once, and the
   * others restore it from the cache as soon as it is (prompts that are the same throughout share the prefill itself, above).
   */
  private prefillingPrefixOf(prompt: readonly number[], variant: string, background: boolean): boolean {
    const end = prompt.length - 1;
    for (const t of this.prefills) {
      // An interactive prompt waits only for an interactive prefill: background ones yield to it (nextPrefills).
      if (!t.cached || t.variant !== variant || t.members.length === 0 || (!background && !isInteractive(t))) continue;
      const points = [...t.cuts, t.end].filter((c) => c > t.pos && c <= end);
      if (points.length === 0) continue;
      const far = Math.max(...points);
      let same = 0;
      while (same < far && prompt[same] === t.prompt[same]) same++;
      if (points.some((c) => c <= same)) return true;
    }
    return false;
  }

  /** Aborted generations leave the batch (and the queue) before the next step. */
  private dropAborted(): void {
    const aborted = (s: Sequence) => !s.done && s.signal.aborted;
    for (const s of this.waiting.filter(aborted)) this.finish(s, 'abort');
    this.waiting.splice(0, this.waiting.length, ...this.waiting.filter((s) => !s.done));
    for (const t of this.prefills) {
      for (const s of t.members.filter(aborted)) this.finish(s, 'abort');
      t.members = t.members.filter((s) => !s.done);
    }
    this.prefills = this.prefills.filter((t) => t.members.length > 0);
    for (const s of this.decoding.filter(aborted)) this.finish(s, 'abort');
    this.decoding = this.decoding.filter((s) => !s.done || s.tail);
  }

  private finish(seq: Sequence, finishReason: GenerationResult['finishReason']): void {
    if (seq.done) return;
    seq.done = true;
    seq.settle.resolve({
      finishReason,
      promptTokens: seq.request.promptIds.length,
      completionTokens: seq.completionTokens,
      timeToFirstTokenMs: seq.timeToFirstTokenMs,
      cachedTokens: seq.cachedTokens,
    });
  }

  private fail(seq: Sequence, error: unknown): void {
    if (seq.done) return;
    seq.done = true;
    seq.settle.reject(error);
  }

  private report(phase: StepInfo['phase'], seqs: readonly Sequence[], rows: number, tokens: number, ms: number): void {
    try {
      this.options.onStep?.({ phase, generationIds: seqs.map((s) => s.id), rows, tokens, ms });
    } catch {
      // An observer's fault (metrics, a test hook) must not fail the generations it observes.
    }
  }

  /** One prefill chunk of `task`: up to the chunk size, the next cut or the end of the prefill, whichever comes first. */
  private async prefillStep(task: PrefillTask): Promise<void> {
    let to = Math.min(task.pos + this.prefillChunk, task.end);
    while (task.cuts.length > 0 && task.cuts[0] <= task.pos) task.cuts.shift();
    if (task.cuts.length > 0 && task.cuts[0] < to) to = task.cuts[0];
    const started = performance.now();
    try {
      const out = await this.model.forward([task.prompt.slice(task.pos, to)], task.state, 'none');
      this.report('prefill', task.members, 1, to - task.pos, out.runMs ?? performance.now() - started);
      task.state = out.state;
      task.pos = to;
    } catch (e) {
      for (const s of task.members) this.fail(s, e);
      this.prefills = this.prefills.filter((t) => t !== task);
      return;
    }
    // The state at a boundary and at the end of the prompt is what a later request may continue from.
    if (this.cache && task.cached && (to === task.end || task.cuts[0] === to)) {
      const key = task.keyPrefix.length > 0 ? [...task.keyPrefix, ...task.prompt] : task.prompt;
      this.cache.insert(key, to + task.keyPrefix.length, task.state);
    }
    if (to < task.end) return;
    this.prefills = this.prefills.filter((t) => t !== task);
    for (const s of task.members) {
      if (s.done) continue;
      s.state = task.state; // shared, never modified: each decode step makes new states
      this.decoding.push(s);
    }
  }

  /**
   * One batched model call over `rows`. When a call of several rows fails, each
   * row is retried alone, so that only the rows that fail alone fail: one bad
   * row must not take its batch mates down with it.
   */
  private async forwardRows(rows: Sequence[]): Promise<Map<Sequence, { logits: Float32Array; state: RecurrentState } | { error: unknown }>> {
    const specs = this.model.signature.states;
    const out = new Map<Sequence, { logits: Float32Array; state: RecurrentState } | { error: unknown }>();
    const started = performance.now();
    try {
      const state = rows.length === 1 ? rows[0].state! : stackStates(specs, rows.map((s) => s.state!));
      const result = await this.model.forward(rows.map((s) => [s.next]), state, 'last');
      this.report('decode', rows, rows.length, 1, result.runMs ?? performance.now() - started);
      rows.forEach((s, r) => out.set(s, { logits: result.logits[r], state: rows.length === 1 ? result.state : stateRow(specs, result.state, r) }));
      return out;
    } catch (e) {
      if (rows.length === 1) {
        out.set(rows[0], { error: e });
        return out;
      }
    }
    for (const s of rows) {
      try {
        const result = await this.model.forward([[s.next]], s.state!, 'last');
        out.set(s, { logits: result.logits[0], state: result.state });
      } catch (e) {
        out.set(s, { error: e });
      }
    }
    return out;
  }

  /** One batched decode step over `rows`, then sampling of each row. */
  private async decodeStep(rows: Sequence[]): Promise<void> {
    const results = await this.forwardRows(rows);
    const leaving = new Set<Sequence>();
    for (const s of rows) {
      s.stepping = false;
      const out = results.get(s)!;
      if ('error' in out) {
        this.fail(s, out.error);
        leaving.add(s);
        continue;
      }
      s.state = out.state;
      if (s.tail) {
        // The state now covers the prompt and every generated token: the next turn starts here.
        if (this.cache && s.request.initialState?.transient !== true) {
          const keyPrefix = this.keyPrefixOf(s.request);
          this.cache.insert([...keyPrefix, ...s.request.promptIds, ...s.output], keyPrefix.length + s.request.promptIds.length + s.output.length, s.state);
        }
        if (s.ending && !s.done) {
          this.observe(() => s.request.onFinalState?.(s.state!, s.output));
          this.finish(s, s.ending);
        }
        leaving.add(s);
        continue;
      }
      // The first step of a row feeds the last prompt token: its state covers the whole prompt.
      if (s.completionTokens === 0 && s.request.onPromptState) this.observe(() => s.request.onPromptState!(s.state!));
      if (s.done) {
        leaving.add(s);
        continue;
      }
      if (s.signal.aborted) {
        this.finish(s, 'abort');
        leaving.add(s);
        continue;
      }
      try {
        const token = s.sampler.sample(out.logits, s.request.maxTokens - s.completionTokens);
        // A token the model cannot take back in would fail the next batched call for every row in it: refuse it here.
        if (!Number.isInteger(token.id) || token.id < 0 || token.id >= this.info.vocabSize) throw new ModelOutputError(`the sampler chose token ${token.id}, outside the vocabulary`);
        // The stop token is counted (the model generated it, as vLLM counts it) but not yielded.
        s.completionTokens++;
        s.output.push(token.id);
        s.next = token.id;
        if (s.stopIds.has(token.id)) {
          this.end(s, 'stop', leaving);
          continue;
        }
        s.timeToFirstTokenMs ??= performance.now() - s.started;
        s.tokens.push(token);
        // A complete constraint admits no further token (a stop token normally ends it first).
        if (s.constraint?.done) this.end(s, 'stop', leaving);
        else if (s.completionTokens >= s.request.maxTokens) this.end(s, 'length', leaving);
      } catch (e) {
        this.fail(s, e);
        leaving.add(s);
      }
    }
    if (leaving.size > 0) this.decoding = this.decoding.filter((s) => !leaving.has(s));
  }

  /**
   * Settles a generation that ended by itself; with the cache on it stays one
   * more step as a tail row. With onFinalState it settles after that step.
   */
  private end(seq: Sequence, reason: 'stop' | 'length', leaving: Set<Sequence>): void {
    if (seq.request.onFinalState) {
      seq.tail = true;
      seq.ending = reason;
      return;
    }
    this.finish(seq, reason);
    if (this.cache) seq.tail = true;
    else leaving.add(seq);
  }

  /** A caller's state hook: its fault must not fail the generation or its batch mates. */
  private observe(hook: () => void): void {
    try {
      hook();
    } catch (e) {
      this.options.log?.warn({ model: this.info.id, err: (e as Error).message }, 'a generation state hook threw');
    }
  }
}

/** Reads a model directory, starts its session (in a worker by default) and checks the graph against config.json. */
export async function loadEngine(modelDir: string, options: EngineOptions = {}): Promise<MMRecEngine> {
  const dir = readModelDir(modelDir);
  const settings = { executionProvider: options.device ?? 'auto', intraOpThreads: options.intraOpThreads, interOpThreads: options.interOpThreads };
  const model = options.thread === 'main' ? await OnnxModel.load(dir.onnxPath, settings) : await WorkerModel.load(dir.onnxPath, settings);
  try {
    await checkVocabulary(model, dir.config, dir.onnxPath);
  } catch (e) {
    await model.dispose();
    throw e;
  }
  const info: ModelInfo = {
    id: dir.config.modelId,
    contextLength: dir.config.contextLength,
    vocabSize: dir.config.vocabSize,
    eosTokenIds: dir.config.eosTokenIds,
    executionProvider: model.executionProvider,
    providerReason: model.providerNote,
    createdAt: dir.createdAt,
    stateSizes: embeddingBlocks(model.signature.states),
  };
  // A saved state cache is only valid for the very same graph file.
  const st = statSync(dir.onnxPath);
  const modelKey = `${info.id}|${st.size}|${Math.floor(st.mtimeMs)}|${JSON.stringify(model.signature)}`;
  return new MMRecEngine(info, dir.config, model, options, modelKey);
}

/** One probe step: the graph's logits must span config.json's vocabulary, or sampling would index past them. */
async function checkVocabulary(model: ModelRunner, config: ModelConfig, onnxPath: string): Promise<void> {
  const probe = await model.forward([[config.eosTokenIds[0]]], emptyState(model.signature.states, 1), 'last');
  const vocab = probe.logits[0].length;
  if (vocab !== config.vocabSize) {
    throw new ModelLoadError(`${onnxPath}: the graph's logits have ${vocab} entries but config.json says vocab_size ${config.vocabSize}`);
  }
}
