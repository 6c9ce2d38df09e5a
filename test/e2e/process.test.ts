/**
 * The server as a process: --help, invalid configuration, `npm start` with
 * flags, and graceful shutdown on SIGTERM (in-flight requests finish; past the
 * deadline they are aborted; the exit code is 0 either way), and a restart that
 * keeps warm conversations with --state-cache-dir.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { SETTINGS, envName } from '../../src/config.ts';
import { MODEL, MODEL_DIR, ROOT, parseSse, run, startServer } from './helpers.ts';

const server = ['--import', 'tsx', 'src/server.ts'];
/** A data directory of the test's own (the server creates ./data otherwise). */
const dataDir = () => ['--data-dir', mkdtempSync(`${tmpdir()}/mmrec-data-`)];

test('--help lists every option with its environment variable', async () => {
  const r = await run(process.execPath, [...server, '--help']);
  assert.equal(r.code, 0);
  for (const s of SETTINGS) {
    assert.ok(r.stdout.includes(`--${s.flag}`), `--${s.flag}`);
    assert.ok(r.stdout.includes(envName(s.flag)), envName(s.flag));
  }
});

test('invalid configuration stops start-up with one clear line', async () => {
  const cases: Array<[string[], Record<string, string>, RegExp]> = [
    [['--port', 'eighty'], {}, /--port must be an integer/],
    [['--device', 'tpu'], {}, /--device must be one of auto, cuda, webgpu, cpu/],
    [[], { MMREC_MAX_QUEUE: '-3' }, /MMREC_MAX_QUEUE must be between/],
    [['--models-dir', mkdtempSync(`${tmpdir()}/mmrec-empty-`)], {}, /no model directory/],
    [['--model', `${ROOT}src`], {}, /is not a model directory/],
    [['--frobnicate'], {}, /unknown option --frobnicate/],
    [['--model', MODEL_DIR, '--eval-embedding-model', 'no-such-model'], {}, /--eval-embedding-model no-such-model: no configured model has that name \(served: mm-rec-tiny\)/],
    // Keys asked for but none given must not mean "no authentication".
    [['--api-key', ' , '], {}, /--api-key was given but holds no value/],
    [[], { MMREC_API_KEY: '   ' }, /MMREC_API_KEY is set but holds no value/],
  ];
  for (const [args, env, re] of cases) {
    const r = await run(process.execPath, [...server, ...args], { env });
    assert.equal(r.code, 2, `${args.join(' ')}: exit code (${r.stderr})`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `one line: ${r.stderr}`);
    assert.match(lines[0], re);
    assert.equal(r.stdout, '');
  }
});

/** No Vulkan driver, whatever this host has installed: a Vulkan loader, if there is one, is pointed at a driver manifest that does not exist. */
const NO_VULKAN_DRIVER = { VK_ICD_FILENAMES: '/nonexistent/mmrec-no-driver.json', VK_DRIVER_FILES: '/nonexistent/mmrec-no-driver.json' };

test('--device webgpu without a WebGPU adapter stops start-up with one clear line and exit code 1', async () => {
  const r = await run(process.execPath, [...server, '--model', MODEL_DIR, '--port', '0', '--device', 'webgpu', ...dataDir()], { env: NO_VULKAN_DRIVER });
  assert.equal(r.code, 1, r.stderr);
  // Where a Vulkan loader is installed, Dawn (inside onnxruntime) prints its own "Warning: …" and
  // "    at …" lines (and a blank one) about it to stderr; every other line there is the server's.
  const ours = r.stderr.split('\n').filter((l) => l.trim() !== '' && !/^Warning: |^\s+at /.test(l));
  assert.equal(ours.length, 1, r.stderr);
  assert.match(ours[0], /^mmrec-server: cannot load models: execution provider webgpu was requested but (no Vulkan loader|no WebGPU adapter) \(/);
});

test('--device auto without a GPU runs on the CPU and logs why CUDA and WebGPU were passed over', async () => {
  const s = await startServer(['--device', 'auto'], NO_VULKAN_DRIVER);
  try {
    const loaded = s.logs.find((l) => l.model === MODEL && typeof l.execution_provider === 'string');
    assert.equal(loaded?.execution_provider, 'cpu');
    assert.match(String(loaded?.msg), /^model mm-rec-tiny runs on cpu \(cuda: CUDA provider .+; webgpu: (no Vulkan loader|no WebGPU adapter) .+; using cpu\)$/);
  } finally {
    await s.stop();
  }
});

/** `npm start` with flags, detached (its own process group); resolves once the server is ready. */
async function npmStart(args: string[]) {
  const proc = spawn('npm', ['start', '--silent', '--', ...args, '--model', MODEL_DIR, '--intra-op-threads', '1', ...dataDir()], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const exited = new Promise<{ code: number | null; signal: string | null }>((r) => proc.once('exit', (code, signal) => r({ code, signal })));
  const lines: Array<Record<string, unknown>> = [];
  // The pipe ends when every process writing to it (npm and the server) has exited.
  const ended = new Promise<void>((r) => proc.stdout!.once('end', () => r()));
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    let port = 0;
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      for (const line of buf.split('\n').slice(0, -1)) {
        const rec = JSON.parse(line);
        lines.push(rec);
        if (rec.port !== undefined && typeof rec.url === 'string') port = rec.port;
        if (rec.msg === 'ready') resolve(port);
      }
      buf = buf.slice(buf.lastIndexOf('\n') + 1);
    });
    void exited.then((c) => reject(new Error(`npm start exited ${JSON.stringify(c)}`)));
  });
  return { proc, exited, ended, lines, port };
}

test('npm start -- --port … --host 0.0.0.0 serves the model under /v1', async () => {
  const { proc, exited, ended, lines, port } = await npmStart(['--port', '0', '--host', '0.0.0.0']);
  try {
    assert.ok(lines.some((l) => l.url === `http://0.0.0.0:${port}`), 'listens on 0.0.0.0');
    const models = await (await fetch(`http://127.0.0.1:${port}/v1/models`)).json();
    assert.deepEqual(models.data.map((m: { id: string }) => m.id), [MODEL]);
  } finally {
    // The whole process group (npm and the server) gets SIGTERM, as from a terminal or `kill -- -pgid`.
    process.kill(-proc.pid!, 'SIGTERM');
  }
  const { code, signal } = await exited;
  assert.ok(code === 0 || signal === 'SIGTERM', `npm exit ${code} ${signal}`);
  await ended;
  assert.ok(lines.some((l) => l.msg === 'stopped'), 'the server shut down cleanly');
});

test('npm start: SIGTERM to npm alone (a process manager signalling its child) stops the server cleanly, nothing is orphaned', async () => {
  const { proc, exited, ended, lines } = await npmStart(['--port', '0']);
  proc.kill('SIGTERM');
  const { code } = await exited;
  assert.equal(code, 0, 'npm exits with the server\'s code');
  const gone = await Promise.race([ended.then(() => 'ended'), new Promise((r) => setTimeout(() => r('still running'), 15_000))]);
  if (gone !== 'ended') process.kill(-proc.pid!, 'SIGKILL');
  assert.equal(gone, 'ended', 'every process of npm start has exited');
  assert.ok(lines.some((l) => l.msg === 'stopped'), 'the server shut down cleanly');
});

async function streamUntilFirstChunk(url: string, maxTokens: number) {
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Talk.' }], max_tokens: maxTokens, ignore_eos: true, stream: true }),
  });
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let body = decoder.decode((await reader.read()).value, { stream: true });
  const rest = (async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return body;
      body += decoder.decode(value, { stream: true });
    }
  })();
  return { rest };
}

test('SIGTERM: in-flight requests finish, new connections are refused, exit 0', async () => {
  const s = await startServer(['--shutdown-timeout', '60']);
  const { rest: body } = await streamUntilFirstChunk(s.url, 300);
  s.proc.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 200));
  await assert.rejects(fetch(`${s.url}/health`), 'the listening socket is closed');
  const events = parseSse(await body) as Array<{ choices: Array<{ finish_reason: string | null }> }>;
  assert.equal(events[events.length - 1].choices[0].finish_reason, 'length', 'the in-flight stream ran to its end');
  assert.equal(await s.exited, 0);
  assert.ok(s.logs.some((l) => l.msg === 'stopped'));
});

test('SIGTERM past the deadline: generations are aborted, the stream ends with an error event, exit 0', async () => {
  const s = await startServer(['--shutdown-timeout', '1']);
  const started = performance.now();
  const { rest: body } = await streamUntilFirstChunk(s.url, 2000);
  s.proc.kill('SIGTERM');
  const events = parseSse(await body) as Array<{ error?: { code: string } }>;
  assert.equal(events[events.length - 1].error?.code, 'server_shutting_down');
  assert.equal(await s.exited, 0);
  assert.ok(performance.now() - started < 10_000, 'stopped soon after the deadline');
});

test('a signal delivered twice at once (terminal and npm) is one; a second one later exits at once with 1', async () => {
  const s = await startServer(['--shutdown-timeout', '60']);
  const { rest: body } = await streamUntilFirstChunk(s.url, 400);
  s.proc.kill('SIGINT');
  s.proc.kill('SIGINT');
  const events = parseSse(await body) as Array<{ choices: Array<{ finish_reason: string | null }> }>;
  assert.equal(events[events.length - 1].choices[0].finish_reason, 'length', 'the duplicate did not cut the graceful shutdown short');
  assert.equal(await s.exited, 0);

  const t = await startServer(['--shutdown-timeout', '60']);
  const { rest } = await streamUntilFirstChunk(t.url, 2000);
  rest.catch(() => {});
  t.proc.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 400));
  t.proc.kill('SIGTERM');
  assert.equal(await t.exited, 1);
  assert.ok(t.logs.some((l) => l.msg === 'second signal: exiting now'));
});

test('a client still sending its body does not hold up shutdown until the deadline', async () => {
  const s = await startServer(['--shutdown-timeout', '60', '--request-timeout', '120']);
  const { port } = new URL(s.url);
  const socket = connect(Number(port), '127.0.0.1');
  socket.on('error', () => {});
  await new Promise((r) => socket.once('connect', r));
  socket.write('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"model":');
  await new Promise((r) => setTimeout(r, 300));
  const started = performance.now();
  s.proc.kill('SIGTERM');
  assert.equal(await s.exited, 0);
  assert.ok(performance.now() - started < 15_000, `stopped in ${Math.round(performance.now() - started)} ms, well before the 60 s deadline`);
  assert.ok(s.logs.some((l) => l.msg === 'shutting down: dropped connections still sending a request body'));
  socket.destroy();
});

test('a config.json whose special tokens collide is refused at start-up with the reason', async () => {
  const dir = mkdtempSync(`${tmpdir()}/mmrec-badmodel-`);
  const modelDir = `${dir}/collide`;
  mkdirSync(modelDir);
  symlinkSync(`${MODEL_DIR}/model.onnx`, `${modelDir}/model.onnx`);
  const cfg = JSON.parse(readFileSync(`${MODEL_DIR}/config.json`, 'utf8'));
  cfg.tokenizer.special_tokens['<|user|>'] = cfg.tokenizer.special_tokens['<|endoftext|>'];
  writeFileSync(`${modelDir}/config.json`, JSON.stringify(cfg));
  const r = await run(process.execPath, [...server, '--port', '0', '--model', modelDir, '--intra-op-threads', '1', ...dataDir()]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot load models: .*config\.json: special tokens <\|endoftext\|> and <\|user\|> have the same id 100257/);
});

test('--state-cache-dir: a restarted server continues a conversation from the saved state (cached_tokens), with the same greedy reply', async () => {
  const dir = mkdtempSync(`${tmpdir()}/mmrec-statecache-`);
  const chat = async (url: string, messages: Array<{ role: string; content: string }>) => {
    const r = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, messages, temperature: 0, max_tokens: 16 }),
    });
    assert.equal(r.status, 200);
    return (await r.json()) as { choices: Array<{ message: { content: string } }>; usage: { prompt_tokens: number; prompt_tokens_details: { cached_tokens: number } } };
  };
  const turn1 = [{ role: 'user', content: 'Hi, my name is Alice.' }];
  const first = await startServer(['--state-cache-dir', dir]);
  const reply1 = await chat(first.url, turn1);
  assert.equal(reply1.usage.prompt_tokens_details.cached_tokens, 0);
  assert.equal(await first.stop(), 0); // saves the cache at shutdown

  const turn2 = [...turn1, { role: 'assistant', content: reply1.choices[0].message.content }, { role: 'user', content: 'What is my name?' }];
  const second = await startServer(['--state-cache-dir', dir]);
  try {
    assert.ok(second.logs.some((l) => typeof l.entries === 'number' && l.entries > 0), 'the saved states were loaded');
    const warm = await chat(second.url, turn2);
    assert.ok(warm.usage.prompt_tokens_details.cached_tokens >= reply1.usage.prompt_tokens, JSON.stringify(warm.usage));
    const cold = await startServer(['--state-cache-bytes', '0']);
    try {
      const reference = await chat(cold.url, turn2);
      assert.equal(reference.usage.prompt_tokens_details.cached_tokens, 0);
      assert.equal(warm.choices[0].message.content, reference.choices[0].message.content);
      assert.match(warm.choices[0].message.content, /Alice/, 'mm-rec-tiny recalls the name across the restart');
    } finally {
      await cold.stop();
    }
  } finally {
    await second.stop();
  }
});
