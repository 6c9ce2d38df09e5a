/**
 * Constrained decoding (tools, structured outputs): decode speed with a
 * grammar constraint against the same model, prompt and sampling without one,
 * and what the token mask costs per token — looked up (a state met before),
 * computed (a state met for the first time: the trie walk), applied to the
 * logits — beside the naive check of every token of the vocabulary.
 */
import { ChatTemplate } from '../src/chat/template.ts';
import { ChatTokenizer } from '../src/chat/tokenizer.ts';
import { replyGrammar, type ReplySpec } from '../src/chat/reply-grammar.ts';
import { GrammarConstraint } from '../src/engine/constraint/grammar-constraint.ts';
import { initialThreads, step, SPECIAL_SYMBOL_BASE, type Frame } from '../src/engine/constraint/matcher.ts';
import { TokenVocabulary } from '../src/engine/constraint/vocabulary.ts';
import type { GenerateRequest, SamplingParams } from '../src/engine/types.ts';
import type { StepLog } from './engine.ts';
import { median } from './table.ts';

const WEATHER = { name: 'get_weather', description: 'Get the current weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } };
const REPORT = {
  type: 'object',
  properties: {
    city: { type: 'string' },
    days: { type: 'integer' },
    unit: { enum: ['celsius', 'fahrenheit'] },
    temperatures: { type: 'array', items: { type: 'number' } },
  },
  required: ['city', 'days', 'unit', 'temperatures'],
  additionalProperties: false,
};

export const CONSTRAINED_CASES: Array<{ label: string; spec: ReplySpec }> = [
  { label: 'tool call (tool_choice required)', spec: { tools: { list: [WEATHER], choice: 'required', parallel: true } } },
  { label: 'json_schema (string, integer, enum, array)', spec: { json: { kind: 'schema', schema: REPORT } } },
];

export interface ConstraintSetup {
  tokenizer: ChatTokenizer;
  vocabulary: TokenVocabulary;
  promptIds: number[];
  /** Milliseconds to build the vocabulary's byte trie (once per tokenizer). */
  vocabularyMs: number;
}

export function setUpConstraints(log: StepLog): ConstraintSetup {
  const { config } = log.engine;
  const tokenizer = new ChatTokenizer(config.tokenizer);
  const started = performance.now();
  const vocabulary = new TokenVocabulary(config.vocabSize, (id) => (tokenizer.isKnown(id) ? tokenizer.tokenBytes(id) : undefined), [...tokenizer.specialIds]);
  const vocabularyMs = performance.now() - started;
  const promptIds = new ChatTemplate(tokenizer).render([{ role: 'user', content: "What's the weather in Paris?" }], { tools: [WEATHER], addGenerationPrompt: true }).ids;
  return { tokenizer, vocabulary, promptIds, vocabularyMs };
}

export function constraintFor(setup: ConstraintSetup, spec: ReplySpec): GrammarConstraint {
  const t = setup.tokenizer;
  return new GrammarConstraint(replyGrammar(spec, { endOfText: t.special('endOfText'), toolCall: t.special('toolCall') }), setup.vocabulary);
}

export interface DecodeSpeed {
  tokensPerSecond: number;
  /** Tokens measured (after each generation's first) and generations run. */
  tokens: number;
  generations: number;
}

/**
 * Decode speed over generations of the same prompt (seed s, s+1, …) until
 * `tokens` tokens were generated after the generations' first tokens: a
 * constrained generation may end early, when its grammar does. Each
 * generation is timed from its first token to its last: the step that
 * generates the end-of-text token (not yielded, not counted) is left out, as a
 * free generation cut by max_tokens has none.
 */
export async function decodeSpeed(log: StepLog, request: Omit<GenerateRequest, 'sampling'>, sampling: SamplingParams, tokens: number, fresh?: () => GrammarConstraint): Promise<DecodeSpeed> {
  let measured = 0;
  let ms = 0;
  let generations = 0;
  while (measured < tokens) {
    const g = log.engine.generate({ ...request, constraint: fresh ? fresh() : request.constraint, sampling: { ...sampling, seed: (sampling.seed ?? 0) + generations } });
    let first = 0;
    let last = 0;
    let count = 0;
    for await (const _ of g.tokens) {
      last = performance.now();
      if (count++ === 0) first = last;
    }
    ms += last - first;
    measured += Math.max(0, count - 1);
    generations++;
  }
  return { tokensPerSecond: (measured * 1000) / ms, tokens: measured, generations };
}

export interface MaskCost {
  label: string;
  /** Per generated token, µs (medians; computed also gives p90 and max). */
  lookupUs: number;
  computedUs: number;
  computedP90Us: number;
  computedMaxUs: number;
  applyUs: number;
  /** The naive check (every token of the vocabulary stepped through the automaton), µs, median over a sample of the same states. */
  naiveUs: number;
  /** Allowed tokens per step, median. */
  allowed: number;
  tokens: number;
}

/**
 * Replays a constrained generation's tokens through fresh constraints: the
 * first replay computes every state's mask (each state for the first time),
 * the second finds them all cached.
 */
export function maskCost(setup: ConstraintSetup, label: string, spec: ReplySpec, tokenIds: number[], logits: Float32Array): MaskCost {
  const computed: number[] = [];
  const cold = constraintFor(setup, spec);
  const m = cold.start();
  const allowed: number[] = [];
  const naive: number[] = [];
  // The automaton's state followed alongside, for the naive check.
  let threads = initialThreads(cold.grammar.root);
  for (const id of tokenIds) {
    const started = performance.now();
    const mask = m.allowed();
    computed.push((performance.now() - started) * 1000);
    allowed.push(mask.count);
    if (naive.length < 8) naive.push(naiveMaskUs(setup.vocabulary, threads));
    m.accept(id);
    threads = advance(setup.vocabulary, threads, id);
  }
  const lookup: number[] = [];
  const apply: number[] = [];
  const warm = cold.start();
  const row = new Float32Array(logits.length);
  for (const id of tokenIds) {
    let started = performance.now();
    const mask = warm.allowed();
    lookup.push((performance.now() - started) * 1000);
    row.set(logits);
    started = performance.now();
    mask.apply(row);
    apply.push((performance.now() - started) * 1000);
    warm.accept(id);
  }
  const sorted = [...computed].sort((a, b) => a - b);
  return {
    label,
    lookupUs: median(lookup),
    computedUs: median(computed),
    computedP90Us: sorted[Math.floor(sorted.length * 0.9)],
    computedMaxUs: sorted[sorted.length - 1],
    applyUs: median(apply),
    naiveUs: median(naive),
    allowed: median(allowed),
    tokens: tokenIds.length,
  };
}

function advance(vocabulary: TokenVocabulary, threads: readonly Frame[], id: number): readonly Frame[] {
  if (vocabulary.isSpecial(id)) return step(threads, SPECIAL_SYMBOL_BASE + id);
  const bytes = vocabulary.tokenBytes(id);
  if (!bytes) return [];
  let t = threads;
  for (let i = 0; i < bytes.length && t.length > 0; i++) t = step(t, bytes[i]);
  return t;
}

/** The naive mask: every token of the vocabulary stepped through the automaton on its own. */
function naiveMaskUs(vocabulary: TokenVocabulary, threads: readonly Frame[]): number {
  const started = performance.now();
  const bits = new Uint32Array(vocabulary.words);
  for (let id = 0; id < vocabulary.size; id++) {
    if (advance(vocabulary, threads, id).length > 0) bits[id >>> 5] |= 1 << (id & 31);
  }
  return (performance.now() - started) * 1000;
}
