/** Identifiers of stored objects, shaped like OpenAI's: `file-…`, `ftjob-…`, `resp_…`. */
import { randomBytes } from 'node:crypto';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

export function newId(prefix: string, length = 24): string {
  let s = prefix;
  for (const b of randomBytes(length)) s += ALPHABET[b % ALPHABET.length];
  return s;
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
