/**
 * The few Python string semantics the reference implementations rely on and
 * JavaScript spells differently. The metrics reproduce Python libraries
 * (sacrebleu, rouge-score, NLTK, rapidfuzz), so where JavaScript's built-ins
 * differ from Python's (the set of whitespace characters, counting code points
 * rather than UTF-16 units, rounding in format strings) the difference would
 * change a score; these helpers keep Python's meaning.
 */

/**
 * The characters Python's `str.isspace()` accepts (CPython 3.11, Unicode 14):
 * JavaScript's `\s` adds U+FEFF and lacks U+001C–U+001F and U+0085.
 */
const PY_WHITESPACE = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const PY_WHITESPACE_RUN = new RegExp(`[${PY_WHITESPACE}]+`);
const PY_WHITESPACE_CHAR = new RegExp(`^[${PY_WHITESPACE}]$`);

/** The same set by UTF-16 unit (every Python whitespace character is in the BMP). */
function isSpaceUnit(c: number): boolean {
  if (c <= 0x20) return c === 0x20 || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f);
  if (c < 0x85) return false;
  return c === 0x85 || c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000;
}

/** Python's `s.split()` (no argument): runs of whitespace separate, none at either end. */
export function pySplit(s: string): string[] {
  const parts = s.split(PY_WHITESPACE_RUN);
  let start = 0;
  let end = parts.length;
  if (end > 0 && parts[0] === '') start = 1;
  if (end > start && parts[end - 1] === '') end -= 1;
  return start === 0 && end === parts.length ? parts : parts.slice(start, end);
}

/** Python's `s.rstrip()`. (A loop: a `[…]+$` regex backtracks quadratically over inner runs of whitespace.) */
export function pyRstrip(s: string): string {
  let end = s.length;
  while (end > 0 && isSpaceUnit(s.charCodeAt(end - 1))) end--;
  return end === s.length ? s : s.slice(0, end);
}

/** Python's `c.isspace()` for one character (one code point). */
export function pyIsSpace(c: string): boolean {
  return PY_WHITESPACE_CHAR.test(c);
}

/** Python's `len(s)`: code points, a surrogate pair counting once. */
export function codePointLength(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length - 1; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c < 0xdc00) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d < 0xe000) {
        n--;
        i++;
      }
    }
  }
  return n;
}

/** True when `s` holds a UTF-16 surrogate, i.e. where JavaScript indexing and Python indexing part ways. */
export function hasSurrogate(s: string): boolean {
  return /[\ud800-\udfff]/.test(s);
}

/**
 * Python's `f'{x:.{digits}f}'`: like `toFixed`, except that an exact tie
 * rounds half to even (Python) rather than up (JavaScript): 0.125 → '0.12'.
 */
export function pyFixed(x: number, digits: number): string {
  const plain = x.toFixed(digits);
  if (!Number.isFinite(x) || Math.abs(x) >= 1e21) return plain;
  // toFixed(digits + 60) is the exact decimal expansion this far; a tie ends in 5 then zeros.
  const exact = Math.abs(x).toFixed(Math.min(100, digits + 60));
  const dot = exact.indexOf('.');
  const tail = exact.slice(dot + 1 + digits);
  if (!/^50*$/.test(tail)) return plain;
  const kept = exact.slice(0, dot + 1 + digits).replace('.', '');
  const lastDigit = Number(kept[kept.length - 1]);
  if (lastDigit % 2 === 1) return plain; // toFixed rounded up to the even digit already
  const sign = x < 0 ? '-' : '';
  const body = digits === 0 ? kept : `${kept.slice(0, kept.length - digits)}.${kept.slice(kept.length - digits)}`;
  return sign + body.replace(/^0+(?=\d)/, '');
}
