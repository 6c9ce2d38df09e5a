import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { porterStem } from '../../src/metrics/porter-stemmer.ts';

const fixture = JSON.parse(readFileSync(new URL('../fixtures/metrics/porter-nltk.json', import.meta.url), 'utf8')) as {
  nltk: string;
  stems: Array<[string, string]>;
};

test(`porterStem gives NLTK ${fixture.nltk} PorterStemmer().stem on 12,000 dictionary words and the rule cases`, () => {
  assert.ok(fixture.stems.length > 12_000);
  const wrong = fixture.stems.filter(([word, stem]) => porterStem(word) !== stem);
  assert.deepEqual(wrong.slice(0, 10).map(([w, s]) => `${w}: NLTK ${s}, ours ${porterStem(w)}`), []);
  assert.equal(wrong.length, 0);
});

test('NLTK_EXTENSIONS departures from the original algorithm (values from NLTK 3.8)', () => {
  const cases: Array<[string, string]> = [
    ['skies', 'sky'], ['dying', 'die'], ['news', 'news'], ['proceed', 'proceed'], // irregular forms
    ['dies', 'die'], ['flies', 'fli'], ['died', 'die'], ['spied', 'spi'], // -ies / -ied
    ['happy', 'happi'], ['enjoy', 'enjoy'], ['fly', 'fli'], // step 1c
    ['radicalli', 'radic'], ['fruitfulli', 'fruit'], ['archaeologi', 'archaeolog'], ['geologi', 'geolog'], // step 2
    ['abe', 'abe'], ['Skies', 'ski'], ['NEWS', 'new'], ['by', 'by'], ['A', 'a'], // *o for two letters; the pool is case-sensitive; short words
  ];
  for (const [word, stem] of cases) assert.equal(porterStem(word), stem, word);
});

test('characters outside the BMP count as one character, as in Python', () => {
  // NLTK 3.8: stem('a😀😀ed') == 'a😀' (double consonant undoubled), stem('😀😀😀') == '😀😀😀'
  assert.equal(porterStem('a😀😀ed'), 'a😀');
  assert.equal(porterStem('😀😀😀'), '😀😀😀');
  assert.equal(porterStem('😀ing'), '😀ing');
  assert.equal(porterStem('x😀y😀z'), 'x😀y😀z');
});
