/**
 * sacrebleu's tokenizers (2.x): each turns a line into its tokens, as
 * sacrebleu's `tokenizer(line).split()` would. `13a` is mteval-v13a.pl's
 * (sacrebleu's default), `intl` mteval-v14.pl's international one, `char`
 * every character a token, `none` whitespace only.
 */
import { pyIsSpace, pySplit } from './python-text.ts';

export const BLEU_TOKENIZERS = ['13a', 'none', 'intl', 'char'] as const;
export type BleuTokenizerName = (typeof BLEU_TOKENIZERS)[number];

// 13a (tokenizer_13a.py + tokenizer_re.py): ASCII punctuation and symbols are
// split off, except period and comma next to digits and a dash after a digit.
const SPLIT_ASCII_SYMBOLS = /([\x7b-\x7e\x5b-\x60\x20-\x26\x28-\x2b\x3a-\x40\x2f])/g;
const PERIOD_COMMA_AFTER_NON_DIGIT = /([^0-9])([.,])/g;
const PERIOD_COMMA_BEFORE_NON_DIGIT = /([.,])([^0-9])/g;
const DASH_AFTER_DIGIT = /([0-9])(-)/g;

function tokenize13a(line: string): string[] {
  let s = line.replaceAll('<skipped>', '').replaceAll('-\n', '').replaceAll('\n', ' ');
  if (s.includes('&')) s = s.replaceAll('&quot;', '"').replaceAll('&amp;', '&').replaceAll('&lt;', '<').replaceAll('&gt;', '>');
  s = ` ${s} `
    .replace(SPLIT_ASCII_SYMBOLS, ' $1 ')
    .replace(PERIOD_COMMA_AFTER_NON_DIGIT, '$1 $2 ')
    .replace(PERIOD_COMMA_BEFORE_NON_DIGIT, ' $1 $2')
    .replace(DASH_AFTER_DIGIT, '$1 $2 ');
  return pySplit(s);
}

// intl (tokenizer_intl.py): Unicode punctuation is split off unless it sits
// between digits; Unicode symbols always are.
const PUNCT_AFTER_NON_NUMBER = /(\P{N})(\p{P})/gu;
const PUNCT_BEFORE_NON_NUMBER = /(\p{P})(\P{N})/gu;
const SYMBOL = /(\p{S})/gu;

function tokenizeIntl(line: string): string[] {
  return pySplit(line.replace(PUNCT_AFTER_NON_NUMBER, '$1 $2 ').replace(PUNCT_BEFORE_NON_NUMBER, ' $1 $2').replace(SYMBOL, ' $1 '));
}

/** char: `' '.join(line)` then split: every non-whitespace code point is a token. */
function tokenizeChar(line: string): string[] {
  const tokens: string[] = [];
  for (const c of line) if (!pyIsSpace(c)) tokens.push(c);
  return tokens;
}

const TOKENIZERS: Record<BleuTokenizerName, (line: string) => string[]> = {
  '13a': tokenize13a,
  none: pySplit,
  intl: tokenizeIntl,
  char: tokenizeChar,
};

/** The tokens sacrebleu's tokenizer `name` makes of `line` (already lowercased and right-stripped by the caller). */
export function bleuTokenize(line: string, name: BleuTokenizerName): string[] {
  const tokenize = Object.hasOwn(TOKENIZERS, name) ? TOKENIZERS[name] : undefined;
  if (tokenize === undefined) throw new RangeError(`unknown BLEU tokenizer ${JSON.stringify(name)} (one of ${BLEU_TOKENIZERS.join(', ')})`);
  return tokenize(line);
}
