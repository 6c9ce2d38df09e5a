/**
 * Server configuration: command-line flags, environment variables and defaults,
 * from one table. `--help`, parsing and validation all read the same table, so a
 * setting cannot exist in one place and be missing in another.
 *
 * Precedence: flag > environment variable > default. Flag names follow vLLM and
 * llama.cpp (`--host`, `--port`, `--api-key`, `--model`); environment variables are
 * the flag in upper case with an `MMREC_` prefix (`--max-queue` → `MMREC_MAX_QUEUE`).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';

export type Device = 'auto' | 'cuda' | 'webgpu' | 'cpu';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface ServerConfig {
  host: string;
  port: number;
  /** Directory scanned for model directories when `models` is empty. */
  modelsDir: string;
  /** Explicit model directories (each served under its directory name). */
  models: string[];
  /** Aliases: `NAME` (one model served) or `MODEL=NAME`; see resolveServedNames. */
  servedModelNames: string[];
  /** CORS: `localhost`, `*`, `none` or exact origins (http/cors.ts). */
  allowedOrigins: string[];
  /** Accepted bearer keys; empty = no authentication. */
  apiKeys: string[];
  device: Device;
  /** 0 = onnxruntime's default. */
  intraOpThreads: number;
  interOpThreads: number;
  /** Prompt tokens fed to the model per step; 0 = the engine's default. */
  prefillChunkSize: number;
  /** Generations in one batched decode step; more wait inside the engine. */
  maxBatchSize: number;
  /** 1 or 2 alternating decode lanes. */
  decodeLanes: number;
  /** Conversation state cache budget in bytes per model; 0 = off. */
  stateCacheBytes: number;
  /** Directory the state cache is saved to (at shutdown) and loaded from (at start); '' = memory only. */
  stateCacheDir: string;
  /** Largest request body in bytes. */
  maxBodySize: number;
  /** Largest `max_tokens` a request may ask for, and the default when it asks for none. */
  maxTokens: number;
  /** Largest `n` (choices per request). */
  maxN: number;
  /** Requests generating at once; more wait in the queue. */
  maxConcurrency: number;
  /** Requests waiting for a slot; more are refused with 429. */
  maxQueue: number;
  /** Seconds in-flight requests get to finish after SIGTERM before they are aborted. */
  shutdownTimeout: number;
  /** Seconds a client has to send a request's headers and body; 0 = no limit. */
  requestTimeout: number;
  /** Deepest nesting of arrays and objects a JSON body may have. */
  maxJsonDepth: number;
  /** Tokens one request may generate over all its choices (n × max_tokens). */
  maxRequestTokens: number;
  /** Log-probability alternatives one request may ask for (n × max_tokens × top_logprobs). */
  maxRequestLogprobs: number;
  /** Tools and structured outputs: see serving/constraints.ts GrammarLimits. */
  maxTools: number;
  maxSchemaDepth: number;
  maxGrammarBytes: number;
  maxGrammarBranches: number;
  maxPatternStates: number;
  grammarCacheBytes: number;
  constraintBytes: number;
  /** /v1/embeddings: inputs per request, tokens per input, tokens per request. */
  maxEmbeddingInputs: number;
  maxEmbeddingInputTokens: number;
  maxEmbeddingTokens: number;
  logLevel: LogLevel;
  /** Everything the server keeps: files, jobs, fine-tuned models, the metadata database. */
  dataDir: string;
  /** Largest file upload in bytes. */
  maxFileBytes: number;
  /** The Python interpreter that runs the model kit; '' = the first on PATH that has PyTorch. */
  python: string;
  /** The model kit's directory (kit/ of this project by default). */
  kitDir: string;
  /** Fine-tuning jobs training at once. */
  maxTrainingJobs: number;
  /** Torch threads of a training job. */
  trainingThreads: number;
  /** Niceness added to a training process. */
  trainingNiceness: number;
  /** OpenAI's organization: owner of fine-tuned models and part of their names. */
  organization: string;
  /** Stored (fine-tuned) models loaded at once; the least recently used is unloaded past it. */
  maxLoadedModels: number;
  /** Request lines one batch's input file may hold. */
  batchMaxLines: number;
  /** Largest input file a batch accepts, in bytes. */
  batchMaxInputBytes: number;
  /** Batch lines being served at once, over all batches. */
  batchMaxInFlight: number;
  /** Rows of the batched decode step background work (batch lines) may take; 0 = three quarters of maxBatchSize. */
  maxBackgroundRows: number;
  /** Eval runs graded at once; the rest wait in order. */
  maxEvalRuns: number;
  /** Items of one eval run in flight at once (their generations share the engine's batch). */
  evalConcurrency: number;
  /** Items one eval run may have. */
  evalMaxItems: number;
  /** Bytes of one eval item's JSON; also the characters a rendered template may have. */
  evalMaxItemBytes: number;
  /** Testing criteria one eval may have. */
  evalMaxCriteria: number;
  /** Bytes of an eval's item_schema. */
  evalMaxSchemaBytes: number;
  /** The served model whose embeddings text_similarity's cosine compares; '' = the first configured model. */
  evalEmbeddingModel: string;
  /** The Responses and Conversations APIs: see docs/responses.md. */
  maxInputItems: number;
  maxConversationItems: number;
  responseRetentionBytes: number;
  responseRetentionSeconds: number;
  maxBackgroundResponses: number;
}

export class ConfigError extends Error {}

type Kind = 'string' | 'int' | 'list' | 'enum';

interface Setting {
  key: keyof ServerConfig;
  flag: string;
  kind: Kind;
  /** Shown in --help; also the value used when neither flag nor environment sets it. */
  default: string;
  help: string;
  values?: readonly string[];
  min?: number;
  max?: number;
  /** Hide the value from logs (API keys). */
  secret?: boolean;
  /** A string setting that may be empty (= unset). */
  optional?: boolean;
}

const DEVICES = ['auto', 'cuda', 'webgpu', 'cpu'] as const;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const SETTINGS: readonly Setting[] = [
  { key: 'host', flag: 'host', kind: 'string', default: '127.0.0.1', help: 'address to listen on (0.0.0.0 for every interface)' },
  { key: 'port', flag: 'port', kind: 'int', default: '8000', min: 0, max: 65535, help: 'TCP port (0 = any free port)' },
  { key: 'modelsDir', flag: 'models-dir', kind: 'string', default: 'models', help: 'serve every model directory under this directory (when no --model is given)' },
  { key: 'models', flag: 'model', kind: 'list', default: '', help: 'a model directory to serve; repeat the flag or separate with commas; its id is the directory name' },
  { key: 'servedModelNames', flag: 'served-model-name', kind: 'list', default: '', help: 'more names for a served model, listed by GET /v1/models and echoed in responses: NAME (when one model is served) or MODEL=NAME; repeat or separate with commas' },
  { key: 'apiKeys', flag: 'api-key', kind: 'list', default: '', secret: true, help: 'require "Authorization: Bearer <key>" on every route but /health and /metrics; repeat or separate with commas for several keys' },
  { key: 'allowedOrigins', flag: 'allowed-origins', kind: 'list', default: 'localhost', help: 'origins whose web pages may call the server from a browser (CORS): localhost (pages from this machine, any port), exact origins like https://chat.example.com, * (any), or none; repeat or separate with commas' },
  { key: 'device', flag: 'device', kind: 'enum', values: DEVICES, default: 'auto', help: 'execution provider: auto (the first of CUDA, WebGPU, CPU that starts), cuda or webgpu (fail if unavailable), cpu' },
  { key: 'intraOpThreads', flag: 'intra-op-threads', kind: 'int', default: '0', min: 0, max: 1024, help: 'onnxruntime threads inside one operator (0 = onnxruntime default)' },
  { key: 'interOpThreads', flag: 'inter-op-threads', kind: 'int', default: '0', min: 0, max: 1024, help: 'onnxruntime threads across operators (0 = onnxruntime default)' },
  { key: 'prefillChunkSize', flag: 'prefill-chunk-size', kind: 'int', default: '0', min: 0, max: 1 << 20, help: 'prompt tokens per prefill call, interleaved with decode steps: smaller keeps running streams smoother while a long prompt arrives (0 = engine default, 256)' },
  { key: 'maxBatchSize', flag: 'max-batch-size', kind: 'int', default: '64', min: 1, max: 4096, help: 'generations decoded together in one batched model call per step; more wait inside the engine' },
  { key: 'decodeLanes', flag: 'decode-lanes', kind: 'int', default: '1', min: 1, max: 2, help: '1: all decoding generations step in one batched call; 2: two alternating half-batches, so the model runs one while the other is sampled and streamed' },
  { key: 'stateCacheBytes', flag: 'state-cache-bytes', kind: 'int', default: String(256 * 1024 * 1024), min: 0, max: 2 ** 40, help: 'conversation state cache budget in bytes per model (least recently used states are evicted; 0 = off)' },
  { key: 'stateCacheDir', flag: 'state-cache-dir', kind: 'string', optional: true, default: '', help: 'save the state cache here at shutdown and load it at start, so a restart keeps warm conversations (empty = memory only)' },
  { key: 'maxBodySize', flag: 'max-body-size', kind: 'int', default: String(1 << 20), min: 1024, max: 1 << 30, help: 'largest request body in bytes (larger: 413)' },
  { key: 'maxTokens', flag: 'max-tokens', kind: 'int', default: '2048', min: 1, max: 1 << 24, help: 'largest max_tokens a request may ask for; also the default (capped by the context left)' },
  { key: 'maxN', flag: 'max-n', kind: 'int', default: '16', min: 1, max: 128, help: 'largest n (choices per request)' },
  { key: 'maxConcurrency', flag: 'max-concurrency', kind: 'int', default: '64', min: 1, max: 100000, help: 'requests generating at once (they share the batched decode steps); more wait in the queue' },
  { key: 'maxQueue', flag: 'max-queue', kind: 'int', default: '64', min: 0, max: 1000000, help: 'requests waiting for a slot; when full, new requests get 429' },
  { key: 'requestTimeout', flag: 'request-timeout', kind: 'int', default: '30', min: 0, max: 86400, help: 'seconds a client has to send a whole request (headers and body); a slower one gets 408 and its connection is closed (0 = no limit)' },
  { key: 'maxJsonDepth', flag: 'max-json-depth', kind: 'int', default: '64', min: 1, max: 10000, help: 'deepest nesting of arrays and objects in a JSON body, tool-call arguments included (deeper: 400)' },
  { key: 'maxRequestTokens', flag: 'max-request-tokens', kind: 'int', default: '65536', min: 1, max: 1 << 30, help: 'tokens one request may generate over all its choices, n × max_tokens (more: 400; a default max_tokens is lowered to fit)' },
  { key: 'maxRequestLogprobs', flag: 'max-request-logprobs', kind: 'int', default: '65536', min: 1, max: 1 << 30, help: 'log-probability alternatives one request may ask for, n × max_tokens × top_logprobs (more: 400), which bounds the size of its response' },
  { key: 'shutdownTimeout', flag: 'shutdown-timeout', kind: 'int', default: '30', min: 0, max: 86400, help: 'seconds in-flight requests get to finish after SIGTERM/SIGINT before they are aborted' },
  { key: 'maxTools', flag: 'max-tools', kind: 'int', default: '128', min: 1, max: 100000, help: 'tools per request (OpenAI: 128); more: 400' },
  { key: 'maxSchemaDepth', flag: 'max-schema-depth', kind: 'int', default: '64', min: 2, max: 1000, help: 'nesting (objects and arrays) of a tool\'s parameters or a response_format schema; deeper: 400' },
  { key: 'maxGrammarBytes', flag: 'max-grammar-bytes', kind: 'int', default: String(8 * 2 ** 20), min: 1 << 16, max: 2 ** 34, help: 'estimated bytes of the grammar compiled for one request\'s tools and response_format; larger: 400 when strict, the schema loosened otherwise' },
  { key: 'maxGrammarBranches', flag: 'max-grammar-branches', kind: 'int', default: '256', min: 2, max: 65536, help: 'alternatives one position of that grammar may open at once (anyOf branches, optional properties); more: 400 when strict, the schema loosened otherwise. Bounds the cost of each token mask' },
  { key: 'maxPatternStates', flag: 'max-pattern-states', kind: 'int', default: '8192', min: 64, max: 1 << 20, help: 'states of one string pattern/format/length or number automaton; larger: 400 when strict, the schema loosened otherwise' },
  { key: 'grammarCacheBytes', flag: 'grammar-cache-bytes', kind: 'int', default: String(256 * 2 ** 20), min: 0, max: 2 ** 40, help: 'estimated bytes of compiled tool/response_format constraints (grammar, masks) kept for later requests of the same shape, least recently used out' },
  { key: 'constraintBytes', flag: 'constraint-bytes', kind: 'int', default: String(32 * 2 ** 20), min: 1 << 20, max: 2 ** 36, help: 'estimated bytes of masks and automaton frames one constraint keeps; when full it starts over' },
  { key: 'maxEmbeddingInputs', flag: 'max-embedding-inputs', kind: 'int', default: '2048', min: 1, max: 1 << 20, help: 'inputs one /v1/embeddings request may hold (OpenAI: 2048); more: 400' },
  { key: 'maxEmbeddingInputTokens', flag: 'max-embedding-input-tokens', kind: 'int', default: '8192', min: 1, max: 1 << 24, help: 'tokens of one embedding input (OpenAI: 8192); longer: 400' },
  { key: 'maxEmbeddingTokens', flag: 'max-embedding-tokens', kind: 'int', default: '300000', min: 1, max: 1 << 30, help: 'tokens of all inputs of one /v1/embeddings request together (OpenAI: 300,000); more: 400' },
  { key: 'logLevel', flag: 'log-level', kind: 'enum', values: LOG_LEVELS, default: 'info', help: 'pino log level' },
  { key: 'dataDir', flag: 'data-dir', kind: 'string', default: 'data', help: 'directory for everything the server keeps (files, fine-tuning jobs, fine-tuned models, its database); created at start' },
  { key: 'maxFileBytes', flag: 'max-file-bytes', kind: 'int', default: String(512 * 1024 * 1024), min: 1, max: 2 ** 40, help: 'largest file upload in bytes (larger: 413, checked while the file streams in)' },
  { key: 'python', flag: 'python', kind: 'string', optional: true, default: '', help: 'Python interpreter for fine-tuning (needs PyTorch, onnx, numpy; empty: the first python3 or python on PATH that has them)' },
  { key: 'kitDir', flag: 'kit-dir', kind: 'string', optional: true, default: '', help: "the model kit's directory (empty: kit/ of this project)" },
  { key: 'maxTrainingJobs', flag: 'max-training-jobs', kind: 'int', default: '1', min: 0, max: 64, help: 'fine-tuning jobs training at once; the rest wait in order (0: jobs are accepted but none trains)' },
  { key: 'trainingThreads', flag: 'training-threads', kind: 'int', default: '1', min: 1, max: 1024, help: 'PyTorch threads of a training job (inference keeps the other cores)' },
  { key: 'trainingNiceness', flag: 'training-niceness', kind: 'int', default: '10', min: 0, max: 19, help: 'added to a training process\'s niceness, so inference is scheduled first' },
  { key: 'organization', flag: 'organization', kind: 'string', default: 'mmrec', help: 'organization id of fine-tuning jobs, owner of fine-tuned models and part of their names (ft:<base>:<organization>:<suffix>:<job>)' },
  { key: 'maxEvalRuns', flag: 'max-eval-runs', kind: 'int', default: '1', min: 0, max: 64, help: 'eval runs graded at once; the rest wait in order (0: runs are accepted but none runs)' },
  { key: 'evalConcurrency', flag: 'eval-concurrency', kind: 'int', default: '48', min: 1, max: 4096, help: "items of one eval run in flight at once, as background work (the engine gives background generations 3/4 of --max-batch-size rows: 48 by default)" },
  { key: 'evalMaxItems', flag: 'eval-max-items', kind: 'int', default: '10000', min: 1, max: 10000000, help: 'items one eval run may have (more: 400, or the run fails when a file holds more)' },
  { key: 'evalMaxItemBytes', flag: 'eval-max-item-bytes', kind: 'int', default: String(256 * 1024), min: 1024, max: 1 << 30, help: "bytes of one eval item's JSON (a longer one is an errored result); also the characters a rendered eval template may have" },
  { key: 'evalMaxCriteria', flag: 'eval-max-criteria', kind: 'int', default: '16', min: 1, max: 1024, help: 'testing criteria one eval may have (each may call a model once per item)' },
  { key: 'evalMaxSchemaBytes', flag: 'eval-max-schema-bytes', kind: 'int', default: String(64 * 1024), min: 64, max: 1 << 26, help: "bytes of an eval's item_schema as JSON (its patterns run as automata of at most --max-pattern-states states)" },
  { key: 'evalEmbeddingModel', flag: 'eval-embedding-model', kind: 'string', optional: true, default: '', help: "the configured model (its id or a --served-model-name) whose embeddings, as POST /v1/embeddings gives them, text_similarity's cosine compares (empty: the first configured model)" },
  { key: 'maxLoadedModels', flag: 'max-loaded-models', kind: 'int', default: '4', min: 1, max: 1024, help: 'fine-tuned models loaded at once (each is loaded at its first request; the least recently used is unloaded)' },
  { key: 'batchMaxLines', flag: 'batch-max-lines', kind: 'int', default: '50000', min: 1, max: 10_000_000, help: 'request lines one batch input file may hold (OpenAI: 50000); more: the batch fails validation' },
  { key: 'batchMaxInputBytes', flag: 'batch-max-input-bytes', kind: 'int', default: String(200 * 1024 * 1024), min: 1, max: 2 ** 40, help: 'largest batch input file in bytes (OpenAI: 200 MB); larger: POST /v1/batches answers 400' },
  { key: 'batchMaxInFlight', flag: 'batch-max-in-flight', kind: 'int', default: '64', min: 1, max: 100000, help: 'batch lines being served at once over all batches (the engine gives them only the rows interactive requests leave)' },
  { key: 'maxBackgroundRows', flag: 'max-background-rows', kind: 'int', default: '0', min: 0, max: 4096, help: 'rows of the batched decode step that batch lines may take (the rest stay free for interactive requests); fewer: interactive requests slowed less by a running batch, batches slower (0 = three quarters of --max-batch-size)' },
  { key: 'maxInputItems', flag: 'max-input-items', kind: 'int', default: '2048', min: 1, max: 1 << 20, help: 'items one /v1/responses request\'s input may have (more: 400)' },
  { key: 'maxConversationItems', flag: 'max-conversation-items', kind: 'int', default: '10000', min: 1, max: 1 << 24, help: 'items a conversation may hold, and a chain of previous_response_id responses when it must be prefilled whole (more: 400)' },
  { key: 'responseRetentionBytes', flag: 'response-retention-bytes', kind: 'int', default: String(2 ** 30), min: 0, max: 2 ** 50, help: 'bytes all stored responses (items and end states) may take; the oldest are evicted past it' },
  { key: 'responseRetentionSeconds', flag: 'response-retention-seconds', kind: 'int', default: String(30 * 24 * 3600), min: 0, max: 2 ** 40, help: 'seconds a stored response is kept (0 = no age limit); previous_response_id to an evicted one is a 404' },
  { key: 'maxBackgroundResponses', flag: 'max-background-responses', kind: 'int', default: '16', min: 0, max: 100000, help: 'background responses queued or generating at once (more: 429); they generate in the batch rows interactive requests leave free' },
];

export function envName(flag: string): string {
  return 'MMREC_' + flag.toUpperCase().replace(/-/g, '_');
}

export function helpText(): string {
  const lines = [
    'Usage: npm start -- [options]',
    '',
    'OpenAI-compatible server for MM-Rec models. Every option can also be set by the',
    'environment variable shown; a flag wins over the environment.',
    '',
  ];
  const rows = SETTINGS.map((s) => {
    const arg = s.kind === 'enum' ? `<${s.values!.join('|')}>` : s.kind === 'int' ? '<n>' : '<value>';
    return { left: `  --${s.flag} ${arg}`, env: envName(s.flag), help: s.help, def: s.default };
  });
  const width = Math.max(...rows.map((r) => r.left.length)) + 2;
  for (const r of rows) {
    lines.push(r.left.padEnd(width) + r.help);
    lines.push(' '.repeat(width) + `env ${r.env}` + (r.def !== '' ? `, default ${r.def}` : ''));
  }
  lines.push('  -h, --help'.padEnd(width) + 'print this help and exit');
  return lines.join('\n');
}

export type ParseResult = { help: true } | { help: false; config: ServerConfig };

function convert(s: Setting, raw: string, source: string): unknown {
  const name = source;
  switch (s.kind) {
    case 'string':
      if (raw.trim() === '' && !s.optional) throw new ConfigError(`${name} must not be empty`);
      return raw;
    case 'list':
      return raw.split(',').map((v) => v.trim()).filter((v) => v !== '');
    case 'enum':
      if (!s.values!.includes(raw)) throw new ConfigError(`${name} must be one of ${s.values!.join(', ')} (got "${raw}")`);
      return raw;
    case 'int': {
      if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(`${name} must be an integer (got "${raw}")`);
      const n = Number(raw);
      if ((s.min !== undefined && n < s.min) || (s.max !== undefined && n > s.max)) {
        throw new ConfigError(`${name} must be between ${s.min} and ${s.max} (got ${n})`);
      }
      return n;
    }
  }
}

/**
 * Parse argv (without node and script) and the environment. Throws ConfigError
 * with one line that names the bad setting and what was wrong.
 */
export function parseConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): ParseResult {
  const byFlag = new Map(SETTINGS.map((s) => [s.flag, s]));
  const fromFlags = new Map<Setting, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-h' || arg === '--help') return { help: true };
    if (!arg.startsWith('--')) throw new ConfigError(`unexpected argument "${arg}" (see --help)`);
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    const s = byFlag.get(name);
    if (!s) throw new ConfigError(`unknown option --${name} (see --help)`);
    let value: string;
    if (eq !== -1) value = arg.slice(eq + 1);
    else {
      if (i + 1 >= argv.length || argv[i + 1].startsWith('--')) throw new ConfigError(`--${name} needs a value`);
      value = argv[++i];
    }
    const list = fromFlags.get(s) ?? [];
    list.push(value);
    fromFlags.set(s, list);
  }

  const out: Record<string, unknown> = {};
  for (const s of SETTINGS) {
    const flagValues = fromFlags.get(s);
    const envValue = env[envName(s.flag)];
    if (flagValues) {
      if (s.kind === 'list') {
        out[s.key] = flagValues.flatMap((v) => convert(s, v, `--${s.flag}`) as string[]);
        // Asked for and yielding nothing (`--api-key ' , '`) must not silently mean "none" (for API keys: authentication off).
        if ((out[s.key] as string[]).length === 0) throw new ConfigError(`--${s.flag} was given but holds no value (got ${flagValues.map((v) => JSON.stringify(v)).join(', ')})`);
      } else {
        if (flagValues.length > 1) throw new ConfigError(`--${s.flag} given more than once`);
        out[s.key] = convert(s, flagValues[0], `--${s.flag}`);
      }
    } else if (envValue !== undefined && envValue !== '') {
      out[s.key] = convert(s, envValue, envName(s.flag));
      if (s.kind === 'list' && (out[s.key] as string[]).length === 0) throw new ConfigError(`${envName(s.flag)} is set but holds no value (got ${JSON.stringify(envValue)})`);
    } else {
      out[s.key] = convert(s, s.default, `default of --${s.flag}`);
    }
  }
  return { help: false, config: out as unknown as ServerConfig };
}

/** A model directory holds model.onnx and config.json (MM-REC.md §3). */
export function isModelDir(dir: string): boolean {
  return existsSync(join(dir, 'model.onnx')) && existsSync(join(dir, 'config.json'));
}

/**
 * The model directories to serve: the explicit --model list, or every model
 * directory under --models-dir. Throws ConfigError when there is nothing to
 * serve, a directory is not a model, or two models would share an id.
 */
export function resolveModelDirs(config: ServerConfig): Array<{ id: string; dir: string }> {
  let dirs: string[];
  if (config.models.length > 0) {
    dirs = config.models.map((d) => resolve(d));
    for (const d of dirs) {
      if (!isModelDir(d)) throw new ConfigError(`--model ${d} is not a model directory (it needs model.onnx and config.json)`);
    }
  } else {
    const root = resolve(config.modelsDir);
    if (!existsSync(root) || !statSync(root).isDirectory()) throw new ConfigError(`--models-dir ${root} is not a directory`);
    dirs = readdirSync(root)
      .sort()
      .map((n) => join(root, n))
      .filter((d) => statSync(d).isDirectory() && isModelDir(d));
    if (dirs.length === 0) throw new ConfigError(`no model directory (with model.onnx and config.json) under ${root}`);
  }
  const seen = new Map<string, string>();
  return dirs.map((dir) => {
    const id = basename(dir);
    const other = seen.get(id);
    if (other) throw new ConfigError(`two models would share the id "${id}": ${other} and ${dir}`);
    seen.set(id, dir);
    return { id, dir };
  });
}

/** A served name: no whitespace or control characters, and neither of the flag's separators. */
const SERVED_NAME = /^[^\s\x00-\x1f\x7f,=]{1,256}$/;

/**
 * --served-model-name as aliases per model id: `NAME` names the one model
 * served, `MODEL=NAME` the model whose id is MODEL. Throws ConfigError for a
 * bare name while several models are served, an unknown MODEL, a malformed
 * name, or a name that is already another model's id or alias.
 */
export function resolveServedNames(config: ServerConfig, models: ReadonlyArray<{ id: string }>): Record<string, string[]> {
  const ids = new Set(models.map((m) => m.id));
  const out: Record<string, string[]> = {};
  const owner = new Map<string, string>();
  for (const entry of config.servedModelNames) {
    const eq = entry.indexOf('=');
    let id: string;
    let name: string;
    if (eq === -1) {
      if (models.length !== 1) {
        throw new ConfigError(`--served-model-name ${entry}: ${models.length} models are served (${[...ids].join(', ')}); say which one it names as MODEL=${entry}`);
      }
      id = models[0].id;
      name = entry;
    } else {
      id = entry.slice(0, eq);
      name = entry.slice(eq + 1);
      if (!ids.has(id)) throw new ConfigError(`--served-model-name ${entry}: no served model has the id "${id}" (served: ${[...ids].join(', ')})`);
    }
    if (!SERVED_NAME.test(name)) throw new ConfigError(`--served-model-name ${JSON.stringify(entry)}: a name is 1 to 256 characters without spaces, control characters, "," or "="`);
    if (ids.has(name) && name !== id) throw new ConfigError(`--served-model-name ${entry}: "${name}" is already the id of another served model`);
    const other = owner.get(name);
    if (other !== undefined && other !== id) throw new ConfigError(`--served-model-name: "${name}" names two models (${other} and ${id})`);
    if (name === id || other === id) continue;
    owner.set(name, id);
    (out[id] ??= []).push(name);
  }
  return out;
}

/**
 * The model text_similarity's cosine embeds with: --eval-embedding-model, a
 * configured model's id or alias, or the first configured model. Throws
 * ConfigError naming a name no configured model answers to, at start rather
 * than at the first eval that asks for cosine. (Fine-tuned models are not
 * candidates: they can be deleted while the server runs.)
 */
export function resolveEvalEmbeddingModel(config: ServerConfig, models: ReadonlyArray<{ id: string }>, aliases: Readonly<Record<string, readonly string[]>>): string {
  const name = config.evalEmbeddingModel.trim();
  if (name === '') return models[0].id;
  const names = models.flatMap((m) => [m.id, ...(aliases[m.id] ?? [])]);
  if (!names.includes(name)) throw new ConfigError(`--eval-embedding-model ${name}: no configured model has that name (served: ${names.join(', ')})`);
  return name;
}

/** The configuration as logged at start-up: API keys are replaced by their count. */
export function redactedConfig(config: ServerConfig): Record<string, unknown> {
  return { ...config, apiKeys: config.apiKeys.length > 0 ? `${config.apiKeys.length} key(s)` : 'none' };
}
