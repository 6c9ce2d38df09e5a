/**
 * npm run prepare-data -- --input train.jsonl --output train.mmrecds [--config models/<id>/config.json]
 *
 * OpenAI fine-tuning JSONL → the binary dataset the model kit trains on
 * (format in dataset.ts). The tokenizer (encoding and special-token ids) comes
 * from a model's config.json, or the MM-Rec defaults.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ChatTokenizer } from './tokenizer.ts';
import { ChatTemplate } from './template.ts';
import { DatasetLineError, encodeDataset, prepareJsonl } from './dataset.ts';
import { DEFAULT_SPECIAL_TOKEN_IDS, DEFAULT_VOCAB_SIZE } from './special-tokens.ts';

const { values } = parseArgs({
  options: {
    input: { type: 'string', short: 'i' },
    output: { type: 'string', short: 'o' },
    config: { type: 'string', short: 'c' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help || !values.input || !values.output) {
  console.log('usage: npm run prepare-data -- --input data.jsonl --output data.mmrecds [--config models/<id>/config.json]');
  process.exit(values.help ? 0 : 2);
}

let spec = { encoding: 'cl100k_base', special_tokens: DEFAULT_SPECIAL_TOKEN_IDS, vocab_size: DEFAULT_VOCAB_SIZE };
if (values.config) {
  const cfg = JSON.parse(readFileSync(values.config, 'utf8'));
  spec = { encoding: cfg.tokenizer.encoding, special_tokens: cfg.tokenizer.special_tokens, vocab_size: cfg.vocab_size };
}
const tokenizer = new ChatTokenizer(spec);
const template = new ChatTemplate(tokenizer);
try {
  const { conversations, stats } = prepareJsonl(template, readFileSync(values.input, 'utf8'));
  writeFileSync(values.output, encodeDataset(spec, conversations));
  console.log(
    `${values.input}: ${stats.conversations} conversations, ${stats.tokens} tokens, ${stats.trainedTokens} trained tokens ` +
      `(${((100 * stats.trainedTokens) / Math.max(1, stats.tokens)).toFixed(1)}%) → ${values.output}`,
  );
} catch (e) {
  if (e instanceof DatasetLineError) {
    console.error(`${values.input}: ${e.message}`);
    process.exit(1);
  }
  throw e;
}
