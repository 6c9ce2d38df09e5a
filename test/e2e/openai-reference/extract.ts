/**
 * Extracts the schemas the tests validate against (and everything they
 * reference) from OpenAI's official OpenAPI document into openai-schemas.json,
 * so the tests carry the official contract without the 3 MB document.
 *
 *   npx tsx test/e2e/openai-reference/extract.ts <path to openai-openapi.yaml>
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parse } from 'yaml';

const ROOTS = ['CreateChatCompletionResponse', 'CreateChatCompletionStreamResponse', 'CreateCompletionResponse', 'ListModelsResponse', 'Model', 'ErrorResponse'];
const source = process.argv[2] ?? '../shared/reference/openai-openapi.yaml';
const doc = parse(readFileSync(source, 'utf8')) as { info: { version: string }; components: { schemas: Record<string, unknown> } };
const all = doc.components.schemas;
const picked: Record<string, unknown> = {};

function visit(node: unknown): void {
  if (Array.isArray(node)) return node.forEach(visit);
  if (typeof node !== 'object' || node === null) return;
  for (const [k, v] of Object.entries(node)) {
    if (k === '$ref' && typeof v === 'string') {
      const name = v.replace('#/components/schemas/', '');
      if (!(name in picked)) {
        if (!(name in all)) throw new Error(`unresolved $ref ${v}`);
        picked[name] = all[name];
        visit(all[name]);
      }
    } else visit(v);
  }
}
for (const r of ROOTS) {
  picked[r] = all[r];
  visit(all[r]);
}
const sorted = Object.fromEntries(Object.keys(picked).sort().map((k) => [k, picked[k]]));
writeFileSync(
  new URL('./openai-schemas.json', import.meta.url),
  JSON.stringify({ source: `OpenAI OpenAPI document, version ${doc.info.version} (components.schemas, extracted)`, roots: ROOTS, schemas: sorted }, null, 1) + '\n',
);
console.log(`extracted ${Object.keys(sorted).length} schemas`);
