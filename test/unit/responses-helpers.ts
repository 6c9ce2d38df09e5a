/**
 * The Responses API in-process, on the real model: the app as server.ts
 * assembles it (registry, store in a temporary data directory, the response
 * services, a debug logger whose lines the tests read), driven with inject.
 */
import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.ts';
import { parseConfig, type ServerConfig } from '../../src/config.ts';
import { Admission } from '../../src/serving/admission.ts';
import { ReplyConstraints } from '../../src/serving/constraints.ts';
import { loadServedModel } from '../../src/serving/model-loading.ts';
import { ModelRegistry, type ServedModel } from '../../src/serving/registry.ts';
import { createResponseServices, type ResponseServices } from '../../src/serving/response-services.ts';
import { Store } from '../../src/store/store.ts';
import { MODEL_DIR, requireModelDir } from './engine-helpers.ts';

export const MODEL = 'mm-rec-tiny';

/** mm-rec-tiny with another context length in its config.json (the graph linked, not copied). */
export function withContextLength(contextLength: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'mmrec-ctx-'));
  const config = JSON.parse(readFileSync(join(MODEL_DIR, 'config.json'), 'utf8'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, context_length: contextLength }));
  symlinkSync(resolve(MODEL_DIR, 'model.onnx'), join(dir, 'model.onnx'));
  return dir;
}

export interface Harness {
  app: FastifyInstance;
  store: Store;
  services: ResponseServices;
  models: ServedModel[];
  /** Every log line so far. */
  logs: Array<Record<string, unknown>>;
  steps: { n: number };
  dataDir: string;
  close(): Promise<void>;
}

/** `extraIds`: the same model directory served again under these ids (a "different model" for states). */
export async function harness(args: string[] = [], opts: { dataDir?: string; extraIds?: string[]; modelDir?: string } = {}): Promise<Harness> {
  requireModelDir();
  const modelDir = opts.modelDir ?? MODEL_DIR;
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'mmrec-responses-'));
  const config = (parseConfig(['--intra-op-threads', '1', '--data-dir', dataDir, ...args], {}) as { config: ServerConfig }).config;
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line) logs.push(JSON.parse(line));
      done();
    },
  });
  const log = pino({ level: 'debug' }, sink);
  const steps = { n: 0 };
  const ids = [MODEL, ...(opts.extraIds ?? [])];
  const registry = new ModelRegistry(ids);
  const models: ServedModel[] = [];
  for (const id of ids) {
    const m = await loadServedModel(config, id, modelDir, { onStep: () => steps.n++ }, log);
    registry.add(m);
    models.push(m);
  }
  registry.markReady();
  const { store } = await Store.open(dataDir, { maxConversationItems: config.maxConversationItems });
  const limits = { maxTokens: config.maxTokens, maxN: config.maxN, maxJsonDepth: config.maxJsonDepth };
  const admission = new Admission(config.maxConcurrency, config.maxQueue);
  const constraints = new ReplyConstraints();
  const services = createResponseServices(config, store, registry, { admission, constraints, limits }, log);
  const app = await buildApp({ registry, limits, admission, constraints, responses: services.responses, conversations: services.conversations });
  await services.start();
  return {
    app,
    store,
    services,
    models,
    logs,
    steps,
    dataDir,
    async close() {
      await app.close();
      await services.close();
      for (const m of models) await m.engine.close();
      await store.close();
    },
  };
}

export async function post<T = Record<string, any>>(h: Harness, url: string, body: unknown): Promise<{ status: number; body: T }> {
  const r = await h.app.inject({ method: 'POST', url, payload: body as object });
  return { status: r.statusCode, body: r.json() as T };
}

export async function get<T = Record<string, any>>(h: Harness, url: string, method: 'GET' | 'DELETE' = 'GET'): Promise<{ status: number; body: T }> {
  const r = await h.app.inject({ method, url });
  return { status: r.statusCode, body: r.json() as T };
}

/** The text of a response's message output. */
export function outputText(r: Record<string, any>): string {
  return (r.output as Array<Record<string, any>>).filter((i) => i.type === 'message').map((i) => i.content.map((p: { text: string }) => p.text).join('')).join('');
}

/** The log lines with this message. */
export function logged(h: Harness, msg: string | RegExp): Array<Record<string, unknown>> {
  return h.logs.filter((l) => (typeof msg === 'string' ? l.msg === msg : msg.test(String(l.msg))));
}

/** Parses a Responses event stream: `event: <type>` and `data: <json>` per event, no [DONE]. */
export function parseNamedSse(body: string): Array<Record<string, any>> {
  const events = body.split('\n\n').filter((e) => e !== '');
  return events.map((e) => {
    const [eventLine, dataLine, ...rest] = e.split('\n');
    if (rest.length > 0 || !eventLine.startsWith('event: ') || !dataLine.startsWith('data: ')) throw new Error(`not an event: ${JSON.stringify(e)}`);
    const data = JSON.parse(dataLine.slice('data: '.length));
    if (data.type !== eventLine.slice('event: '.length)) throw new Error(`event name ${eventLine} is not its type ${data.type}`);
    return data;
  });
}
