/**
 * Execution-provider selection with a fake host and fake sessions (so every
 * branch runs on a machine without a GPU), the CPU download of outputs that are
 * not in CPU memory, and the host checks on this machine.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import ort from 'onnxruntime-node';
import {
  onnxruntimeMessage,
  openOnProvider,
  ProviderUnavailableError,
  sharedLibraryLoads,
  type ExecutionProvider,
  type ExecutionProviderChoice,
  type ProviderHost,
} from '../../src/engine/execution-provider.ts';
import { cpuData } from '../../src/engine/onnx-model.ts';

const ADAPTER_ERROR =
  '/onnxruntime_src/onnxruntime/core/providers/webgpu/webgpu_context.cc:136 onnxruntime::webgpu::WebGpuContext::Initialize(const onnxruntime::webgpu::WebGpuContextConfig&)::<lambda()> ' +
  'adapter_result.status == wgpu::RequestAdapterStatus::Success was false. Failed to get a WebGPU adapter: No supported adapters\n';

interface Scenario {
  missing?: Partial<Record<'cuda' | 'webgpu', string>>;
  /** Providers whose session creation throws this message. */
  fails?: Partial<Record<ExecutionProvider, string>>;
}

/** Runs the selection; returns what it chose and every start attempt as "provider" or "provider(quiet)". */
async function select(choice: ExecutionProviderChoice, scenario: Scenario) {
  const attempts: string[] = [];
  const host: ProviderHost = { missing: (p) => scenario.missing?.[p] };
  const opened = await openOnProvider(
    choice,
    async (provider, quiet) => {
      attempts.push(quiet ? `${provider}(quiet)` : provider);
      const failure = scenario.fails?.[provider];
      if (failure) throw new Error(failure);
      return `session on ${provider}`;
    },
    host,
  );
  return { ...opened, attempts };
}

const NO_CUDA = 'CUDA provider unavailable in this onnxruntime-node build (libonnxruntime_providers_cuda.so is not installed)';
const NO_LOADER = 'no Vulkan loader (libvulkan.so.1 is not installed)';

test('auto tries CUDA, then WebGPU, then the CPU, and the note says why each was passed over', async () => {
  const r = await select('auto', { missing: { cuda: NO_CUDA }, fails: { webgpu: ADAPTER_ERROR } });
  assert.deepEqual(r.attempts, ['webgpu(quiet)', 'cpu']);
  assert.equal(r.provider, 'cpu');
  assert.equal(r.session, 'session on cpu');
  assert.match(r.note, /^cuda: CUDA provider unavailable .*; webgpu: no WebGPU adapter \(Failed to get a WebGPU adapter: No supported adapters\): .*; using cpu$/);
  assert.match(r.note, /NVIDIA_DRIVER_CAPABILITIES including graphics/);
  assert.doesNotMatch(r.note, /webgpu_context\.cc|\n/, "onnxruntime's source location and line breaks are left out");
});

test('auto does not try a provider the host lacks', async () => {
  const r = await select('auto', { missing: { cuda: NO_CUDA, webgpu: NO_LOADER } });
  assert.deepEqual(r.attempts, ['cpu']);
  assert.equal(r.note, `cuda: ${NO_CUDA}; webgpu: ${NO_LOADER}; using cpu`);
});

test('auto takes WebGPU when CUDA fails to start, and CUDA when it starts', async () => {
  const webgpu = await select('auto', { fails: { cuda: 'libcudnn.so.9: cannot open shared object file' } });
  assert.deepEqual(webgpu.attempts, ['cuda(quiet)', 'webgpu(quiet)']);
  assert.equal(webgpu.provider, 'webgpu');
  assert.equal(webgpu.note, 'cuda: CUDA provider failed to start (libcudnn.so.9: cannot open shared object file); webgpu: WebGPU adapter found');

  const cuda = await select('auto', {});
  assert.deepEqual(cuda.attempts, ['cuda(quiet)']);
  assert.equal(cuda.provider, 'cuda');
  assert.equal(cuda.note, 'cuda: CUDA provider loaded');
});

test('a requested GPU provider runs or fails with one line; it never falls back', async () => {
  const ok = await select('webgpu', { missing: { cuda: NO_CUDA } });
  assert.deepEqual(ok.attempts, ['webgpu'], 'a requested provider is not a quiet probe, and CUDA is not tried');
  assert.equal(ok.provider, 'webgpu');

  const cases: Array<[ExecutionProviderChoice, Scenario, RegExp, string[]]> = [
    ['webgpu', { missing: { webgpu: NO_LOADER } }, /^execution provider webgpu was requested but no Vulkan loader/, []],
    ['webgpu', { fails: { webgpu: ADAPTER_ERROR } }, /^execution provider webgpu was requested but no WebGPU adapter \(Failed to get a WebGPU adapter/, ['webgpu']],
    ['webgpu', { fails: { webgpu: 'device lost' } }, /^execution provider webgpu was requested but WebGPU provider failed to start \(device lost\)$/, ['webgpu']],
    ['cuda', { missing: { cuda: NO_CUDA } }, /^execution provider cuda was requested but CUDA provider unavailable/, []],
  ];
  for (const [choice, scenario, re, attempts] of cases) {
    const seen: string[] = [];
    await assert.rejects(
      openOnProvider(
        choice,
        async (p) => {
          seen.push(p);
          if (scenario.fails?.[p]) throw new Error(scenario.fails[p]);
          return p;
        },
        { missing: (p) => scenario.missing?.[p] },
      ),
      (e: unknown) => e instanceof ProviderUnavailableError && re.test(e.message) && !e.message.includes('\n'),
    );
    assert.deepEqual(seen, attempts, `${choice}: attempts`);
  }
});

test('cpu is used as asked, and a CPU failure under auto is not hidden', async () => {
  const r = await select('cpu', { missing: { cuda: NO_CUDA } });
  assert.deepEqual(r.attempts, ['cpu']);
  assert.equal(r.note, 'cpu: requested');
  await assert.rejects(select('auto', { missing: { cuda: NO_CUDA, webgpu: NO_LOADER }, fails: { cpu: 'model.onnx: protobuf parsing failed' } }), /protobuf parsing failed/);
});

test("onnxruntime's messages lose their source location and condition", () => {
  assert.equal(onnxruntimeMessage(new Error(ADAPTER_ERROR)), 'Failed to get a WebGPU adapter: No supported adapters');
  assert.equal(onnxruntimeMessage(new Error('plain message\nsecond line')), 'plain message');
});

test('outputs are CPU typed arrays: a tensor held elsewhere is downloaded', async () => {
  const onCpu = new ort.Tensor('float32', new Float32Array([1, 2, 3]), [3]);
  assert.equal(await cpuData(onCpu), onCpu.data);

  let downloads = 0;
  const onGpu = ort.Tensor.fromGpuBuffer({} as never, {
    dataType: 'float32',
    dims: [3],
    download: async () => {
      downloads++;
      return new Float32Array([4, 5, 6]);
    },
  });
  assert.equal(onGpu.location, 'gpu-buffer');
  const data = await cpuData(onGpu);
  assert.ok(data instanceof Float32Array);
  assert.deepEqual([...(data as Float32Array)], [4, 5, 6]);
  assert.equal(downloads, 1);
});

test('the shared-library check tells a library the linker finds from one it does not', () => {
  assert.equal(sharedLibraryLoads('libc.so.6'), true);
  assert.equal(sharedLibraryLoads('libmmrec-no-such-library.so.1'), false);
});
