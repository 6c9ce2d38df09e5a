/**
 * npm run openapi            write openapi.yaml from the routes' TypeBox schemas
 * npm run openapi -- --check exit 1 if openapi.yaml is stale
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { openApiYaml } from '../src/http/openapi.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const target = `${root}openapi.yaml`;
const { version } = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as { version: string };
const yaml = await openApiYaml(version);

if (process.argv.includes('--check')) {
  let current = '';
  try {
    current = readFileSync(target, 'utf8');
  } catch {}
  if (current !== yaml) {
    console.error('openapi.yaml is stale: run `npm run openapi`');
    process.exit(1);
  }
  console.log('openapi.yaml is up to date');
} else {
  writeFileSync(target, yaml);
  console.log(`wrote ${target}`);
}
