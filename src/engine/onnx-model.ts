/**
 * The ONNX graph of an MM-Rec model (MM-REC.md §3) behind one onnxruntime
 * session: execution-provider selection, discovery of the state tensors from the
 * graph's metadata, and `forward`.
 *
 * onnxruntime-node's `session.run` returns a promise but does its work
 * synchronously on the calling thread (1.30 runs it inside a setImmediate), so
 * this class blocks whichever thread it lives on for the length of a step. The
 * engine therefore hosts it in a worker thread (worker-model.ts); it is used
 * directly only there and by tools that have no event loop to protect.
 */
import { existsSync } from 'node:fs';
import ort from 'onnxruntime-node';
import { openOnProvider, ProviderUnavailableError, type ExecutionProvider, type ExecutionProviderChoice } from './execution-provider.ts';
import type { RecurrentState, StateArray, StateDtype, StateSpec } from './state.ts';

export type { ExecutionProvider, ExecutionProviderChoice } from './execution-provider.ts';

export interface SessionSettings {
  executionProvider: ExecutionProviderChoice;
  /** Threads inside one operator; undefined or 0 = onnxruntime's default. */
  intraOpThreads?: number;
  /** Threads across operators; undefined or 0 = onnxruntime's default. */
  interOpThreads?: number;
}

/** Which positions' logits a forward call returns. 'none' lets onnxruntime skip the LM head entirely. */
export type LogitsWanted = 'none' | 'last' | 'all';

export interface ForwardResult {
  /** Per batch row: [vocab] for 'last', [seq × vocab] for 'all', absent for 'none'. */
  logits: Float32Array[];
  state: RecurrentState;
  /** Milliseconds the session spent on this call (excludes any queueing before it). */
  runMs?: number;
}

/** The graph's interface as discovered from its metadata. */
export interface ModelSignature {
  states: StateSpec[];
}

/** What runs the graph: the in-thread OnnxModel, or the worker proxy around it. */
export interface ModelRunner {
  readonly executionProvider: ExecutionProvider;
  /** Why that provider: e.g. "cuda: …unavailable…; webgpu: …; using cpu". For the server log. */
  readonly providerNote: string;
  readonly signature: ModelSignature;
  /** `inputIds`: one row per batch item, all of one length. */
  forward(inputIds: readonly (readonly number[])[], state: RecurrentState, logits: LogitsWanted): Promise<ForwardResult>;
  dispose(): Promise<void>;
}

export class ModelLoadError extends Error {}

const INPUT_IDS = 'input_ids';
const LOGITS = 'logits';
const STATE_IN = /^state_in\.(\d+)$/;

async function createSession(path: string, settings: SessionSettings, provider: ExecutionProvider, quiet: boolean): Promise<ort.InferenceSession> {
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: [provider],
    graphOptimizationLevel: 'all',
    // A failed probe of `auto` is reported in providerNote; onnxruntime's own log line would only repeat it.
    logSeverityLevel: quiet ? 4 : 3,
  };
  // onnxruntime-node refuses keys that are present but undefined.
  if (settings.intraOpThreads) options.intraOpNumThreads = settings.intraOpThreads;
  if (settings.interOpThreads) options.interOpNumThreads = settings.interOpThreads;
  // onnxruntime's pool threads spin for a while after each operator by default. Between our
  // steps the CPU belongs to sampling and to the server; spinning halved decode speed on a
  // 2-core host. Steps are long enough (ms) that waking sleeping threads costs little.
  options.extra = { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } };
  return ort.InferenceSession.create(path, options);
}

/** The session on the provider settings ask for (see execution-provider.ts); a requested provider that cannot run is a ModelLoadError. */
async function openSession(path: string, settings: SessionSettings) {
  try {
    return await openOnProvider(settings.executionProvider, (provider, quiet) => createSession(path, settings, provider, quiet));
  } catch (e) {
    throw e instanceof ProviderUnavailableError ? new ModelLoadError(e.message) : e;
  }
}

/**
 * A run's output as a CPU typed array. onnxruntime-node returns outputs in CPU
 * memory unless the session asks for another location (preferredOutputLocation,
 * which createSession never sets); anything else is downloaded here, so every
 * caller (batching, the state cache, sampling) sees CPU arrays whatever the provider.
 */
export async function cpuData(tensor: ort.Tensor): Promise<ort.Tensor['data']> {
  return tensor.location === 'cpu' ? tensor.data : tensor.getData(true);
}

/** Reads the state tensors from the graph; refuses a graph that breaks the §3 contract, saying how. */
function discoverSignature(session: ort.InferenceSession, path: string): ModelSignature {
  // Typed on the declaration so that TypeScript narrows after each `fail(…)`.
  const fail: (why: string) => never = (why) => {
    throw new ModelLoadError(`${path}: ${why} (see MM-REC.md §3)`);
  };
  const inputs = new Map(session.inputMetadata.map((m) => [m.name, m]));
  const outputs = new Map(session.outputMetadata.map((m) => [m.name, m]));

  const ids = inputs.get(INPUT_IDS);
  if (!ids?.isTensor || ids.type !== 'int64' || ids.shape.length !== 2) fail(`input "${INPUT_IDS}" must be an int64 tensor [batch, seq]`);
  const logits = outputs.get(LOGITS);
  if (!logits?.isTensor || logits.type !== 'float32' || logits.shape.length !== 3) fail(`output "${LOGITS}" must be a float32 tensor [batch, seq, vocab]`);

  const states: Array<StateSpec & { index: number }> = [];
  for (const meta of session.inputMetadata) {
    if (meta.name === INPUT_IDS) continue;
    const match = STATE_IN.exec(meta.name);
    if (!match) fail(`unexpected input "${meta.name}": inputs are "${INPUT_IDS}" and "state_in.<i>"`);
    if (!meta.isTensor || (meta.type !== 'float32' && meta.type !== 'float16')) fail(`input "${meta.name}" must be a float32 or float16 tensor`);
    const rowShape = meta.shape.slice(1);
    if (meta.shape.length < 2 || !rowShape.every((d): d is number => typeof d === 'number' && d > 0)) {
      fail(`input "${meta.name}" must have shape [batch, fixed sizes…], got [${meta.shape.join(', ')}]`);
    }
    const outputName = `state_out.${match[1]}`;
    const out = outputs.get(outputName);
    if (!out?.isTensor || out.type !== meta.type) fail(`output "${outputName}" must exist with the dtype of "${meta.name}" (${meta.type})`);
    states.push({
      index: Number(match[1]),
      inputName: meta.name,
      outputName,
      dtype: meta.type as StateDtype,
      rowShape: rowShape as number[],
      rowSize: (rowShape as number[]).reduce((a, b) => a * b, 1),
    });
  }
  states.sort((a, b) => a.index - b.index);
  return { states: states.map(({ index: _index, ...spec }) => spec) };
}

export class OnnxModel implements ModelRunner {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly executionProvider: ExecutionProvider,
    readonly providerNote: string,
    readonly signature: ModelSignature,
  ) {}

  static async load(path: string, settings: SessionSettings): Promise<OnnxModel> {
    if (!existsSync(path)) throw new ModelLoadError(`${path}: no such file`);
    const { session, provider, note } = await openSession(path, settings);
    try {
      return new OnnxModel(session, provider, note, discoverSignature(session, path));
    } catch (e) {
      await session.release();
      throw e;
    }
  }

  async forward(inputIds: readonly (readonly number[])[], state: RecurrentState, logits: LogitsWanted): Promise<ForwardResult> {
    const batch = inputIds.length;
    const seq = inputIds[0]?.length ?? 0;
    if (batch === 0 || seq === 0) throw new RangeError('forward needs at least one row of at least one token');
    if (inputIds.some((row) => row.length !== seq)) throw new RangeError('forward needs rows of equal length');
    if (state.batch !== batch) throw new RangeError(`state has ${state.batch} rows, input has ${batch}`);

    const ids = new BigInt64Array(batch * seq);
    inputIds.forEach((row, r) => row.forEach((id, t) => (ids[r * seq + t] = BigInt(id))));
    const feeds: Record<string, ort.Tensor> = { [INPUT_IDS]: new ort.Tensor('int64', ids, [batch, seq]) };
    const { states } = this.signature;
    states.forEach((spec, i) => {
      feeds[spec.inputName] = new ort.Tensor(spec.dtype, state.tensors[i], [batch, ...spec.rowShape]);
    });
    const fetches = states.map((s) => s.outputName);
    if (logits !== 'none') fetches.push(LOGITS);

    const started = performance.now();
    const out = await this.session.run(feeds, fetches);
    const runMs = performance.now() - started;

    const tensors: StateArray[] = [];
    for (const spec of states) {
      const data = (await cpuData(out[spec.outputName])) as StateArray;
      if (data.length !== batch * spec.rowSize) {
        throw new Error(`${spec.outputName} has ${data.length} elements, expected ${batch} × ${spec.rowSize} like ${spec.inputName}`);
      }
      tensors.push(data);
    }
    const logitsData = logits === 'none' ? undefined : ((await cpuData(out[LOGITS])) as Float32Array);
    return { logits: logitsData ? splitLogits(logitsData, batch, seq, logits as 'last' | 'all') : [], state: { batch, tensors }, runMs };
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}

function splitLogits(data: Float32Array, batch: number, seq: number, wanted: 'last' | 'all'): Float32Array[] {
  const vocab = data.length / (batch * seq);
  const rows: Float32Array[] = [];
  for (let r = 0; r < batch; r++) {
    if (wanted === 'all') rows.push(data.subarray(r * seq * vocab, (r + 1) * seq * vocab));
    // Views when each row is one position (decode); copies otherwise, so the big prefill buffer is not kept alive.
    else if (seq === 1) rows.push(data.subarray(r * vocab, (r + 1) * vocab));
    else rows.push(data.slice(((r + 1) * seq - 1) * vocab, (r + 1) * seq * vocab));
  }
  return rows;
}
