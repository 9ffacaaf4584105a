/**
 * What users install is consistent with this checkout (issue 14): one version, SDK dependency ranges that admit the
 * pinned @pulumi/pulumi, examples that are ordinary Pulumi projects, and a download URL only when packaged with one.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { microsegSchema } from '../../../provider/src/schema';

const root = join(__dirname, '..', '..', '..');
const json = (p: string) => JSON.parse(readFileSync(join(root, p), 'utf8')) as Record<string, any>;
const pkg = json('package.json');

/** `^a.b.c` admits `v` (same major, not lower). */
function caretAdmits(range: string, v: string): boolean {
  const m = /^\^(\d+)\.(\d+)\.(\d+)$/.exec(range);
  if (!m) return false;
  const [a, b] = [m.slice(1).map(Number), v.split('.').map(Number)];
  return a[0] === b[0] && (b[1] > a[1] || (b[1] === a[1] && b[2] >= a[2]));
}

describe('the nodejs SDK package', () => {
  const sdk = json('sdk/nodejs/package.json');

  test('has the version of package.json, as its plugin version too', () => {
    expect(sdk.version).toBe(pkg.version);
    expect(sdk.pulumi).toEqual({ resource: true, name: 'microseg', version: pkg.version });
  });

  test('accepts the @pulumi/pulumi this repository is built and tested with', () => {
    expect(caretAdmits(sdk.dependencies['@pulumi/pulumi'], pkg.dependencies['@pulumi/pulumi'])).toBe(true);
  });

  test('builds with the TypeScript and Node types of this repository, not TypeScript 4 and Node 20', () => {
    expect(caretAdmits(sdk.devDependencies.typescript, json('node_modules/typescript/package.json').version)).toBe(true);
    expect(sdk.devDependencies['@types/node']).toBe('^22');
  });
});

test('the Python SDK accepts the pinned pulumi', () => {
  const pyproject = readFileSync(join(root, 'sdk', 'python', 'pyproject.toml'), 'utf8');
  expect(pyproject).toMatch(/"pulumi>=3\.\d+\.0,<4\.0\.0"/);
  const min = /"pulumi>=(3\.\d+\.0),<4\.0\.0"/.exec(pyproject)![1];
  expect(caretAdmits(`^${min}`, pkg.dependencies['@pulumi/pulumi'])).toBe(true);
});

describe('the schema', () => {
  test('has no pluginDownloadURL in this checkout', () => {
    expect(json('schema.json').pluginDownloadURL).toBeUndefined();
    expect(microsegSchema().pluginDownloadURL).toBeUndefined();
  });

  test('carries the download URL given at package time', () => {
    expect(microsegSchema({ pluginDownloadURL: 'https://example.test/microseg/releases/' }).pluginDownloadURL).toBe('https://example.test/microseg/releases/');
  });
});

describe('the examples', () => {
  test('name no plugin path in their Pulumi.yaml: the plugin comes from the plugin cache', () => {
    for (const example of readdirSync(join(root, 'examples'))) {
      let project: string;
      try {
        project = readFileSync(join(root, 'examples', example, 'Pulumi.yaml'), 'utf8');
      } catch {
        continue;
      }
      expect({ example, plugins: /^plugins:/m.test(project) }).toEqual({ example, plugins: false });
    }
  });

  test('vcci-app is an ordinary TypeScript project depending on the SDK package at this version', () => {
    const app = json('examples/vcci-app/package.json');
    expect(app.main).toBe('index.ts');
    expect(caretAdmits(app.dependencies['@microseg/pulumi'], pkg.version)).toBe(true);
    const index = readFileSync(join(root, 'examples', 'vcci-app', 'index.ts'), 'utf8');
    expect(index).toMatch(/^import \* as microseg from '@microseg\/pulumi';$/m);
    expect(index).toMatch(/^export default async function /m);
  });
});
