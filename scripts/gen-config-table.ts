/**
 * npm run config-table: rewrites the README's configuration table (between
 * the config-table markers) from the settings table in src/config.ts, the
 * same table --help prints. test/unit/config.test.ts fails when it is stale.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { configTable, replaceConfigTable } from '../src/config-doc.ts';

const path = new URL('../README.md', import.meta.url);
const readme = readFileSync(path, 'utf8');
writeFileSync(path, replaceConfigTable(readme, configTable()));
console.log('README.md: configuration table rewritten');
