/**
 * The MM-Rec engine: one model, many concurrent generations.
 *
 * A generation prefills its prompt in chunks, then decodes token by token,
 * sampling each token with its own Sampler. Model steps of all generations go
 * through one FIFO StepQueue, so they interleave step by step. The model itself
 * runs in a worker thread (see worker-model.ts for why).
 *
 * Prefill feeds all prompt tokens but the last without asking for logits, which
 * lets onnxruntime skip the LM head over the prompt (about half the prefill
 * cost for a 100k vocabulary), then feeds the last prompt token alone for the
 * first logits.
 */
import type { Engine, GenerateRequest, GeneratedToken, Generation, GenerationResult, ModelInfo } from './types.ts';
import { readModelDir, type ModelConfig } from './model-dir.ts';
import { ModelLoadError, OnnxModel, type ExecutionProviderChoice, type ForwardResult, type LogitsWanted, type ModelRunner } from './onnx-model.ts';
import { WorkerModel } from './worker-model.ts';
import { emptyState, type RecurrentState } from './state.ts';
import { StepQueue } from './step-queue.ts';
import { TokenChannel } from './token-channel.ts';
import { CandidateSet } from './sampler/candidate-set.ts';
import { Sampler } from './sampler/sampler.ts';

export const DEFAULT_PREFILL_CHUNK = 256;

export interface StepInfo {
  generationId: number;
  phase: 'prefill' | 'decode';
  /** Tokens fed in this step. */
  tokens: number;
  /** Wall time of the model call, queueing excluded. */
  ms: number;
}

export interface EngineOptions {
  /** auto: CUDA when available, else CPU (the reason lands in info.providerReason). */
  device?: ExecutionProviderChoice;
  intraOpThreads?: number;
  interOpThreads?: number;
  /** Prompt tokens per model call during prefill. */
  prefillChunkSize?: number;
  /**
   * 'worker' (default) keeps onnxruntime off the event loop; 'main' runs it on
   * the calling thread, for tools that have no event loop to protect.
   */
  thread?: 'worker' | 'main';
  /** Called after every model step: lets tests and benchmarks see the model work. */
  onStep?: (step: StepInfo) => void;
}

export class EngineClosedError extends Error {
  constructor() {
    super('the engine is closed and accepts no new generations');
  }
}

export class MMRecEngine implements Engine {
  private readonly queue = new StepQueue();
  /** Sampling is synchronous, so all samplers share one vocabulary-sized scratch. */
  private readonly candidates: CandidateSet;
  private readonly inFlight = new Set<Promise<GenerationResult>>();
  private readonly prefillChunk: number;
  private nextGenerationId = 1;
  private closing?: Promise<void>;

  constructor(
    readonly info: ModelInfo,
    readonly config: ModelConfig,
    private readonly model: ModelRunner,
    private readonly options: EngineOptions = {},
  ) {
    this.candidates = new CandidateSet(info.vocabSize);
    this.prefillChunk = options.prefillChunkSize ?? DEFAULT_PREFILL_CHUNK;
    if (!Number.isSafeInteger(this.prefillChunk) || this.prefillChunk < 1) throw new RangeError(`prefillChunkSize must be a positive integer, got ${this.prefillChunk}`);
  }

  generate(request: GenerateRequest): Generation {
    if (this.closing) throw new EngineClosedError();
    this.validate(request);
    const cancel = new AbortController();
    const onAbort = () => cancel.abort();
    request.signal?.addEventListener('abort', onAbort, { once: true });
    if (request.signal?.aborted) cancel.abort();

    const tokens = new TokenChannel<GeneratedToken>(onAbort);
    const result = this.run(this.nextGenerationId++, request, tokens, cancel.signal).then(
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
    void result.finally(() => {
      this.inFlight.delete(result);
      request.signal?.removeEventListener('abort', onAbort);
    }).catch(() => {});
    return { tokens, result };
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.allSettled([...this.inFlight]);
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
  }

  /**
   * One model step through the queue. Resolves undefined, without stepping,
   * when the generation was aborted while it waited.
   */
  private step(signal: AbortSignal, generationId: number, phase: StepInfo['phase'], ids: number[], state: RecurrentState, logits: LogitsWanted): Promise<ForwardResult | undefined> {
    return this.queue.run(async () => {
      if (signal.aborted) return undefined;
      const started = performance.now();
      const out = await this.model.forward([ids], state, logits);
      this.options.onStep?.({ generationId, phase, tokens: ids.length, ms: performance.now() - started });
      return out;
    });
  }

  private async run(id: number, request: GenerateRequest, tokens: TokenChannel<GeneratedToken>, signal: AbortSignal): Promise<GenerationResult> {
    const started = performance.now();
    const prompt = request.promptIds;
    const stopIds = new Set(request.stopTokenIds);
    const constraint = request.constraint?.start();
    const sampler = new Sampler(request.sampling, prompt, this.candidates, constraint);
    let completionTokens = 0;
    let timeToFirstTokenMs: number | undefined;
    const finish = (finishReason: GenerationResult['finishReason']): GenerationResult => ({
      finishReason,
      promptTokens: prompt.length,
      completionTokens,
      timeToFirstTokenMs,
    });

    let state = emptyState(this.model.signature.states, 1);
    const prefillEnd = prompt.length - 1;
    for (let start = 0; start < prefillEnd; start += this.prefillChunk) {
      const chunk = prompt.slice(start, Math.min(start + this.prefillChunk, prefillEnd));
      const out = await this.step(signal, id, 'prefill', chunk, state, 'none');
      if (!out) return finish('abort');
      state = out.state;
    }

    let next = prompt[prefillEnd];
    let phase: StepInfo['phase'] = 'prefill';
    for (;;) {
      const out = await this.step(signal, id, phase, [next], state, 'last');
      if (!out) return finish('abort');
      state = out.state;
      const token = sampler.sample(out.logits[0]);
      // The stop token is counted (the model generated it, as vLLM counts it) but not yielded.
      completionTokens++;
      if (stopIds.has(token.id)) return finish('stop');
      timeToFirstTokenMs ??= performance.now() - started;
      tokens.push(token);
      // A complete constraint admits no further token (a stop token normally ends it first).
      if (constraint?.done) return finish('stop');
      if (completionTokens >= request.maxTokens) return finish('length');
      next = token.id;
      phase = 'decode';
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
  };
  return new MMRecEngine(info, dir.config, model, options);
}

/** One probe step: the graph's logits must span config.json's vocabulary, or sampling would index past them. */
async function checkVocabulary(model: ModelRunner, config: ModelConfig, onnxPath: string): Promise<void> {
  const probe = await model.forward([[config.eosTokenIds[0]]], emptyState(model.signature.states, 1), 'last');
  const vocab = probe.logits[0].length;
  if (vocab !== config.vocabSize) {
    throw new ModelLoadError(`${onnxPath}: the graph's logits have ${vocab} entries but config.json says vocab_size ${config.vocabSize}`);
  }
}
