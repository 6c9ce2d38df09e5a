/**
 * The Porter stemmer as NLTK's `PorterStemmer()` runs it by default
 * (`mode=NLTK_EXTENSIONS`, NLTK 3.8): rouge-score's tokenizer (`use_stemmer`)
 * and NLTK's METEOR both construct it that way. Written from Porter's 1980
 * algorithm plus the departures NLTK documents for that mode:
 *
 * - a table of irregular forms looked up before anything else (skies → sky, dying → die, …);
 * - words of one or two characters are returned lowercased, unstemmed;
 * - step 1a: a four-letter word ending in -ies keeps -ie (dies → die);
 * - step 1b: -ied becomes -ie in a four-letter word, else -i (died → die, spied → spi);
 * - step 1c: y → i only after a consonant that is not the first letter (happy → happi, enjoy → enjoy);
 * - step 2: -alli → -al is tried first and step 2 rerun on the result; -bli → -ble (not -abli);
 *   -fulli → -ful; -logi → -log when the stem with its l has a positive measure;
 * - condition *o also holds for a two-letter vowel–consonant stem.
 *
 * Python indexes strings by code point; a word with characters outside the
 * Basic Multilingual Plane is stemmed on a copy where each such character is
 * one placeholder unit, so lengths and positions agree with NLTK's.
 */
import { codePointLength, hasSurrogate } from './python-text.ts';

/** NLTK's irregular forms: the word as given (already lowercase) → its stem. */
const IRREGULAR = new Map<string, string>([
  ['sky', 'sky'], ['skies', 'sky'],
  ['dying', 'die'], ['lying', 'lie'], ['tying', 'tie'],
  ['news', 'news'],
  ['innings', 'inning'], ['inning', 'inning'],
  ['outings', 'outing'], ['outing', 'outing'],
  ['cannings', 'canning'], ['canning', 'canning'],
  ['howe', 'howe'],
  ['proceed', 'proceed'], ['exceed', 'exceed'], ['succeed', 'succeed'],
]);

function isVowelLetter(c: string): boolean {
  return c === 'a' || c === 'e' || c === 'i' || c === 'o' || c === 'u';
}

/** Porter's consonant: not a, e, i, o, u, and not a y that follows a consonant. */
function isConsonant(w: string, i: number): boolean {
  // A run of y's alternates consonant/vowel from the letter before the run.
  let j = i;
  while (j >= 0 && w[j] === 'y') j--;
  const run = i - j; // y's from j+1 to i
  if (j < 0) return run % 2 === 1; // a first-letter y is a consonant
  const before = !isVowelLetter(w[j]);
  if (run === 0) return before;
  // y after a consonant is a vowel, after a vowel a consonant.
  return run % 2 === 1 ? !before : before;
}

/** m in [C](VC){m}[V]: the number of vowel→consonant transitions. */
function measure(w: string, end = w.length): number {
  let m = 0;
  let prevConsonant = true;
  for (let i = 0; i < end; i++) {
    const c = w[i];
    const consonant: boolean = isVowelLetter(c) ? false : c === 'y' ? i === 0 || !prevConsonant : true;
    if (consonant && !prevConsonant) m++;
    prevConsonant = consonant;
  }
  return m;
}

function containsVowel(w: string, end = w.length): boolean {
  for (let i = 0; i < end; i++) if (!isConsonant(w, i)) return true;
  return false;
}

/** *d: ends with a double consonant. */
function endsDoubleConsonant(w: string): boolean {
  const n = w.length;
  return n >= 2 && w[n - 1] === w[n - 2] && isConsonant(w, n - 1);
}

/** *o: ends consonant–vowel–consonant, the last not w, x or y (NLTK: or is a two-letter vowel–consonant word). */
function endsCvc(w: string): boolean {
  const n = w.length;
  if (n >= 3) {
    const last = w[n - 1];
    if (isConsonant(w, n - 3) && !isConsonant(w, n - 2) && isConsonant(w, n - 1) && last !== 'w' && last !== 'x' && last !== 'y') return true;
  }
  return n === 2 && !isConsonant(w, 0) && isConsonant(w, 1);
}

/**
 * One of Porter's rule lists: the first rule whose suffix the word ends with
 * decides; if its condition fails, the word is left as it is (no later rule is tried).
 */
type Rule = readonly [suffix: string, replacement: string, condition: ((stem: string, word: string) => boolean) | null];

function applyRules(word: string, rules: readonly Rule[]): string {
  for (const [suffix, replacement, condition] of rules) {
    if (!word.endsWith(suffix)) continue;
    const stem = word.slice(0, word.length - suffix.length);
    return condition === null || condition(stem, word) ? stem + replacement : word;
  }
  return word;
}

const positive = (stem: string) => measure(stem) > 0;
const aboveOne = (stem: string) => measure(stem) > 1;

const STEP1A: readonly Rule[] = [
  ['sses', 'ss', null],
  ['ies', 'i', null],
  ['ss', 'ss', null],
  ['s', '', null],
];

const STEP2: readonly Rule[] = [
  ['ational', 'ate', positive],
  ['tional', 'tion', positive],
  ['enci', 'ence', positive],
  ['anci', 'ance', positive],
  ['izer', 'ize', positive],
  ['bli', 'ble', positive],
  ['alli', 'al', positive],
  ['entli', 'ent', positive],
  ['eli', 'e', positive],
  ['ousli', 'ous', positive],
  ['ization', 'ize', positive],
  ['ation', 'ate', positive],
  ['ator', 'ate', positive],
  ['alism', 'al', positive],
  ['iveness', 'ive', positive],
  ['fulness', 'ful', positive],
  ['ousness', 'ous', positive],
  ['aliti', 'al', positive],
  ['iviti', 'ive', positive],
  ['biliti', 'ble', positive],
  ['fulli', 'ful', positive],
  // The l stays with the stem for the condition, so that geo-logi, theo-logi qualify.
  ['logi', 'log', (_stem, word) => measure(word, word.length - 3) > 0],
];

const STEP3: readonly Rule[] = [
  ['icate', 'ic', positive],
  ['ative', '', positive],
  ['alize', 'al', positive],
  ['iciti', 'ic', positive],
  ['ical', 'ic', positive],
  ['ful', '', positive],
  ['ness', '', positive],
];

const STEP4: readonly Rule[] = [
  ['al', '', aboveOne],
  ['ance', '', aboveOne],
  ['ence', '', aboveOne],
  ['er', '', aboveOne],
  ['ic', '', aboveOne],
  ['able', '', aboveOne],
  ['ible', '', aboveOne],
  ['ant', '', aboveOne],
  ['ement', '', aboveOne],
  ['ment', '', aboveOne],
  ['ent', '', aboveOne],
  ['ion', '', (stem) => measure(stem) > 1 && (stem.endsWith('s') || stem.endsWith('t'))],
  ['ou', '', aboveOne],
  ['ism', '', aboveOne],
  ['ate', '', aboveOne],
  ['iti', '', aboveOne],
  ['ous', '', aboveOne],
  ['ive', '', aboveOne],
  ['ize', '', aboveOne],
];

function step1a(w: string): string {
  if (w.length === 4 && w.endsWith('ies')) return `${w.slice(0, 1)}ie`;
  return applyRules(w, STEP1A);
}

function step1b(w: string): string {
  if (w.endsWith('ied')) return w.length === 4 ? `${w.slice(0, 1)}ie` : `${w.slice(0, -3)}i`;
  if (w.endsWith('eed')) {
    const stem = w.slice(0, -3);
    return measure(stem) > 0 ? `${stem}ee` : w;
  }
  let stem: string | undefined;
  for (const suffix of ['ed', 'ing']) {
    if (w.endsWith(suffix) && containsVowel(w, w.length - suffix.length)) {
      stem = w.slice(0, w.length - suffix.length);
      break;
    }
  }
  if (stem === undefined) return w;
  // Tidying after -ed/-ing: restore the e of -ate/-ble/-ize, undouble, or add e to a short cvc stem.
  if (stem.endsWith('at') || stem.endsWith('bl') || stem.endsWith('iz')) return `${stem}e`;
  if (endsDoubleConsonant(stem)) {
    const last = stem[stem.length - 1];
    return last === 'l' || last === 's' || last === 'z' ? stem : stem.slice(0, -1);
  }
  return measure(stem) === 1 && endsCvc(stem) ? `${stem}e` : stem;
}

function step1c(w: string): string {
  if (!w.endsWith('y')) return w;
  const stem = w.slice(0, -1);
  return stem.length > 1 && isConsonant(stem, stem.length - 1) ? `${stem}i` : w;
}

function step2(w: string): string {
  if (w.endsWith('alli') && measure(w, w.length - 4) > 0) return step2(`${w.slice(0, -4)}al`);
  return applyRules(w, STEP2);
}

function step5a(w: string): string {
  if (!w.endsWith('e')) return w;
  const stem = w.slice(0, -1);
  const m = measure(stem);
  return m > 1 || (m === 1 && !endsCvc(stem)) ? stem : w;
}

function step5b(w: string): string {
  return w.endsWith('ll') && measure(w, w.length - 1) > 1 ? w.slice(0, -1) : w;
}

function stemLowercase(w: string): string {
  return step5b(step5a(applyRules(applyRules(step2(step1c(step1b(step1a(w)))), STEP3), STEP4)));
}

/**
 * Stems a word whose astral characters were each replaced by one BMP
 * placeholder (private-use characters absent from the word), then restores them.
 */
function stemByCodePoint(lowered: string): string {
  const chars = Array.from(lowered);
  const present = new Set(lowered);
  const toPlaceholder = new Map<string, string>();
  const fromPlaceholder = new Map<string, string>();
  let next = 0xe000;
  const units = chars.map((c) => {
    if (c.length === 1) return c;
    let p = toPlaceholder.get(c);
    if (p === undefined) {
      do {
        if (next > 0xffff) throw new Error('porterStem: too many distinct astral characters in one word');
        p = String.fromCharCode(next++);
      } while (present.has(p));
      toPlaceholder.set(c, p);
      fromPlaceholder.set(p, c);
    }
    return p;
  });
  return Array.from(stemLowercase(units.join(''))).map((c) => fromPlaceholder.get(c) ?? c).join('');
}

// Text repeats its words, and stemming one costs about a microsecond: recent
// stems are remembered (bounded; cleared whole when full).
const MEMO_LIMIT = 50_000;
const MEMO_MAX_WORD = 64;
const memo = new Map<string, string>();

/** NLTK's `PorterStemmer().stem(word)` (NLTK_EXTENSIONS mode, `to_lowercase=True`). */
export function porterStem(word: string): string {
  const known = memo.get(word);
  if (known !== undefined) return known;
  const stem = stemUncached(word);
  if (word.length <= MEMO_MAX_WORD) {
    if (memo.size >= MEMO_LIMIT) memo.clear();
    memo.set(word, stem);
  }
  return stem;
}

function stemUncached(word: string): string {
  const irregular = IRREGULAR.get(word);
  if (irregular !== undefined) return irregular;
  const lowered = word.toLowerCase();
  if (codePointLength(word) <= 2) return lowered;
  return hasSurrogate(lowered) ? stemByCodePoint(lowered) : stemLowercase(lowered);
}
