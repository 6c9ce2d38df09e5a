/**
 * ModelRunner that runs the OnnxModel in a worker thread. onnxruntime-node's
 * `run` blocks its thread for a whole step (up to seconds for a long prefill
 * chunk on CPU); here that thread is not the one serving HTTP. Each call costs
 * a message round trip (tens of µs); logits and states come back transferred,
 * not copied.
 */
import { Worker } from 'node:worker_threads';
import type { ExecutionProvider, ForwardResult, LogitsWanted, ModelRunner, ModelSignature, SessionSettings } from './onnx-model.ts';
import { ModelLoadError } from './onnx-model.ts';
import type { RecurrentState } from './state.ts';
import type { WorkerInit, WorkerReply, WorkerRequest } from './worker-protocol.ts';

const WORKER_URL = new URL(`./model-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);

/**
 * A worker's entry is loaded without the parent's tsx hooks on Node 20, so a
 * TypeScript entry is reached through a tiny bootstrap that registers tsx first.
 */
function startWorker(init: WorkerInit): Worker {
  if (!WORKER_URL.pathname.endsWith('.ts')) return new Worker(WORKER_URL, { workerData: init });
  const tsx = import.meta.resolve('tsx/esm/api');
  const bootstrap = `import(${JSON.stringify(tsx)}).then(({ register }) => { register(); return import(${JSON.stringify(WORKER_URL.href)}); })`;
  return new Worker(bootstrap, { eval: true, workerData: init });
}

/** The workers alive now, for stopModelWorkers. */
const live = new Set<WorkerModel>();

/**
 * Disposes every model worker, each once the calls already posted to it have
 * returned. `process.exit` while a worker is inside onnxruntime's run tears
 * its environment down mid-call, and onnxruntime-node's addon then aborts the
 * whole process (SIGABRT) instead of letting it exit with its code: a process
 * that must exit now stops its workers this way first.
 */
export async function stopModelWorkers(): Promise<void> {
  await Promise.allSettled([...live].map((m) => m.dispose()));
}

interface Pending {
  resolve(reply: WorkerReply): void;
  reject(error: Error): void;
}

export class WorkerModel implements ModelRunner {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  /** Set once the worker died; every later call fails with it. */
  private broken?: Error;

  private constructor(
    private readonly worker: Worker,
    readonly executionProvider: ExecutionProvider,
    readonly providerNote: string,
    readonly signature: ModelSignature,
  ) {
    live.add(this);
    worker.on('message', (reply: WorkerReply) => this.settle(reply));
    worker.on('error', (e) => this.fail(e));
    worker.on('exit', (code) => this.fail(new Error(`the model worker exited (code ${code})`)));
  }

  static load(onnxPath: string, settings: SessionSettings): Promise<WorkerModel> {
    const worker = startWorker({ onnxPath, settings });
    return new Promise((resolve, reject) => {
      const onError = (e: Error) => reject(new ModelLoadError(`${onnxPath}: the model worker failed to start: ${e.message}`));
      worker.once('error', onError);
      worker.once('message', (reply: WorkerReply) => {
        worker.off('error', onError);
        if (reply.kind === 'loaded') {
          resolve(new WorkerModel(worker, reply.executionProvider, reply.providerNote, reply.signature));
        } else {
          void worker.terminate();
          const message = reply.kind === 'error' ? reply.message : `unexpected first message ${reply.kind}`;
          reject(new ModelLoadError(message));
        }
      });
    });
  }

  private request(message: WorkerRequest): Promise<WorkerReply> {
    if (this.broken) return Promise.reject(this.broken);
    return new Promise((resolve, reject) => {
      this.pending.set(message.id, { resolve, reject });
      this.worker.postMessage(message);
    });
  }

  private settle(reply: WorkerReply): void {
    const pending = this.pending.get(reply.id);
    if (!pending) return;
    this.pending.delete(reply.id);
    if (reply.kind === 'error') {
      const error = new Error(`onnxruntime: ${reply.message}`);
      if (reply.stack) error.stack = `${error.message}\n--- in the model worker ---\n${reply.stack}`;
      pending.reject(error);
    } else {
      pending.resolve(reply);
    }
  }

  private fail(error: Error): void {
    this.broken ??= error;
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
  }

  async forward(inputIds: readonly (readonly number[])[], state: RecurrentState, logits: LogitsWanted): Promise<ForwardResult> {
    const reply = await this.request({ kind: 'forward', id: this.nextId++, inputIds: inputIds as number[][], state, logits });
    if (reply.kind !== 'forward') throw new Error(`the model worker answered ${reply.kind} to forward`);
    return reply.result;
  }

  async dispose(): Promise<void> {
    live.delete(this);
    try {
      if (!this.broken) {
        const disposed = this.request({ kind: 'dispose', id: this.nextId++ });
        // Calls made from here on fail at once instead of reaching a worker that is releasing its session.
        this.broken = new Error('the model is disposed');
        await disposed;
      }
    } finally {
      await this.worker.terminate();
    }
  }
}
