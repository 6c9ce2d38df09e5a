/**
 * Held-out evaluation of a model directory: greedy-decodes each item's prompt
 * and checks the answer.
 *
 *   npx tsx scripts/eval-model.ts --model models/mm-rec-tiny --data heldout.jsonl [--json out.json] [--limit N] [--batch B]
 *
 * Each JSONL line: {"family", "messages", "tools"?, "expect": {"contains": "…"} |
 * {"tool_call": {"name", "arguments": {…}}}}. The prompt is rendered with the
 * server's ChatTemplate (generation prompt appended); decoding is greedy, at most
 * 64 tokens, until an end-of-turn token. "contains": the decoded text (special
 * tokens left out) contains the string. "tool_call": some `<|tool_call|>` in the
 * output is followed by JSON {"name","arguments"} with that name and arguments
 * deep-equal to the expected ones (strings compared trimmed, case-insensitively).
 *
 * Prompts are prefilled one by one; decoding runs `--batch` items per forward
 * (batch rows are independent, §3), dropping rows as they finish.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { ChatTokenizer } from '../src/chat/tokenizer.ts';
import { ChatTemplate } from '../src/chat/template.ts';
import { toChatMessages, toToolSpecs } from '../src/chat/openai-messages.ts';
import { readModelDir } from '../src/engine/model-dir.ts';
import { OnnxModel, type ModelRunner } from '../src/engine/onnx-model.ts';
import { emptyState, stackStates, stateRow, type RecurrentState } from '../src/engine/state.ts';
import { findArgmax } from '../src/engine/sampler/distribution.ts';

const MAX_NEW_TOKENS = 64;

export type Expectation = { contains: string } | { tool_call: { name: string; arguments: Record<string, unknown> } };

export interface EvalItem {
  family: string;
  messages: unknown;
  tools?: unknown;
  expect: Expectation;
}

export interface FamilyScore {
  n: number;
  correct: number;
  accuracy: number;
}

/** JSON values equal, strings compared trimmed and case-insensitively. */
export function looselyEqual(actual: unknown, expected: unknown): boolean {
  if (typeof expected === 'string') return typeof actual === 'string' && actual.trim().toLowerCase() === expected.trim().toLowerCase();
  if (Array.isArray(expected)) {
    return Array.isArray(actual) && actual.length === expected.length && expected.every((e, i) => looselyEqual(actual[i], e));
  }
  if (typeof expected === 'object' && expected !== null) {
    if (typeof actual !== 'object' || actual === null || Array.isArray(actual)) return false;
    const a = actual as Record<string, unknown>;
    const e = expected as Record<string, unknown>;
    const keys = Object.keys(e);
    return keys.length === Object.keys(a).length && keys.every((k) => k in a && looselyEqual(a[k], e[k]));
  }
  return actual === expected;
}

/** The JSON value at the start of `text` (text after it is ignored), or undefined. */
export function leadingJson(text: string): unknown {
  const start = text.search(/\S/);
  if (start < 0 || text[start] !== '{') return undefined;
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') {
      if (--depth === 0) {
        try {
          return JSON.parse(text.slice(start, i + 1));
        } catch {
          return undefined;
        }
      }
    }
  }
  return undefined;
}

/** Does a generation (token ids, end token excluded) meet the expectation? */
export function meetsExpectation(ids: readonly number[], expect: Expectation, tokenizer: ChatTokenizer): boolean {
  if ('contains' in expect) return tokenizer.decode(ids.filter((id) => !tokenizer.isSpecial(id))).includes(expect.contains);
  const marker = tokenizer.special('toolCall');
  const want = expect.tool_call;
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] !== marker) continue;
    let end = i + 1;
    while (end < ids.length && !tokenizer.isSpecial(ids[end])) end++;
    const call = leadingJson(tokenizer.decode(ids.slice(i + 1, end))) as { name?: unknown; arguments?: unknown } | undefined;
    if (call && call.name === want.name && looselyEqual(call.arguments, want.arguments)) return true;
  }
  return false;
}

/** Feeds a prompt, all but its last token without logits; returns the state before the last token. */
async function prefill(model: ModelRunner, ids: number[]): Promise<RecurrentState> {
  const chunk = 256;
  let state = emptyState(model.signature.states, 1);
  for (let start = 0; start < ids.length - 1; start += chunk) {
    state = (await model.forward([ids.slice(start, Math.min(start + chunk, ids.length - 1))], state, 'none')).state;
  }
  return state;
}

interface Row {
  index: number;
  next: number;
  state: RecurrentState;
  output: number[];
}

/** Greedy-decodes a group of prompts together; returns each prompt's generated ids (end token excluded). */
async function greedyBatch(model: ModelRunner, prompts: number[][], stopIds: Set<number>): Promise<number[][]> {
  const specs = model.signature.states;
  const outputs: number[][] = prompts.map(() => []);
  let active: Row[] = [];
  for (const [index, ids] of prompts.entries()) active.push({ index, next: ids[ids.length - 1], state: await prefill(model, ids), output: outputs[index] });
  for (let step = 0; step < MAX_NEW_TOKENS && active.length > 0; step++) {
    const out = await model.forward(active.map((r) => [r.next]), stackStates(specs, active.map((r) => r.state)), 'last');
    active = active.filter((row, r) => {
      const id = findArgmax(out.logits[r]).argmax;
      if (stopIds.has(id)) return false;
      row.output.push(id);
      row.next = id;
      row.state = stateRow(specs, out.state, r);
      return true;
    });
  }
  return outputs;
}

function readItems(path: string, limit: number): EvalItem[] {
  const lines = readFileSync(path, 'utf8').split('\n').filter((l) => l.trim() !== '');
  return lines.slice(0, limit).map((line, i) => {
    const item = JSON.parse(line) as EvalItem;
    if (typeof item.family !== 'string' || typeof item.expect !== 'object' || item.expect === null) {
      throw new Error(`${path}:${i + 1}: needs "family" and "expect"`);
    }
    return item;
  });
}

function score(results: Array<{ family: string; correct: boolean }>): FamilyScore {
  const correct = results.filter((r) => r.correct).length;
  return { n: results.length, correct, accuracy: results.length ? (100 * correct) / results.length : 0 };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', default: 'models/mm-rec-tiny' },
      data: { type: 'string' },
      json: { type: 'string' },
      limit: { type: 'string' },
      batch: { type: 'string', default: '8' },
    },
  });
  if (!values.data) throw new Error('usage: eval-model.ts --model DIR --data heldout.jsonl [--json out.json] [--limit N] [--batch B]');
  const dir = readModelDir(values.model!);
  const tokenizer = new ChatTokenizer(dir.config.tokenizer);
  const template = new ChatTemplate(tokenizer);
  const items = readItems(values.data, values.limit ? Number(values.limit) : Infinity);
  const batch = Math.max(1, Number(values.batch));
  const stopIds = new Set(dir.config.eosTokenIds);
  // No event loop to protect here, so the model runs on this thread.
  const model = await OnnxModel.load(dir.onnxPath, { executionProvider: 'auto' });
  console.error(`${dir.config.modelId} on ${model.executionProvider} (${model.providerNote}); ${items.length} items`);

  const started = performance.now();
  const results: Array<{ family: string; correct: boolean; output: string }> = [];
  for (let start = 0; start < items.length; start += batch) {
    const group = items.slice(start, start + batch);
    const prompts = group.map((it) => template.render(toChatMessages(it.messages), { tools: toToolSpecs(it.tools), addGenerationPrompt: true }).ids);
    const outputs = await greedyBatch(model, prompts, stopIds);
    group.forEach((it, i) => results.push({ family: it.family, correct: meetsExpectation(outputs[i], it.expect, tokenizer), output: tokenizer.decode(outputs[i]) }));
    process.stderr.write(`\r${results.length}/${items.length}`);
  }
  process.stderr.write('\n');
  await model.dispose();

  const families = [...new Set(results.map((r) => r.family))].sort();
  const byFamily = Object.fromEntries(families.map((f) => [f, score(results.filter((r) => r.family === f))]));
  const overall = score(results);
  console.log(['family'.padEnd(16), 'n'.padStart(6), 'correct'.padStart(8), 'accuracy'.padStart(9)].join(' '));
  for (const [name, s] of [...Object.entries(byFamily), ['overall', overall] as const]) {
    console.log([name.padEnd(16), String(s.n).padStart(6), String(s.correct).padStart(8), `${s.accuracy.toFixed(1)}%`.padStart(9)].join(' '));
  }
  const seconds = (performance.now() - started) / 1000;
  console.error(`${seconds.toFixed(1)} s`);
  if (values.json) {
    const report = { model: dir.config.modelId, modelDir: values.model, data: values.data, maxNewTokens: MAX_NEW_TOKENS, seconds, overall, families: byFamily, items: results };
    writeFileSync(values.json, JSON.stringify(report, null, 2) + '\n');
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
