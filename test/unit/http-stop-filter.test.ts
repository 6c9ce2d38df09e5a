import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StopFilter } from '../../src/serving/stop.ts';

/** Feed pieces; return what was sent at each step and at the end. */
function run(stops: string[], newline: boolean, pieces: string[], endOfText = true) {
  const f = new StopFilter(stops, newline);
  const sent: string[] = [];
  let stopped = false;
  for (const p of pieces) {
    const r = f.push(p);
    sent.push(r.text);
    if (r.stopped) {
      stopped = true;
      break;
    }
  }
  if (!stopped) sent.push(f.finish(endOfText));
  return { sent, text: sent.join(''), stopped };
}

test('a stop string spanning pieces is found, and not part of the output', () => {
  const r = run(['STOP'], false, ['Hello S', 'T', 'OP and more']);
  assert.equal(r.text, 'Hello ');
  assert.equal(r.stopped, true);
});

test('text that could start a stop string is held back until it cannot', () => {
  const r = run(['STOP'], false, ['Hello S', 'T', 'ay']);
  assert.deepEqual(r.sent, ['Hello ', '', 'STay', '']);
  assert.equal(r.text, 'Hello STay');
});

test('earliest of several stop strings wins', () => {
  assert.equal(run(['b', 'xyz'], false, ['axyzb']).text, 'a');
});

test('the format\'s newline before end of text is dropped; other newlines are kept', () => {
  assert.equal(run([], true, ['Hi\n', 'there\n']).text, 'Hi\nthere');
  assert.deepEqual(run([], true, ['Hi\n', 'there\n']).sent, ['Hi', '\nthere', '']);
  // Only one newline belongs to the format.
  assert.equal(run([], true, ['a\n\n']).text, 'a\n');
  // Cut by max_tokens: the newline is content.
  assert.equal(run([], true, ['a\n'], false).text, 'a\n');
});

test('held partial stop is flushed when the generation ends', () => {
  assert.equal(run(['</s>'], true, ['done </'], true).text, 'done </');
});

test('stop string that is a newline works with the held trailing newline', () => {
  assert.equal(run(['\n'], true, ['line one\n', 'line two']).text, 'line one');
});
