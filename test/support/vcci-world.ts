import * as path from 'node:path';
import * as pulumi from '@pulumi/pulumi';
import { World } from '../../provider/src/engine';
import { identityOf, isKind, type Kind } from '../../provider/src/model';

/**
 * The flagship example's objects as a World, from the program itself (examples/vcci-app/index.ts): the
 * program runs under Pulumi's mocks, every resource's inputs are recorded and upserted into a World in
 * declaration order, so the kernel test checks exactly what `npm run demo` deploys.
 */
export async function vcciWorld(config: Record<string, string> = {}): Promise<World> {
  const recorded: { kind: Kind; inputs: Record<string, unknown> }[] = [];
  pulumi.runtime.setAllConfig(Object.fromEntries(Object.entries(config).map(([k, v]) => [`project:${k}`, v])));
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        const kind = args.type.replace(/^microseg:index:/, '');
        if (isKind(kind)) recorded.push({ kind, inputs: args.inputs as Record<string, unknown> });
        return { id: `${args.name}-id`, state: args.inputs };
      },
      call(args) {
        // Invokes only feed the example's outputs, which this world does not need.
        if (args.token.endsWith('traceflow')) return { observations: [], verdict: 'allow', decidingPolicy: '', decidingRule: '' };
        if (args.token.endsWith('getConnectivityMatrix')) return { cells: [] };
        return { count: 0, members: [] };
      },
    },
    'vcci-app',
    'kernel',
  );
  // The compiled program (scripts/setup.sh builds dist/), as the e2e suites load it: the generated SDK's
  // lazy exports do not survive jest's own TypeScript transform.
  const { default: program } = require(path.join(__dirname, '..', '..', 'dist', 'examples', 'vcci-app', 'index.js')) as { default: () => Promise<Record<string, unknown>> };
  const outputs = await program();
  // Wait for every registration: resolving the outputs waits for the resources they depend on.
  await new Promise<void>((resolve) => pulumi.output(outputs).apply(() => resolve()));
  const w = new World({ defaultAction: 'drop' });
  for (const r of recorded) {
    const problems = w.upsert(r.kind, identityOf(r.kind, r.inputs as { name?: string }), r.inputs);
    const errors = problems.filter((p) => p.severity !== 'warning');
    if (errors.length) throw new Error(`${r.kind}: ${JSON.stringify(errors)}`);
  }
  return w;
}
