import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { version } from '../../../provider/src/version';

const root = join(__dirname, '..', '..', '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string; dependencies: Record<string, string>; engines: { node: string } };
const versions = readFileSync(join(root, 'scripts', 'versions.sh'), 'utf8');
const pinned = (name: string) => versions.match(new RegExp(`^${name}=(\\S+)$`, 'm'))?.[1];

describe('toolchain pins', () => {
  test('@pulumi/pulumi is pinned to the same version as the Pulumi CLI built from Go modules', () => {
    expect(pkg.dependencies['@pulumi/pulumi']).toBe(pinned('PULUMI_VERSION'));
  });

  test('the Go wrapper module requires pkg/v3 at the pinned Pulumi version', () => {
    const gomod = readFileSync(join(root, 'tools', 'pulumi', 'go.mod'), 'utf8');
    expect(gomod).toContain(`github.com/pulumi/pulumi/pkg/v3 v${pinned('PULUMI_VERSION')}`);
    expect(gomod).toContain(`github.com/pulumi/pulumi/sdk/v3 v${pinned('PULUMI_VERSION')}`);
  });

  test('the provider reports the package version', () => {
    expect(version).toBe(pkg.version);
  });

  test('the project runs on Node 22 or newer', () => {
    expect(pkg.engines.node).toBe('>=22');
    expect(Number(process.versions.node.split('.')[0])).toBeGreaterThanOrEqual(22);
  });
});
