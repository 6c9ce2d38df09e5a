/**
 * The OpenAPI 3.1 document, generated from the routes as registered, i.e.
 * from the same TypeBox schemas Fastify validates requests with. Schemas that
 * carry a `title` become named components, referenced with $ref.
 */
import type { RouteOptions } from 'fastify';
import { stringify } from 'yaml';
import { buildApp } from '../app.ts';
import type { FileService } from '../serving/files.ts';
import type { FineTuningService } from '../serving/fine-tuning.ts';
import type { BatchService } from '../serving/batches.ts';
import type { EvalService } from '../serving/evals.ts';
import type { ConversationService } from '../serving/conversations.ts';
import type { ResponsesServing } from '../serving/responses.ts';
import { ModelRegistry } from '../serving/registry.ts';

type Json = Record<string, unknown>;

interface CollectedRoute {
  method: string;
  url: string;
  schema: Json;
}

/** Every route the app registers, with its schema (HEAD routes Fastify adds itself are left out). */
export async function collectRoutes(): Promise<CollectedRoute[]> {
  const routes: CollectedRoute[] = [];
  const onRoute = (r: RouteOptions) => {
    const methods = Array.isArray(r.method) ? r.method : [r.method];
    for (const m of methods) {
      if (m === 'HEAD' || !r.schema) continue;
      routes.push({ method: m.toLowerCase(), url: r.url, schema: r.schema as Json });
    }
  };
  // Services are only registered here, never called: stand-ins are enough to document their routes.
  const files = { maxFileBytes: 1 } as FileService;
  const fineTuning = {} as FineTuningService;
  const batches = { attach() {} } as unknown as BatchService;
  const evals = {} as EvalService;
  const responses = {} as ResponsesServing;
  const conversations = {} as ConversationService;
  const app = await buildApp({ registry: new ModelRegistry(), limits: { maxTokens: 1, maxN: 1 }, onRoute, files, fineTuning, batches, evals, responses, conversations });
  await app.ready();
  await app.close();
  return routes;
}

class Components {
  readonly schemas: Record<string, Json> = {};
  private readonly seen = new Map<string, string>();

  /** A JSON copy of `schema` with titled sub-schemas hoisted into components. */
  ref(schema: unknown): unknown {
    if (Array.isArray(schema)) return schema.map((s) => this.ref(s));
    if (typeof schema !== 'object' || schema === null) return schema;
    const out: Json = {};
    for (const [k, v] of Object.entries(schema)) out[k] = this.ref(v);
    const title = (schema as Json).title;
    if (typeof title !== 'string') return out;
    const text = JSON.stringify(out);
    const prev = this.seen.get(title);
    if (prev !== undefined && prev !== text) throw new Error(`two different schemas are titled "${title}"`);
    this.seen.set(title, text);
    const { title: _t, ...body } = out;
    this.schemas[title] = body;
    return { $ref: `#/components/schemas/${title}` };
  }
}

export function buildOpenApi(routes: CollectedRoute[], version: string): Json {
  const components = new Components();
  const paths: Record<string, Json> = {};
  for (const r of [...routes].sort((a, b) => cmp(a.url, b.url) || cmp(a.method, b.method))) {
    const path = r.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const s = r.schema;
    const op: Json = {};
    if (s.summary) op.summary = s.summary;
    if (s.tags) op.tags = s.tags;
    op.operationId = `${r.method}${path.replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ? c.toUpperCase() : ''))}`;
    if (path === '/health') op.security = [];
    const params = s.params as Json | undefined;
    const parameters: Json[] = [];
    if (params?.properties) {
      parameters.push(...Object.entries(params.properties as Json).map(([name, schema]) => ({ name, in: 'path', required: true, schema: components.ref(schema) })));
    }
    const query = s.querystring as Json | undefined;
    if (query?.properties) {
      const required = new Set((query.required as string[] | undefined) ?? []);
      parameters.push(...Object.entries(query.properties as Json).map(([name, schema]) => ({ name, in: 'query', required: required.has(name), schema: components.ref(schema) })));
    }
    if (parameters.length > 0) op.parameters = parameters;
    if (s.body) op.requestBody = { required: true, content: { 'application/json': { schema: components.ref(s.body) } } };
    // A multipart body is read by the route itself (streamed), so it is documented apart from Fastify's body schema.
    if (s.multipartBody) op.requestBody = { required: true, content: { 'multipart/form-data': { schema: components.ref(s.multipartBody) } } };
    const responses: Json = {};
    for (const [status, resp] of Object.entries((s.response ?? {}) as Record<string, Json>)) {
      const content: Json = {};
      for (const [type, media] of Object.entries((resp.content ?? {}) as Record<string, Json>)) content[type] = { schema: components.ref(media.schema) };
      responses[status] = { description: resp.description ?? '', content };
    }
    op.responses = responses;
    (paths[path] ??= {})[r.method] = op;
  }
  const schemas = Object.fromEntries(Object.entries(components.schemas).sort(([a], [b]) => cmp(a, b)));
  return {
    openapi: '3.1.0',
    info: {
      title: 'mmrec-server',
      version,
      description:
        'OpenAI-compatible API for MM-Rec recurrent language models. Generated by `npm run openapi` from the TypeBox schemas that validate requests; do not edit by hand.',
    },
    servers: [{ url: 'http://127.0.0.1:8000' }],
    security: [{ ApiKeyAuth: [] }],
    paths,
    components: {
      securitySchemes: { ApiKeyAuth: { type: 'http', scheme: 'bearer', description: 'Only when the server is started with --api-key' } },
      schemas,
    },
  };
}

export async function openApiYaml(version: string): Promise<string> {
  const doc = buildOpenApi(await collectRoutes(), version);
  return '# Generated by `npm run openapi` (scripts/gen-openapi.ts). Do not edit.\n' + stringify(doc, { lineWidth: 0, aliasDuplicateObjects: false });
}

/** Locale-independent order, so the file is the same on every machine. */
function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
