/**
 * A ModelRunner that knows whether a model call is in flight, and can be
 * halted: for a process that must exit at once (a second signal), after the
 * call in progress has returned. Exiting while onnxruntime runs a call in its
 * worker thread aborts the process (its completion throws into a runtime
 * that is being torn down), so an immediate exit waits for that one call.
 */
import type { ForwardResult, LogitsWanted, ModelRunner } from './onnx-model.ts';
import type { RecurrentState } from './state.ts';

export class EngineHaltedError extends Error {
  constructor() {
    super('the engine was halted: the process is exiting');
  }
}

export class HaltingRunner implements ModelRunner {
  private inFlight = 0;
  private halted = false;
  private waiters: Array<() => void> = [];

  constructor(private readonly inner: ModelRunner) {}

  get executionProvider() {
    return this.inner.executionProvider;
  }

  get providerNote() {
    return this.inner.providerNote;
  }

  get signature() {
    return this.inner.signature;
  }

  async forward(inputIds: readonly (readonly number[])[], state: RecurrentState, logits: LogitsWanted): Promise<ForwardResult> {
    if (this.halted) throw new EngineHaltedError();
    this.inFlight++;
    try {
      return await this.inner.forward(inputIds, state, logits);
    } finally {
      if (--this.inFlight === 0) for (const w of this.waiters.splice(0)) w();
    }
  }

  /** No new call starts; resolves once none is in flight. */
  halt(): Promise<void> {
    this.halted = true;
    return this.inFlight === 0 ? Promise.resolve() : new Promise((r) => this.waiters.push(r));
  }

  dispose(): Promise<void> {
    return this.inner.dispose();
  }
}
