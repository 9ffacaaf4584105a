/**
 * Builds the visibility page into dist/ui: ui/app.ts bundled with its dependencies (Cytoscape.js) into
 * one script by esbuild, beside index.html and style.css. `microseg ui` serves that directory; the page
 * fetches nothing but its own API. Run by scripts/setup.sh after tsc.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildSync } from 'esbuild';

const root = path.join(__dirname, '..', '..');
const out = path.join(root, 'dist', 'ui');
fs.mkdirSync(out, { recursive: true });
buildSync({
  entryPoints: [path.join(root, 'ui', 'app.ts')],
  bundle: true,
  minify: true,
  format: 'iife',
  target: 'es2022',
  outfile: path.join(out, 'app.js'),
  legalComments: 'linked',
  logLevel: 'warning',
});
for (const f of ['index.html', 'style.css']) fs.copyFileSync(path.join(root, 'ui', f), path.join(out, f));
