import { test } from 'node:test';
import assert from 'node:assert/strict';
import { codePointLength, pyFixed, pyIsSpace, pyRstrip, pySplit } from '../../src/metrics/python-text.ts';

// CPython 3.11.2: [hex(c) for c in range(0x110000) if chr(c).isspace()]
const PYTHON_WHITESPACE = [
  0x9, 0xa, 0xb, 0xc, 0xd, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008,
  0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
];

test('whitespace is Python\u2019s str.isspace() set, not JavaScript\u2019s \\s', () => {
  const found: number[] = [];
  for (let c = 0; c < 0x110000; c++) {
    if (c >= 0xd800 && c < 0xe000) continue;
    if (pyIsSpace(String.fromCodePoint(c))) found.push(c);
  }
  assert.deepEqual(found, PYTHON_WHITESPACE);
  for (const c of PYTHON_WHITESPACE) {
    const ws = String.fromCharCode(c);
    assert.deepEqual(pySplit(`${ws}a${ws}${ws}b${ws}`), ['a', 'b'], `U+${c.toString(16)}`);
    assert.equal(pyRstrip(`a${ws}b${ws}${ws}`), `a${ws}b`, `U+${c.toString(16)}`);
  }
  assert.deepEqual(pySplit('a\ufeffb'), ['a\ufeffb']); // U+FEFF is \s in JavaScript, not whitespace in Python
  assert.deepEqual(pySplit(''), []);
  assert.deepEqual(pySplit('   '), []);
  assert.equal(pyRstrip('   '), '');
});

test('pyFixed rounds like Python format strings (ties to even), toFixed otherwise', () => {
  // Python 3.11: f'{x:.2f}' for each x
  const cases: Array<[number, number, string]> = [
    [0.125, 2, '0.12'], [0.375, 2, '0.38'], [0.625, 2, '0.62'], [-0.125, 2, '-0.12'], [2.5, 0, '2'], [3.5, 0, '4'],
    [0.1, 2, '0.10'], [1, 2, '1.00'], [48.530827, 2, '48.53'], [82.35294117647058, 1, '82.4'], [0.9428731438548749, 3, '0.943'],
  ];
  for (const [x, d, s] of cases) assert.equal(pyFixed(x, d), s, `${x} to ${d}`);
});

test('codePointLength counts a surrogate pair once, as Python\u2019s len()', () => {
  assert.equal(codePointLength('a😀b'), 3);
  assert.equal(codePointLength('👍🏽'), 2);
  assert.equal(codePointLength('\ud800x'), 2); // a lone surrogate is one code point
});
