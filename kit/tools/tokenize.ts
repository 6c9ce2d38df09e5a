/**
 * The kit's bridge to the project's tokenizer and chat template (Python has no
 * cl100k tokenizer here): renders held-out evaluation prompts exactly as the
 * server will, and dumps the token byte table so Python can decode what the
 * model generates.
 *
 *   npx tsx kit/tools/tokenize.ts eval <heldout.jsonl> <out.json>   prompts → ids (with the generation prompt)
 *   npx tsx kit/tools/tokenize.ts vocab <out.json>                  id → base64 bytes, plus the special tokens
 *   npx tsx kit/tools/tokenize.ts text <string>...                  one JSON array of ids per string
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { ChatTokenizer } from '../../src/chat/tokenizer.ts';
import { ChatTemplate } from '../../src/chat/template.ts';
import { toChatMessages, toToolSpecs } from '../../src/chat/openai-messages.ts';
import { DEFAULT_SPECIAL_TOKEN_IDS, DEFAULT_VOCAB_SIZE } from '../../src/chat/special-tokens.ts';

const tokenizer = new ChatTokenizer({ encoding: 'cl100k_base', special_tokens: DEFAULT_SPECIAL_TOKEN_IDS });
const template = new ChatTemplate(tokenizer);
const [mode, ...args] = process.argv.slice(2);

if (mode === 'eval') {
  const [input, output] = args;
  const items = readFileSync(input, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l));
  const prompts = items.map((it) => template.render(toChatMessages(it.messages), { tools: toToolSpecs(it.tools), addGenerationPrompt: true }).ids);
  writeFileSync(output, JSON.stringify({ prompts }));
} else if (mode === 'vocab') {
  const table: Record<number, string> = {};
  for (let id = 0; id < DEFAULT_VOCAB_SIZE; id++) {
    if (tokenizer.isKnown(id)) table[id] = Buffer.from(tokenizer.tokenBytes(id)).toString('base64');
  }
  writeFileSync(args[0], JSON.stringify({ special_tokens: DEFAULT_SPECIAL_TOKEN_IDS, bytes: table }));
} else if (mode === 'text') {
  for (const s of args) console.log(JSON.stringify(tokenizer.encodeText(s)));
} else {
  console.error('usage: tokenize.ts eval <in.jsonl> <out.json> | vocab <out.json> | text <string>...');
  process.exit(2);
}
