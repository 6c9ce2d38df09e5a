/**
 * Which onnxruntime execution provider a session runs on. `auto` tries CUDA,
 * then WebGPU, then the CPU, and its note says why each provider before the one
 * used was passed over; a named provider is used or loading fails with the reason.
 *
 * CUDA needs onnxruntime-node's CUDA provider library, which its install step
 * fetches only with ONNXRUNTIME_NODE_INSTALL=cuda12 (and CUDA 12 + cuDNN 9 on the
 * host). WebGPU is built into onnxruntime-node's own library (Dawn; on Linux over
 * Vulkan): it needs the Vulkan loader libvulkan.so.1 and a GPU driver that offers
 * Vulkan, so it also runs on AMD and Intel GPUs.
 *
 * Whatever the provider, inputs and outputs of a run are CPU tensors (see
 * OnnxModel.forward), so nothing downstream of the session depends on it.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import ort from 'onnxruntime-node';

export const EXECUTION_PROVIDERS = ['cuda', 'webgpu', 'cpu'] as const;
export type ExecutionProvider = (typeof EXECUTION_PROVIDERS)[number];
export type ExecutionProviderChoice = 'auto' | ExecutionProvider;

/** The order `auto` tries the GPU providers in; the CPU comes last and always starts. */
const AUTO_ORDER = ['cuda', 'webgpu'] as const;
type GpuProvider = (typeof AUTO_ORDER)[number];

/** A provider that was asked for by name and cannot run here. */
export class ProviderUnavailableError extends Error {}

/** Cheap checks of the host, made before a GPU provider is tried. */
export interface ProviderHost {
  /** Why this provider cannot even be tried here, or undefined when it can. */
  missing(provider: GpuProvider): string | undefined;
}

export interface OpenedOn<S> {
  session: S;
  provider: ExecutionProvider;
  /** For the start-up log: e.g. "cuda: …not installed…; webgpu: no WebGPU adapter (…); using cpu". */
  note: string;
}

/**
 * Opens a session on the provider `choice` asks for. `start(provider, quiet)`
 * creates the session; `quiet` marks an `auto` probe, whose failure goes into
 * the note (onnxruntime's own error log line would only repeat it).
 */
export async function openOnProvider<S>(
  choice: ExecutionProviderChoice,
  start: (provider: ExecutionProvider, quiet: boolean) => Promise<S>,
  host: ProviderHost = systemHost,
): Promise<OpenedOn<S>> {
  if (choice === 'cpu') return { session: await start('cpu', false), provider: 'cpu', note: 'cpu: requested' };
  const passedOver: string[] = [];
  for (const provider of choice === 'auto' ? AUTO_ORDER : [choice]) {
    let why = host.missing(provider);
    if (why === undefined) {
      try {
        const session = await start(provider, choice === 'auto');
        return { session, provider, note: [...passedOver, `${provider}: ${STARTED[provider]}`].join('; ') };
      } catch (e) {
        why = explainFailure(provider, e);
      }
    }
    if (choice !== 'auto') throw new ProviderUnavailableError(`execution provider ${provider} was requested but ${why}`);
    passedOver.push(`${provider}: ${why}`);
  }
  return { session: await start('cpu', false), provider: 'cpu', note: `${passedOver.join('; ')}; using cpu` };
}

const STARTED: Record<GpuProvider, string> = { cuda: 'CUDA provider loaded', webgpu: 'WebGPU adapter found' };

/**
 * onnxruntime's messages start with its source location and the failed condition
 * ("…/webgpu_context.cc:136 … was false. Failed to get a WebGPU adapter: …"): keep what follows.
 */
export function onnxruntimeMessage(e: unknown): string {
  const line = String((e as Error)?.message ?? e).split('\n')[0].trim();
  const cut = line.indexOf(' was false. ');
  return cut === -1 ? line : line.slice(cut + ' was false. '.length).trim();
}

export function explainFailure(provider: GpuProvider, e: unknown): string {
  const message = onnxruntimeMessage(e);
  if (provider === 'cuda') return `CUDA provider failed to start (${message})`;
  if (/Failed to get a WebGPU adapter/.test(message)) {
    // Dawn prints its own reason (no driver, a driver lacking features) to stderr; it cannot be captured here.
    return (
      `no WebGPU adapter (${message}): the Vulkan loader is there but no GPU with a usable Vulkan driver is visible ` +
      '(in a container, the NVIDIA runtime exposes Vulkan only with NVIDIA_DRIVER_CAPABILITIES including graphics)'
    );
  }
  return `WebGPU provider failed to start (${message})`;
}

/** Where onnxruntime-node looks for the CUDA provider library it does not bundle. */
function cudaProviderLibrary(): string {
  const entry = createRequire(import.meta.url).resolve('onnxruntime-node');
  return join(dirname(entry), '..', 'bin', 'napi-v6', process.platform, process.arch, 'libonnxruntime_providers_cuda.so');
}

/**
 * Whether the dynamic linker finds `name`. process.dlopen loads it and then
 * refuses it for not being a Node addon, which proves it was found; a missing
 * library fails with the linker's message instead.
 */
export function sharedLibraryLoads(name: string): boolean {
  try {
    process.dlopen({ exports: {} } as NodeJS.Module, name);
    return true;
  } catch (e) {
    return /did not self-register/.test(String((e as Error).message));
  }
}

let webgpuMissing: string | undefined | null = null;

export const systemHost: ProviderHost = {
  missing(provider) {
    if (provider === 'cuda') {
      const library = cudaProviderLibrary();
      if (existsSync(library)) return undefined;
      return `CUDA provider unavailable in this onnxruntime-node build (${library} is not installed; install onnxruntime-node with ONNXRUNTIME_NODE_INSTALL=cuda12 on a CUDA 12 host)`;
    }
    if (webgpuMissing === null) {
      if (!ort.listSupportedBackends().some((b) => b.name === 'webgpu' && b.bundled)) {
        webgpuMissing = 'this onnxruntime-node build has no WebGPU provider for this platform';
      } else if (process.platform === 'linux' && !sharedLibraryLoads('libvulkan.so.1')) {
        // Dawn would fail with "No supported adapters" after printing its own warning; say what is missing instead.
        webgpuMissing = 'no Vulkan loader (libvulkan.so.1 is not installed; on Debian and Ubuntu it is the package libvulkan1)';
      } else {
        webgpuMissing = undefined;
      }
    }
    return webgpuMissing;
  },
};
