/**
 * The Python interpreter that runs the model kit's trainer: the one
 * configured (--python), or the first `python3` / `python` on PATH that can
 * import what the kit needs (torch, onnx, numpy). Several interpreters on one
 * machine are common (a distribution's, pyenv's, a virtual environment's), and
 * only some have PyTorch: each candidate is asked, none is assumed.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export interface PythonFound {
  ok: true;
  path: string;
  torch: string;
  cuda: boolean;
}

export interface PythonMissing {
  ok: false;
  /** Why fine-tuning cannot run, for the log at start and for every job that would need it. */
  reason: string;
}

const PROBE = 'import json, torch, onnx, numpy; print(json.dumps({"torch": torch.__version__, "cuda": bool(torch.cuda.is_available())}))';

function probe(path: string, timeoutMs: number): Promise<{ torch: string; cuda: boolean } | string> {
  return new Promise((resolve) => {
    execFile(path, ['-c', PROBE], { timeout: timeoutMs, env: { ...process.env, PYTHONNOUSERSITE: '' } }, (err, stdout, stderr) => {
      if (err) return resolve((stderr.trim().split('\n').pop() || err.message).slice(0, 300));
      try {
        resolve(JSON.parse(stdout.trim().split('\n').pop()!));
      } catch {
        resolve(`unexpected output: ${stdout.slice(0, 200)}`);
      }
    });
  });
}

function executables(names: string[], path = process.env.PATH ?? ''): string[] {
  const out: string[] = [];
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    for (const name of names) {
      const candidate = join(dir, name);
      try {
        accessSync(candidate, constants.X_OK);
        if (!out.includes(candidate)) out.push(candidate);
      } catch {
        // not here
      }
    }
  }
  return out;
}

export async function findPython(configured: string, timeoutMs = 60_000): Promise<PythonFound | PythonMissing> {
  const candidates = configured ? [configured] : executables(['python3', 'python']);
  if (candidates.length === 0) return { ok: false, reason: 'no python3 or python on PATH (set --python to an interpreter with PyTorch, onnx and numpy)' };
  const refusals: string[] = [];
  for (const path of candidates) {
    const r = await probe(path, timeoutMs);
    if (typeof r === 'object') return { ok: true, path, torch: r.torch, cuda: r.cuda };
    refusals.push(`${path}: ${r}`);
  }
  const hint = configured ? '' : ' (set --python to an interpreter with PyTorch, onnx and numpy)';
  return { ok: false, reason: `no Python that can run the model kit${hint}: ${refusals.join('; ')}` };
}
