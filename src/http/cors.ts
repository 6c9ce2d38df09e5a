/**
 * CORS, so that a chat UI or an SDK running in a browser can call the
 * server (@fastify/cors). Which origins may is configured (--allowed-origins,
 * vLLM's flag): by default pages served from this machine (localhost,
 * 127.0.0.1, [::1], any port and scheme), so a local UI works out of the box
 * while a page from anywhere else cannot read the server's answers.
 *
 * Preflights are answered before authentication (a browser sends them
 * without the Authorization header), and every answer to an allowed origin,
 * errors included, carries the headers a browser needs to read it.
 */
import cors from '@fastify/cors';
import type { FastifyInstance } from 'fastify';
import { ConfigError } from '../config.ts';

/** false: no CORS; '*': any origin; else the origins (exact strings, or the localhost pattern) allowed. */
export type AllowedOrigins = false | '*' | Array<string | RegExp>;

const LOCALHOST = /^https?:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?$/;

/** --allowed-origins → the plugin's origin option: `none`, `*`, `localhost` and exact origins (`https://chat.example.com:8443`). */
export function parseAllowedOrigins(values: readonly string[]): AllowedOrigins {
  if (values.includes('none')) {
    if (values.length > 1) throw new ConfigError(`--allowed-origins: "none" cannot be combined with other origins (got ${values.join(', ')})`);
    return false;
  }
  if (values.includes('*')) return '*';
  return values.map((v) => {
    if (v === 'localhost') return LOCALHOST;
    let origin: string | undefined;
    try {
      origin = new URL(v).origin;
    } catch {}
    if (origin === undefined || origin === 'null' || origin !== v) {
      throw new ConfigError(`--allowed-origins: "${v}" is not an origin (scheme://host[:port], no path or trailing slash; or localhost, * or none)`);
    }
    return v;
  });
}

export async function registerCors(app: FastifyInstance, origins: AllowedOrigins): Promise<void> {
  if (origins === false) return;
  await app.register(cors, {
    origin: origins,
    methods: ['GET', 'POST', 'DELETE'],
    // Whatever headers the browser asks for (Authorization, the SDKs' own) are allowed; no cookies are used.
    credentials: false,
    // So that a browser client can read the request id and how long to wait after a 429 or 503.
    exposedHeaders: ['x-request-id', 'retry-after'],
    maxAge: 600,
    // An OPTIONS request without a preflight's headers gets the same empty 204, not a plain-text 400.
    strictPreflight: false,
    // Preflights are not routes of the API.
    hideOptionsRoute: true,
  });
}
