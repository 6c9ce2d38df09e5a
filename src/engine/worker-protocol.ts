/** Messages between WorkerModel (main thread) and model-worker.ts. */
import type { ExecutionProvider, ForwardResult, LogitsWanted, ModelSignature, SessionSettings } from './onnx-model.ts';
import type { RecurrentState } from './state.ts';

export interface WorkerInit {
  onnxPath: string;
  settings: SessionSettings;
}

export type WorkerRequest =
  | { kind: 'forward'; id: number; inputIds: number[][]; state: RecurrentState; logits: LogitsWanted }
  | { kind: 'dispose'; id: number };

export type WorkerReply =
  | { kind: 'loaded'; id: 0; executionProvider: ExecutionProvider; providerNote: string; signature: ModelSignature }
  | { kind: 'forward'; id: number; result: ForwardResult }
  | { kind: 'disposed'; id: number }
  | { kind: 'error'; id: number; message: string; stack?: string };

/** The distinct buffers behind a result's arrays (several logits rows may share one). */
export function transferablesOf(result: ForwardResult): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  for (const a of [...result.logits, ...result.state.tensors]) buffers.add(a.buffer as ArrayBuffer);
  return [...buffers];
}
