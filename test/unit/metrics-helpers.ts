/**
 * Seeded English-like sentence pairs for the metric property tests and the
 * metrics benchmark: a reference of 10–40 words and a hypothesis made from it
 * by the edits a model output shows (inflections, drops, inserts, swaps, case).
 */

const WORDS = `the a an of to in for on with at by from about into over after before under between
cat cats dog dogs man men woman women child children city cities country countries house houses
government governments company companies market markets system systems report reports study studies
result results policy policies agreement officer officers run runs running ran walk walked walking
say says said make makes made making take took taken go goes went see saw seen know knew known
happy happier happiness quick quickly generous generosity connect connected connection relate related
relational operate operated operator national nationality argue argued argument decide decided decision
hopeful hopefully care careful carefully is are was were be been has have had do does did not no yes
very also only new old big small long short high low early late good bad great little first last next
other same different important possible public private told asked answered reported announced expected
agreed denied confirmed yesterday today tomorrow week month year years day days time police court
minister president council committee board union team three four five ten hundred thousand million`.split(/\s+/);

const INFLECTIONS = [
  ['run', 'runs', 'running', 'ran'], ['walk', 'walked', 'walking'], ['say', 'says', 'said'], ['make', 'makes', 'made', 'making'],
  ['connect', 'connected', 'connection'], ['relate', 'related', 'relational'], ['operate', 'operated', 'operator'],
  ['argue', 'argued', 'argument'], ['decide', 'decided', 'decision'], ['happy', 'happier', 'happiness'], ['city', 'cities'],
  ['study', 'studies'], ['policy', 'policies'], ['report', 'reports', 'reported'], ['national', 'nationality'],
];
const INFLECT = new Map<string, string[]>();
for (const group of INFLECTIONS) for (const w of group) INFLECT.set(w, group.filter((x) => x !== w));

/** A small deterministic generator (LCG); the same seed gives the same sequence everywhere. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

export function sentence(rand: () => number, words: number): string {
  const out = Array.from({ length: words }, () => WORDS[Math.floor(rand() * WORDS.length)]);
  out[0] = out[0][0].toUpperCase() + out[0].slice(1);
  return `${out.join(' ')}${rand() < 0.8 ? '.' : '?'}`;
}

export function perturb(rand: () => number, text: string, strength: number): string {
  const out: string[] = [];
  for (const w of text.split(' ')) {
    const r = rand();
    const bare = w.replace(/[.?]$/, '').toLowerCase();
    const alternatives = INFLECT.get(bare);
    if (r < strength * 0.25 && alternatives) out.push(alternatives[Math.floor(rand() * alternatives.length)] + w.slice(bare.length));
    else if (r < strength * 0.4) continue;
    else if (r < strength * 0.55) out.push(w, WORDS[Math.floor(rand() * WORDS.length)]);
    else if (r < strength * 0.65) out.push(rand() < 0.5 ? w.toUpperCase() : w.toLowerCase());
    else out.push(w);
  }
  if (out.length > 2 && rand() < strength) {
    const i = Math.floor(rand() * (out.length - 1));
    [out[i], out[i + 1]] = [out[i + 1], out[i]];
  }
  return out.join(' ');
}

/** `count` (hypothesis, reference) pairs, references of minWords–maxWords words. */
export function sentencePairs(seed: number, count: number, minWords = 10, maxWords = 40): Array<[string, string]> {
  const rand = seededRandom(seed);
  return Array.from({ length: count }, () => {
    const reference = sentence(rand, minWords + Math.floor(rand() * (maxWords - minWords + 1)));
    return [perturb(rand, reference, [0.1, 0.3, 0.5, 0.8][Math.floor(rand() * 4)]), reference];
  });
}
