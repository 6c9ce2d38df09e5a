import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StateCache } from '../../src/engine/state-cache.ts';
import type { RecurrentState, StateSpec } from '../../src/engine/state.ts';

const SPECS: StateSpec[] = [
  { inputName: 'state_in.0', outputName: 'state_out.0', dtype: 'float32', rowShape: [4], rowSize: 4 },
  { inputName: 'state_in.1', outputName: 'state_out.1', dtype: 'float16', rowShape: [2], rowSize: 2 },
];
const STATE_BYTES = 4 * 4 + 2 * 2;

function state(tag: number): RecurrentState {
  return { batch: 1, tensors: [Float32Array.from([tag, tag + 0.5, -tag, 0]), Uint16Array.from([tag, tag + 1])] };
}
const tagOf = (s: RecurrentState) => (s.tensors[0] as Float32Array)[0];

function cache(maxBytes = 1 << 20, dir?: string, modelKey = 'm1'): StateCache {
  return new StateCache(SPECS, { maxBytes, dir, modelKey, name: 'test-model' });
}

test('lookup returns the longest cached prefix, exactly, within the length limit', () => {
  const c = cache();
  const conv = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  c.insert(conv, 3, state(3));
  c.insert(conv, 7, state(7));
  c.insert([1, 2, 3, 99, 98], 5, state(5)); // branches after 3 tokens: splits the edge
  assert.equal(c.lookup(conv, 9)?.length, 7);
  assert.equal(tagOf(c.lookup(conv, 9)!.state), 7);
  assert.equal(c.lookup(conv, 6)?.length, 3, 'a longer entry past the limit is not used');
  assert.equal(c.lookup([1, 2, 3, 99, 98, 0], 5)?.length, 5);
  assert.equal(c.lookup([1, 2, 3, 99, 0], 4)?.length, 3, 'diverging inside an edge falls back to the entry above it');
  assert.equal(c.lookup([1, 2], 2), undefined, 'no entry that short');
  assert.equal(c.lookup([2, 1, 3], 3), undefined);
  // A one-token prefix is a prefix like any other: no minimum length.
  c.insert([42], 1, state(42));
  assert.equal(c.lookup([42, 1, 2], 2)?.length, 1);
  const s = c.stats();
  assert.equal(s.entries, 4);
  assert.equal(s.hits, 6);
  assert.equal(s.misses, 2);
  assert.equal(s.hitTokens, 7 + 7 + 3 + 5 + 3 + 1);
});

test('bounded by bytes: least recently used entries are evicted first; the trie shrinks with them', () => {
  const probe = cache();
  probe.insert([1, 2, 3, 4], 4, state(1));
  const perEntry = probe.bytes; // state + 4 key tokens + one node
  assert.ok(perEntry > STATE_BYTES + 16);

  const c = cache(perEntry * 3 + 10);
  c.insert([1, 2, 3, 4], 4, state(1));
  c.insert([5, 6, 7, 8], 4, state(2));
  c.insert([9, 10, 11, 12], 4, state(3));
  assert.equal(c.size, 3);
  assert.ok(c.lookup([1, 2, 3, 4, 0], 4), 'touch the oldest: it becomes the most recent');
  c.insert([13, 14, 15, 16], 4, state(4));
  assert.equal(c.size, 3);
  assert.ok(c.bytes <= perEntry * 3 + 10);
  assert.ok(!c.has([5, 6, 7, 8]), 'the least recently used entry went');
  assert.ok(c.has([1, 2, 3, 4]) && c.has([9, 10, 11, 12]) && c.has([13, 14, 15, 16]));
  assert.equal(c.stats().evictions, 1);

  // Evicting every entry leaves an empty trie (no bytes held by key tokens).
  const tiny = cache(perEntry + 10);
  tiny.insert([1, 2, 3, 4], 4, state(1));
  tiny.insert([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 11, state(2));
  assert.ok(tiny.has([1, 2, 3, 4]) && tiny.size === 1, 'an entry larger than the whole budget is not stored, and evicts nothing');
  tiny.insert([1, 2, 7, 8], 4, state(3)); // splits the first key's edge, then evicts the first entry
  assert.equal(tiny.size, 1);
  assert.ok(!tiny.has([1, 2, 3, 4]));
  assert.equal(tiny.bytes, perEntry);
});

test('persistence: save and load round-trip entries, states and recency; another model\'s file is ignored', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mmrec-cache-'));
  const a = cache(1 << 20, dir);
  const conv = Array.from({ length: 50 }, (_, i) => i + 1);
  a.insert(conv, 10, state(10));
  a.insert(conv, 30, state(30));
  a.insert([...conv.slice(0, 20), 7, 7, 7], 23, state(23));
  a.insert([500], 1, state(500));
  a.lookup(conv, 11); // the entry at 10 becomes the most recent
  assert.ok(a.save() > 0);
  assert.equal(a.save(), 0, 'nothing new to save');
  assert.deepEqual(readdirSync(dir), ['test-model.statecache']);

  const b = cache(1 << 20, dir);
  assert.deepEqual(b.load(), { entries: 4 });
  assert.equal(b.bytes, a.bytes);
  for (const [key, length, tag] of [[conv, 30, 30], [conv, 10, 10], [[...conv.slice(0, 20), 7, 7, 7], 23, 23], [[500], 1, 500]] as const) {
    const hit = b.lookup([...key, 0], length);
    assert.equal(hit?.length, length);
    assert.deepEqual(hit!.state, state(tag));
  }
  // Recency survived: with room for three entries, the least recently used one (at 30, touched first above) goes.
  const small = cache(a.bytes - 1, dir);
  small.load();
  assert.equal(small.size, 3);

  const other = cache(1 << 20, dir, 'another-model');
  assert.match(other.load().ignored ?? '', /another model/);
  assert.equal(other.size, 0);

  writeFileSync(join(dir, 'test-model.statecache'), 'garbage');
  const broken = cache(1 << 20, dir);
  assert.match(broken.load().ignored ?? '', /damaged|not a state cache/);
  assert.equal(broken.size, 0);
});

test('a saved file damaged anywhere, even with its size intact, is refused whole (checksum)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mmrec-cache-'));
  const a = cache(1 << 20, dir);
  a.insert([1, 2, 3], 3, state(3));
  a.insert([1, 2, 3, 4, 5], 5, state(5));
  assert.ok(a.save() > 0);
  const file = join(dir, 'test-model.statecache');
  const original = readFileSync(file);
  // Flip one bit in the last state's tensors (just before the 32-byte digest): a parser alone would accept it.
  for (const offset of [original.length - 32 - 3, original.length - 1, 40]) {
    const damaged = Buffer.from(original);
    damaged[offset] ^= 0x10;
    writeFileSync(file, damaged);
    const b = cache(1 << 20, dir);
    assert.match(b.load().ignored ?? '', /damaged \(checksum mismatch\)/, `byte ${offset}`);
    assert.equal(b.size, 0);
  }
});

test('states that are not finite are never stored, nor restored from a file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mmrec-cache-'));
  const a = cache(1 << 20, dir);
  const nan: RecurrentState = { batch: 1, tensors: [Float32Array.from([1, NaN, 0, 0]), Uint16Array.from([1, 2])] };
  const inf16: RecurrentState = { batch: 1, tensors: [Float32Array.from([1, 2, 3, 4]), Uint16Array.from([0x7c00, 0])] };
  a.insert([1], 1, nan);
  a.insert([2], 1, inf16);
  a.insert([3], 1, state(3));
  assert.equal(a.size, 1);
  assert.equal(a.lookup([1, 0], 1), undefined);
  // A file whose digest is right but which holds a NaN state (written by an older, unchecked save): that state is dropped.
  a.save();
  const file = join(dir, 'test-model.statecache');
  const bytes = readFileSync(file);
  const body = bytes.subarray(0, bytes.length - 32);
  const stateAt = body.length - STATE_BYTES; // the last (only) state: float32 tensor first
  body.writeFloatLE(Number.NaN, stateAt);
  writeFileSync(file, Buffer.concat([body, createHash('sha256').update(body).digest()]));
  const b = cache(1 << 20, dir);
  assert.deepEqual(b.load(), { entries: 0, dropped: 1 });
});

test('a failed save (read-only directory, full disk) throws, leaves no temporary file, and keeps the previous file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mmrec-cache-'));
  const a = cache(1 << 20, dir);
  a.insert([1, 2], 2, state(2));
  a.save();
  const file = join(dir, 'test-model.statecache');
  const before = readFileSync(file);
  a.insert([9, 9], 2, state(9));
  // /dev/full accepts the open and fails every write with ENOSPC: a full disk. The cache writes through a temporary
  // file named after its target, so a directory where that name is a link to /dev/full reproduces it.
  const tmp = `${file}.${process.pid}.tmp`;
  symlinkSync('/dev/full', tmp);
  assert.throws(() => a.save(), /cannot save the state cache.*ENOSPC/);
  assert.equal(existsSync(tmp), false, 'the temporary file is removed');
  assert.deepEqual(readFileSync(file), before, 'the previous file is kept');
  // And a later save, once the disk has room, writes the new state.
  assert.ok(a.save() > 0);
  const b = cache(1 << 20, dir);
  assert.equal(b.load().entries, 2);
  // A temporary file left by a save that was killed midway is removed at load.
  writeFileSync(`${file}.12345.tmp`, 'partial');
  cache(1 << 20, dir).load();
  assert.deepEqual(readdirSync(dir), ['test-model.statecache']);
});
