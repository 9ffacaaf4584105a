import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { handleVisibility, type VisibilitySource } from './handlers';

/**
 * `microseg ui`: the visibility page on loopback, over the embedded store. Static files are the page and
 * its bundle built by scripts/build-ui.ts (Cytoscape.js included: nothing is fetched from elsewhere).
 */

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.png': 'image/png' };

/**
 * Where the built page is: `ui/` beside the bundled CLI (the plugin archive), dist/ui beside dist/provider (the
 * build), or the checkout's dist/ui (tests on sources).
 */
export function uiAssetsDir(): string {
  const candidates = [path.join(__dirname, 'ui'), path.join(__dirname, '..', '..', '..', 'ui'), path.join(__dirname, '..', '..', '..', 'dist', 'ui')];
  for (const d of candidates) if (fs.existsSync(path.join(d, 'app.js'))) return d;
  throw new Error('the visibility page is not built (dist/ui/app.js is missing); run scripts/setup.sh');
}

export interface UiServer {
  readonly url: string;
  close(): Promise<void>;
}

export async function startUiServer(source: VisibilitySource, options: { host?: string; port?: number; assets?: string } = {}): Promise<UiServer> {
  const assets = options.assets ?? uiAssetsDir();
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const send = (status: number, type: string, body: string | Buffer) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
      res.end(body);
    };
    if (req.method !== 'GET') return send(405, 'text/plain', 'only GET\n');
    if (url.pathname.startsWith('/api/')) {
      handleVisibility(source, url.pathname, Object.fromEntries(url.searchParams)).then(
        (r) => send(r.status, 'application/json', JSON.stringify(r.body)),
        (err: Error) => send(500, 'application/json', JSON.stringify({ error: err.message })),
      );
      return;
    }
    const name = url.pathname === '/' ? 'index.html' : url.pathname.slice(1);
    // Only the files of the built page, by plain name: no path traversal.
    if (!/^[A-Za-z0-9_.-]+$/.test(name) || name.startsWith('.')) return send(404, 'text/plain', 'not found\n');
    fs.readFile(path.join(assets, name), (err, data) => (err ? send(404, 'text/plain', 'not found\n') : send(200, TYPES[path.extname(name)] ?? 'application/octet-stream', data)));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const a = server.address() as AddressInfo;
  const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  return {
    url: `http://${host}:${a.port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
