import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import madge from 'madge';

const root = join(__dirname, '..', '..', '..');

/**
 * Import cycles between modules of a directory, type-only imports included: a type-only cycle is harmless
 * at run time but shows a hub that every module needs (World and membership were), which is what this
 * guards against. Inline `import('./x').T` types count too.
 */
async function cycles(dir: string): Promise<string[][]> {
  const graph = await madge(dir, {
    fileExtensions: ['ts'],
    tsConfig: join(root, 'tsconfig.json'),
    detectiveOptions: { ts: { skipTypeImports: false }, tsx: { skipTypeImports: false } },
  });
  return graph.circular();
}

describe('module structure', () => {
  jest.setTimeout(60_000);

  test('provider/src has no import cycles', async () => {
    expect(await cycles(join(root, 'provider', 'src'))).toEqual([]);
  });

  test('the check finds a cycle made only of type imports', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'microseg-cycles-'));
    try {
      writeFileSync(join(dir, 'a.ts'), "import type { B } from './b';\nexport interface A { b?: B }\n");
      writeFileSync(join(dir, 'b.ts'), "export interface B { a?: import('./a').A }\n");
      writeFileSync(join(dir, 'c.ts'), "import type { A } from './a';\nexport type C = A;\n");
      expect(await cycles(dir)).toEqual([['a.ts', 'b.ts']]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
