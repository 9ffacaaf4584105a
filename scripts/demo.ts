/**
 * `npm run demo`: brings the flagship example up on a local stack backed by the embedded store, then
 * prints the stack outputs. A second run reports no changes.
 *
 * The example is an ordinary TypeScript Pulumi program (its default export is the program, as the nodejs language
 * host runs it). That host is not available from the Go module proxy, so the very same exported function runs
 * through the Automation API's in-process language runtime, with the example's own Pulumi.yaml and
 * Pulumi.<stack>.yaml (workDir), the real Pulumi CLI and the provider plugin installed in PULUMI_HOME.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { LocalWorkspace, PulumiFn, Stack } from '@pulumi/pulumi/automation';

// Runs compiled (dist/scripts) and from source (tests): the project root is the nearest package.json.
const root = existsSync(join(__dirname, '..', 'package.json')) ? join(__dirname, '..') : join(__dirname, '..', '..');

/** The stack of an example project, its program run in-process; `envVars` override the workspace's environment. */
export async function exampleStack(example: string, stackName: string, opts: { envVars?: Record<string, string>; program?: PulumiFn; workDir?: string } = {}): Promise<Stack> {
  const workDir = opts.workDir ?? join(root, 'examples', example);
  const mod = require(join(root, 'dist', 'examples', example, 'index.js')) as { default: PulumiFn };
  return LocalWorkspace.createOrSelectStack(
    { stackName, projectName: example, program: opts.program ?? mod.default },
    { workDir, envVars: { PULUMI_CONFIG_PASSPHRASE: process.env.PULUMI_CONFIG_PASSPHRASE ?? 'microseg-local', ...opts.envVars } },
  );
}

export async function runExample(example: string, stackName: string, opts: { destroy?: boolean } = {}): Promise<Record<string, unknown>> {
  const stack = await exampleStack(example, stackName);
  if (opts.destroy) {
    await stack.destroy({ onOutput: (s) => process.stdout.write(s) });
    return {};
  }
  const result = await stack.up({ onOutput: (s) => process.stdout.write(s) });
  const outputs = Object.fromEntries(Object.entries(result.outputs).map(([k, v]) => [k, v.value]));
  process.stdout.write(`\nStack outputs (${example}/${stackName}):\n${JSON.stringify(outputs, null, 2)}\n`);
  return outputs;
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const stack = args.find((a) => !a.startsWith('-')) ?? 'dev';
  runExample('vcci-app', stack, { destroy: args.includes('--destroy') }).catch((err: unknown) => {
    process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
