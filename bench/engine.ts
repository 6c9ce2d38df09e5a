/**
 * Engine benchmarks, no HTTP: single-stream decode speed, time to first token,
 * and the sampler's cost per token against the model step it follows.
 */
import { loadEngine, type MMRecEngine, type StepInfo } from '../src/engine/engine.ts';
import type { GenerateRequest, SamplingParams } from '../src/engine/types.ts';
import { CandidateSet } from '../src/engine/sampler/candidate-set.ts';
import { Sampler } from '../src/engine/sampler/sampler.ts';
import { GREEDY_SAMPLING } from '../src/engine/sampler/presets.ts';
import { OnnxModel } from '../src/engine/onnx-model.ts';
import { emptyState } from '../src/engine/state.ts';
import { readModelDir } from '../src/engine/model-dir.ts';
import { median } from './table.ts';

export const GREEDY: SamplingParams = GREEDY_SAMPLING;
/** The OpenAI-style defaults the server's models ship with. */
export const DEFAULT_SAMPLING: SamplingParams = { ...GREEDY, temperature: 0.7, topP: 0.9, seed: 1 };

/** Ordinary token ids, none of them special. */
export function syntheticPrompt(length: number): number[] {
  return Array.from({ length }, (_, i) => (i * 7919 + 13) % 100000);
}

export interface StepLog {
  steps: StepInfo[];
  engine: MMRecEngine;
}

export async function loadForBench(modelDir: string): Promise<StepLog> {
  const steps: StepInfo[] = [];
  const engine = await loadEngine(modelDir, { onStep: (s) => steps.push(s) });
  return { steps, engine };
}

function request(promptIds: number[], maxTokens: number, sampling: SamplingParams): GenerateRequest {
  return { promptIds, maxTokens, stopTokenIds: [], sampling };
}

export interface DecodeResult {
  label: string;
  tokensPerSecond: number;
  /** Median model step (worker round trip included), ms. */
  stepMs: number;
}

/** Decode speed of one stream: tokens after the first, over the time after the first. */
export async function benchDecode({ engine, steps }: StepLog, label: string, sampling: SamplingParams, tokens: number): Promise<DecodeResult> {
  const from = steps.length;
  const started = performance.now();
  const g = engine.generate(request(syntheticPrompt(8), tokens, sampling));
  let first = 0;
  let count = 0;
  for await (const _ of g.tokens) if (count++ === 0) first = performance.now();
  const elapsed = performance.now() - Math.max(first, started);
  const decodeSteps = steps.slice(from).filter((s) => s.phase === 'decode').map((s) => s.ms);
  return { label, tokensPerSecond: ((count - 1) * 1000) / elapsed, stepMs: median(decodeSteps) };
}

export interface TtftResult {
  promptTokens: number;
  medianMs: number;
  runs: number;
}

export async function benchTimeToFirstToken({ engine }: StepLog, promptTokens: number, runs: number): Promise<TtftResult> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const result = await engine.generate(request(syntheticPrompt(promptTokens), 1, GREEDY)).result;
    times.push(result.timeToFirstTokenMs!);
  }
  return { promptTokens, medianMs: median(times), runs };
}

export interface SamplerCost {
  label: string;
  samplerUs: number;
  stepMs: number;
  /** Sampler time as a share of the model step. */
  share: number;
  candidates?: number;
}

/**
 * The sampler's cost on the model's own logits (their shape decides the cost:
 * a flat distribution keeps every token a candidate), against the median model
 * step measured on the same rows, both on this thread.
 */
export async function benchSampler(modelDir: string, settings: Array<{ label: string; sampling: SamplingParams }>, rows = 32, repeats = 20): Promise<SamplerCost[]> {
  const dir = readModelDir(modelDir);
  const model = await OnnxModel.load(dir.onnxPath, { executionProvider: 'auto' });
  const logits: Float32Array[] = [];
  const stepTimes: number[] = [];
  let state = emptyState(model.signature.states, 1);
  let next = syntheticPrompt(1)[0];
  for (let i = 0; i < rows; i++) {
    const started = performance.now();
    const out = await model.forward([[next]], state, 'last');
    stepTimes.push(performance.now() - started);
    state = out.state;
    logits.push(out.logits[0].slice());
    next = (next * 31 + 7) % 100000;
  }
  await model.dispose();

  const candidates = new CandidateSet(dir.config.vocabSize);
  const scratch = new Float32Array(dir.config.vocabSize);
  const stepMs = median(stepTimes);
  return settings.map(({ label, sampling }) => {
    const sampler = new Sampler(sampling, [], candidates);
    const times: number[] = [];
    for (let r = 0; r < repeats; r++) {
      for (const row of logits) {
        scratch.set(row); // the sampler works in place; the copy is outside the timing
        const started = performance.now();
        sampler.sample(scratch);
        times.push(performance.now() - started);
      }
    }
    const samplerUs = median(times) * 1000;
    return { label, samplerUs, stepMs, share: samplerUs / 1000 / stepMs };
  });
}
