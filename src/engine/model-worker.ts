/**
 * Worker-thread entry that hosts an OnnxModel, so the synchronous work of
 * onnxruntime's `run` never blocks the server's event loop. Speaks the message
 * protocol in worker-protocol.ts with WorkerModel.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { OnnxModel } from './onnx-model.ts';
import type { WorkerInit, WorkerReply, WorkerRequest } from './worker-protocol.ts';
import { transferablesOf } from './worker-protocol.ts';

const port = parentPort!;
const { onnxPath, settings } = workerData as WorkerInit;

function errorReply(id: number, e: unknown): WorkerReply {
  const err = e as Error;
  return { kind: 'error', id, message: String(err?.message ?? e), stack: err?.stack };
}

try {
  const model = await OnnxModel.load(onnxPath, settings);
  let disposed = false;
  const handle = async (request: WorkerRequest) => {
    if (request.kind === 'dispose') {
      disposed = true;
      await model.dispose();
      port.postMessage({ kind: 'disposed', id: request.id } satisfies WorkerReply);
      port.close();
      return;
    }
    try {
      if (disposed) throw new Error('the model is disposed');
      const result = await model.forward(request.inputIds, request.state, request.logits);
      // Logits and states are handed over, not copied: this thread is done with them.
      port.postMessage({ kind: 'forward', id: request.id, result } satisfies WorkerReply, transferablesOf(result));
    } catch (e) {
      port.postMessage(errorReply(request.id, e));
    }
  };
  // One request at a time, in order: the session is released only after the calls posted before the dispose have run.
  let queue = Promise.resolve();
  port.on('message', (request: WorkerRequest) => {
    queue = queue.then(() => handle(request));
  });
  port.postMessage({
    kind: 'loaded',
    id: 0,
    executionProvider: model.executionProvider,
    providerNote: model.providerNote,
    signature: model.signature,
  } satisfies WorkerReply);
} catch (e) {
  port.postMessage(errorReply(0, e));
}
