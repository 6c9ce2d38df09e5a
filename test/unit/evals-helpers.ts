/**
 * The Evals API over a real store in a temporary data directory, graded by
 * scripted engines (http-fake-engine.ts) or the real model: the app, its
 * service, the worker and the internal chat and embedding serving, wired as
 * stored-services.ts wires them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { buildApp } from '../../src/app.ts';
import type { GenerateRequest, ScoreRequest, ScoreResult } from '../../src/engine/types.ts';
import { internalGradingDeps } from '../../src/evals/serving-deps.ts';
import { EvalRunWorker, type EvalWorkerSettings } from '../../src/jobs/evals/worker.ts';
import { Admission } from '../../src/serving/admission.ts';
import { ChatServing } from '../../src/serving/chat.ts';
import { EmbeddingServing } from '../../src/serving/embeddings.ts';
import { EvalService } from '../../src/serving/evals.ts';
import { FileService } from '../../src/serving/files.ts';
import type { ModelRegistry } from '../../src/serving/registry.ts';
import { Store } from '../../src/store/store.ts';
import { FakeEngine, fakeRegistry, reply, tokenizer, type FakeOptions } from './http-fake-engine.ts';

/** The user's last message in a rendered prompt (the fake engines answer from it). */
export function lastUserText(req: GenerateRequest): string {
  const text = tokenizer.decode(req.promptIds.filter((id) => !tokenizer.isSpecial(id)));
  return text;
}

const CAPITALS: Record<string, string> = { France: 'Paris', Japan: 'Tokyo', Italy: 'Rome', Spain: 'Madrid', Germany: 'Berlin' };

/** Answers "The capital of X is Y." for the countries it knows, "I do not know." otherwise. */
export function capitalsScript(req: GenerateRequest): number[] {
  const prompt = lastUserText(req);
  const country = Object.keys(CAPITALS).find((c) => prompt.includes(c));
  return reply(country ? `The capital of ${country} is ${CAPITALS[country]}.` : 'I do not know.');
}

/** A scripted engine that also scores: every target costs 0.5 nats and the first target of each sequence is "right". */
export class ScoringFakeEngine extends FakeEngine {
  scoreCalls: number[] = [];

  constructor(opts: FakeOptions = {}) {
    super(opts);
  }

  async score(requests: readonly ScoreRequest[]): Promise<ScoreResult[]> {
    this.scoreCalls.push(requests.length);
    return requests.map((r) => {
      const tokens = r.mask.reduce((a, b) => a + b, 0);
      return { nll: 0.5 * tokens, tokens, correct: tokens > 0 ? 1 : 0 };
    });
  }
}

export interface EvalsHarness {
  dataDir: string;
  store: Store;
  registry: ModelRegistry;
  worker: EvalRunWorker;
  app: FastifyInstance;
  /** Stops everything and removes the data directory, unless `keepData` (a test reopens it). */
  close(opts?: { keepData?: boolean }): Promise<void>;
}

export const SETTINGS: EvalWorkerSettings = {
  maxRuns: 1,
  concurrency: 8,
  maxItems: 50,
  maxItemBytes: 4096,
  itemSchema: { maxSchemaBytes: 4096, patternStates: 1024 },
  executor: { maxRenderChars: 4096, defaultMaxTokens: 64 },
};

export interface EvalsOptions {
  /** Scripted engines to serve (default: one ScoringFakeEngine); or `registry`, models already served (the real one). */
  engines?: FakeEngine[];
  registry?: ModelRegistry;
  /** The model cosine embeds with, as --eval-embedding-model; default, as the server's: the first model served. */
  embeddingModel?: string;
  dataDir?: string;
  settings?: Partial<EvalWorkerSettings>;
  start?: boolean;
}

export async function startEvals(opts: EvalsOptions = {}): Promise<EvalsHarness> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'mmrec-evals-'));
  const store = (await Store.open(dataDir)).store;
  const registry = opts.registry ?? fakeRegistry(...(opts.engines ?? [new ScoringFakeEngine({ script: capitalsScript })]));
  const limits = { maxTokens: 64, maxN: 1 };
  const chat = new ChatServing({ registry, admission: new Admission(1, 0), limits });
  const embeddings = { serving: new EmbeddingServing({ registry }), model: opts.embeddingModel ?? registry.list()[0].id };
  const settings = { ...SETTINGS, ...opts.settings };
  const worker = new EvalRunWorker({
    store,
    settings,
    grading: internalGradingDeps({ chat, registry, maxRenderChars: settings.executor.maxRenderChars, maxMetricChars: 10_000, maxTokens: limits.maxTokens, embeddings }),
    modelExists: (name) => registry.describe(name).then(() => true, () => false),
    log: pino({ level: 'silent' }),
  });
  const service = new EvalService(store, worker, registry, { maxCriteria: 4, maxItems: settings.maxItems, itemSchema: settings.itemSchema }, embeddings);
  const app = await buildApp({ registry, limits, files: new FileService(store, 1 << 20), evals: service });
  if (opts.start !== false) await worker.start();
  return {
    dataDir,
    store,
    registry,
    worker,
    app,
    async close(o = {}) {
      await worker.close();
      await app.close();
      await store.close();
      if (!o.keepData) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Polls the run until it leaves queued / in_progress. */
export async function waitForRun(app: FastifyInstance, evalId: string, runId: string, timeoutMs = 20_000): Promise<Record<string, any>> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = await app.inject({ method: 'GET', url: `/v1/evals/${evalId}/runs/${runId}` });
    assert.equal(r.statusCode, 200, r.body);
    const run = r.json();
    if (run.status !== 'queued' && run.status !== 'in_progress') return run;
    if (Date.now() > until) throw new Error(`run ${runId} still ${run.status} after ${timeoutMs} ms`);
    await new Promise((res) => setTimeout(res, 20));
  }
}
