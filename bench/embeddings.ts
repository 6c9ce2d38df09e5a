/**
 * POST /v1/embeddings against a started server (the real path clients take):
 *
 * - throughput: the same inputs as one request (the engine batches them) and
 *   as one request per input, sequentially, in alternating rounds; items/s;
 * - what the vectors carry: cosine of paraphrase pairs, of unrelated pairs and
 *   of "hard negatives" (the same words, another meaning), and top-1 retrieval
 *   (each sentence's paraphrase among all the second halves), against a
 *   bag-of-tokens baseline (token-count vectors) that knows only the words.
 *
 *   npm run bench -- --only embeddings [--model DIR]
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ChatTokenizer } from '../src/chat/tokenizer.ts';
import { readModelDir } from '../src/engine/model-dir.ts';
import { withHttpServer } from './http.ts';
import { median, printTable } from './table.ts';

const PARAPHRASES: Array<[string, string]> = [
  ['What is the weather in Paris?', 'How is the weather in Paris today?'],
  ['Tell me a story about a dragon.', 'Can you tell me a dragon story?'],
  ['My name is Alice.', 'I am called Alice.'],
  ['What is the capital of France?', 'Which city is the capital of France?'],
  ['Convert 10 miles to kilometers.', 'How many kilometers are 10 miles?'],
  ['Set a timer for five minutes.', 'Start a five minute timer.'],
  ['The cat sat on the mat.', 'A cat was sitting on the mat.'],
  ['I love eating pizza.', 'Pizza is my favourite food.'],
  ['Is it going to rain in London tomorrow?', 'Will London get showers tomorrow?'],
  ['Please book a table for two.', 'I would like to reserve a dinner table for 2 people.'],
  ['How do I reset my password?', 'I forgot my login credentials, what should I do?'],
  ['Search the web for cheap flights.', 'Look online for inexpensive plane tickets.'],
];

/** The same words (mostly), another meaning: a model that reads meaning scores these below the paraphrases. */
const HARD_NEGATIVES: Array<[string, string]> = [
  ['What is the weather in Paris?', 'What is the capital of Paris?'],
  ['My name is Alice.', 'My name is not Alice.'],
  ['Set a timer for five minutes.', 'Set an alarm for five o clock.'],
  ['The cat sat on the mat.', 'The mat sat on the cat.'],
];

type Vector = number[];

async function embed(url: string, model: string, input: string[], dimensions?: number): Promise<Vector[]> {
  const r = await fetch(`${url}/v1/embeddings`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, input, encoding_format: 'float', ...(dimensions ? { dimensions } : {}) }),
  });
  if (r.status !== 200) throw new Error(`embeddings: ${r.status} ${await r.text()}`);
  return ((await r.json()) as { data: Array<{ embedding: Vector }> }).data.map((d) => d.embedding);
}

const cosine = (a: Vector, b: Vector) => {
  let d = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    d += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return d / Math.sqrt(na * nb);
};
const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;

/** Sentences of about `words` words, all different (salted with their index). */
function texts(n: number, words: number): string[] {
  const vocabulary = 'the a cat dog city weather story timer table flight password river mountain quick slow green red music book train light'.split(' ');
  return Array.from({ length: n }, (_, i) => Array.from({ length: words }, (_, w) => vocabulary[(i * 7 + w * 13 + ((i * w) % 5)) % vocabulary.length]).join(' ') + ` ${i}.`);
}

interface Quality {
  label: string;
  paraphrase: number;
  unrelated: number;
  hard: number;
  top1: number;
}

function quality(label: string, vectorOf: (text: string) => Vector): Quality {
  const paraphrase = PARAPHRASES.map(([a, b]) => cosine(vectorOf(a), vectorOf(b)));
  const unrelated: number[] = [];
  let top1 = 0;
  PARAPHRASES.forEach(([a], i) => {
    const scores = PARAPHRASES.map(([, b]) => cosine(vectorOf(a), vectorOf(b)));
    scores.forEach((s, j) => j !== i && unrelated.push(s));
    if (scores.indexOf(Math.max(...scores)) === i) top1++;
  });
  const hard = HARD_NEGATIVES.map(([a, b]) => cosine(vectorOf(a), vectorOf(b)));
  return { label, paraphrase: mean(paraphrase), unrelated: mean(unrelated), hard: mean(hard), top1 };
}

export async function embeddingsSection(modelDir: string): Promise<void> {
  await withHttpServer(modelDir, async (url, model) => {
    await embed(url, model, texts(4, 8)); // warm-up
    const rounds = 3;
    const rows: Array<Array<string | number>> = [];
    for (const [n, words] of [[64, 12], [16, 120]]) {
      const inputs = texts(n, words);
      const batched: number[] = [];
      const single: number[] = [];
      for (let r = 0; r < rounds; r++) {
        let t = performance.now();
        await embed(url, model, inputs);
        batched.push(n / ((performance.now() - t) / 1000));
        t = performance.now();
        for (const input of inputs) await embed(url, model, [input]);
        single.push(n / ((performance.now() - t) / 1000));
      }
      rows.push([`${n} inputs of ~${words} words`, median(single).toFixed(1), median(batched).toFixed(1), (median(batched) / median(single)).toFixed(2)]);
    }
    printTable(
      `Embeddings through HTTP: items/s, one request per input (sequential) vs all inputs in one request (batched by the engine); medians of ${rounds} alternating rounds`,
      ['inputs', 'one at a time', 'one request', 'ratio'],
      rows,
    );

    const all = [...new Set([...PARAPHRASES.flat(), ...HARD_NEGATIVES.flat()])];
    const full = await embed(url, model, all);
    const config = readModelDir(modelDir).config;
    // One block per recurrent state tensor (config.json's model.state_shapes): a prefix of whole blocks is a valid `dimensions`.
    const layers = (JSON.parse(readFileSync(join(modelDir, 'config.json'), 'utf8')) as { model: { state_shapes: number[][] } }).model.state_shapes.length;
    const first = await embed(url, model, all, full[0].length / layers);
    const byText = (vectors: Vector[]) => (t: string) => vectors[all.indexOf(t)];
    const tokenizer = new ChatTokenizer(config.tokenizer);
    const bag = (t: string): Vector => {
      const v = new Array(config.vocabSize).fill(0);
      for (const id of tokenizer.encodeText(t.toLowerCase())) v[id]++;
      return v;
    };
    const results = [
      quality(`${model}: last state, all ${layers} layers (${full[0].length} dims)`, byText(full)),
      quality(`${model}: last state, first layer only (dimensions ${first[0].length})`, byText(first)),
      quality('baseline: bag of tokens (the words only)', bag),
    ];
    printTable(
      `What the vectors carry: mean cosine of ${PARAPHRASES.length} paraphrase pairs, of their ${PARAPHRASES.length * (PARAPHRASES.length - 1)} unrelated pairings and of ${HARD_NEGATIVES.length} same-words-other-meaning pairs; top-1: the paraphrase is the nearest of the ${PARAPHRASES.length} candidates`,
      ['vectors', 'paraphrase', 'unrelated', 'hard negative', 'top-1'],
      results.map((q) => [q.label, q.paraphrase.toFixed(3), q.unrelated.toFixed(3), q.hard.toFixed(3), `${q.top1}/${PARAPHRASES.length}`]),
    );
  });
}
