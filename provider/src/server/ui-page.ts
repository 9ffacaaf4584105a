/**
 * The visibility page under `microseg serve`: the same built page as `microseg ui` (dist/ui), served at /ui/.
 * Only the static files are public; the page asks for an API token and calls the authenticated
 * /v1/environments/:env/visibility/:view routes with it, so every view is still checked per role.
 * `config.json` tells the page it runs under the server (absent under `microseg ui`: local mode).
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { uiAssetsDir } from '../ui/server';

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.png': 'image/png', '.json': 'application/json' };

/** What the page needs to know about its host: the API's prefix, and that it must sign in. */
export const UI_CONFIG = { mode: 'server', api: '/v1' } as const;

// The page loads only its own files and talks only to its own origin; nobody may frame it (the token field).
const HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'content-security-policy': "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
};

/** Registers GET /ui/ (the page) and /ui/<file> (its bundle), without authentication. */
export async function registerUiPage(app: FastifyInstance, options: { assets?: string } = {}): Promise<void> {
  let assets: string | undefined = options.assets;
  const send = async (file: string, reply: import('fastify').FastifyReply) => {
    // Only the files of the built page, by plain name: no path traversal.
    if (!/^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/.test(file)) return reply.code(404).type('text/plain').send('not found\n');
    if (file === 'config.json') return reply.headers(HEADERS).type(TYPES['.json']!).send(UI_CONFIG);
    try {
      assets ??= uiAssetsDir();
    } catch (err) {
      return reply.code(503).type('text/plain').send(`${(err as Error).message}\n`);
    }
    const data = await fs.readFile(path.join(assets, file)).catch(() => undefined);
    if (!data) return reply.code(404).type('text/plain').send('not found\n');
    return reply.headers(HEADERS).type(TYPES[path.extname(file)] ?? 'application/octet-stream').send(data);
  };
  app.get('/ui', { schema: { hide: true } }, async (_request, reply) => reply.redirect('/ui/', 301));
  app.get('/ui/', { schema: { hide: true } }, async (_request, reply) => send('index.html', reply));
  app.get<{ Params: { file: string } }>('/ui/:file', { schema: { hide: true } }, async (request, reply) => send(request.params.file, reply));
}
