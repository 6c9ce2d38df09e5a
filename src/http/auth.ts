/**
 * Optional API keys: with keys configured, every route but /health and /metrics needs
 * `Authorization: Bearer <key>`. Keys are compared by SHA-256 digest with a
 * constant-time compare, so response timing says nothing about a key's prefix.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../protocol/errors.ts';

const OPEN_ROUTES = new Set(['/health', '/metrics']);

const digest = (s: string) => createHash('sha256').update(s).digest();

export function registerAuth(app: FastifyInstance, apiKeys: readonly string[]): void {
  if (apiKeys.length === 0) return;
  const digests = apiKeys.map(digest);
  app.addHook('onRequest', async (request) => {
    if (OPEN_ROUTES.has(request.url.split('?')[0])) return;
    const header = request.headers.authorization;
    if (!header) throw ApiError.unauthorized("You didn't provide an API key. Provide it in the Authorization header as 'Bearer <key>'.");
    const m = /^Bearer\s+(.+)$/i.exec(header.trim());
    if (!m) throw ApiError.unauthorized("The Authorization header must be 'Bearer <key>'.");
    const given = digest(m[1].trim());
    // Check every key (no early exit) so the time taken does not depend on which key matched.
    let ok = false;
    for (const d of digests) ok = timingSafeEqual(d, given) || ok;
    if (!ok) throw ApiError.unauthorized('Incorrect API key provided.');
  });
}
