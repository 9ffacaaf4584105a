/**
 * Provider benchmark: `pulumi up` of a 1,000-resource program (VMs, workloads, groups, policies) and a
 * no-op `pulumi preview` of it, on microseg's provider and on a no-op provider of the same stack
 * (bench/noop-provider, package `microsegnoop`), alternated in one run. Real Pulumi CLI through the
 * Automation API, local file backend, fresh state and data directory per measured up.
 *
 * Run (after `bash scripts/setup.sh`, which builds dist/, where both plugins run from):
 *   source scripts/env.sh && node dist/bench/provider.js [--rounds 2] [--resources 1000]
 * Prints a table and writes bench/results/provider.json. Target: microseg adds <= 20% over the no-op provider.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as pulumi from '@pulumi/pulumi';
import { PulumiFn } from '@pulumi/pulumi/automation';
import { inlineStack, testEnv, TestEnv } from '../test/e2e/harness';

/** The repository root, whether this runs from bench/ (swc register hook) or from dist/bench/. */
const ROOT = [join(__dirname, '..'), join(__dirname, '..', '..')].find((d) => existsSync(join(d, 'package.json')) && existsSync(join(d, 'provider', 'bin')))!;
const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};

type Pkg = 'microseg' | 'microsegnoop';

class Res extends pulumi.CustomResource {
  constructor(pkg: Pkg, kind: string, name: string, props: pulumi.Inputs, opts?: pulumi.CustomResourceOptions) {
    super(`${pkg}:index:${kind}`, name, props, opts);
  }
}

/** How the resources are split: 1 cluster, 9 namespaces, then VMs 40%, workloads 30%, groups 20%, policies the rest. */
export function composition(total: number): Record<string, number> {
  const vms = Math.round(total * 0.4);
  const workloads = Math.round(total * 0.3);
  const groups = Math.round(total * 0.2);
  return { KubernetesCluster: 1, Namespace: 9, VirtualMachine: vms, Workload: workloads, SecurityGroup: groups, FirewallPolicy: total - 10 - vms - workloads - groups };
}

/** The same program for both providers; only the package of the tokens differs. */
export function program(pkg: Pkg, total: number): PulumiFn {
  return async () => {
    const n = composition(total);
    const r = (kind: string, name: string, props: pulumi.Inputs) => new Res(pkg, kind, name, { name, ...props });
    const cluster = r('KubernetesCluster', 'prod', {
      podCidr: '10.128.0.0/16',
      serviceCidr: '10.96.0.0/16',
      nodes: [0, 1, 2, 3].map((i) => ({ name: `node-${i}`, ip: `192.168.100.${10 + i}` })),
    });
    const namespaces = Array.from({ length: n.Namespace }, (_, i) => r('Namespace', `ns-${i}`, { cluster: cluster.id, labels: { team: `team-${i % 3}` } }));
    for (let i = 0; i < n.VirtualMachine; i++) {
      r('VirtualMachine', `vm-${i}`, {
        interfaces: [{ ip: `172.16.${Math.floor(i / 200)}.${(i % 200) + 1}` }],
        labels: { app: `app-${i % 50}`, tier: i % 2 === 0 ? 'web' : 'db' },
        host: `esx-${i % 8}`,
      });
    }
    for (let i = 0; i < n.Workload; i++) {
      const ns = namespaces[i % namespaces.length];
      r('Workload', `wl-${i}`, {
        cluster: cluster.id,
        namespace: ns.id.apply((id) => id.split('/').pop()!),
        labels: { app: `app-${i % 50}` },
        replicas: 2,
        ports: [{ name: 'http', port: 8080 }],
      });
    }
    const groups = Array.from({ length: n.SecurityGroup }, (_, i) =>
      r('SecurityGroup', `sg-${i}`, i % 2 === 0 ? { vmSelectors: [{ matchLabels: { app: `app-${i % 50}` } }] } : { podSelectors: [{ podSelector: { matchLabels: { app: `app-${i % 50}` } } }] }),
    );
    for (let i = 0; i < n.FirewallPolicy; i++) {
      const target = groups[(2 * i) % groups.length];
      const from = groups[(2 * i + 1) % groups.length];
      r('FirewallPolicy', `pol-${i}`, {
        priority: 100 + i,
        appliedTo: [target.id],
        rules: [
          { name: 'https', action: 'allow', sources: [{ group: from.id }], destinations: [{ group: target.id }], services: [{ protocol: 'tcp', ports: [443] }] },
          { name: 'ssh', action: 'allow', sources: [{ cidr: '10.0.0.0/8' }], destinations: [{ group: target.id }], services: [{ protocol: 'tcp', ports: [22] }] },
          { name: 'rest', action: 'drop', destinations: [{ group: target.id }] },
        ],
      });
    }
  };
}

interface Run {
  round: number;
  provider: Pkg;
  upSeconds: number;
  previewSeconds: number;
  upChanges: Record<string, number>;
  previewChanges: Record<string, number>;
}

async function measure(pkg: Pkg, total: number, round: number): Promise<Run> {
  const env: TestEnv = testEnv();
  // microseg is the plugin testEnv installed into PULUMI_HOME (what users run); only the no-op comes from PATH.
  env.envVars.PATH = [join(ROOT, 'bench', 'noop-provider'), join(ROOT, '.tools', 'bin'), process.env.PATH ?? ''].join(':');
  try {
    const stack = await inlineStack(env, `${pkg}-${round}`, program(pkg, total));
    const t0 = performance.now();
    const up = await stack.up();
    const t1 = performance.now();
    const preview = await stack.preview();
    const t2 = performance.now();
    if (up.summary.result !== 'succeeded') throw new Error(`${pkg} up: ${up.summary.result}`);
    const upChanges = up.summary.resourceChanges as Record<string, number>;
    if (upChanges.create !== total + 1) throw new Error(`${pkg} up created ${JSON.stringify(upChanges)}; expected ${total + 1}`);
    if (Object.keys(preview.changeSummary).some((k) => k !== 'same')) throw new Error(`${pkg} preview is not a no-op: ${JSON.stringify(preview.changeSummary)}`);
    return { round, provider: pkg, upSeconds: (t1 - t0) / 1000, previewSeconds: (t2 - t1) / 1000, upChanges, previewChanges: preview.changeSummary as Record<string, number> };
  } finally {
    env.cleanup();
  }
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const round3 = (x: number) => Math.round(x * 1000) / 1000;

async function main(): Promise<void> {
  const rounds = arg('rounds', 2);
  const total = arg('resources', 1000);
  const runs: Run[] = [];
  for (let round = 0; round < rounds; round++) {
    // Alternate which provider goes first, so warm caches and machine drift do not favour one.
    const order: Pkg[] = round % 2 === 0 ? ['microseg', 'microsegnoop'] : ['microsegnoop', 'microseg'];
    for (const pkg of order) {
      const run = await measure(pkg, total, round);
      runs.push(run);
      process.stderr.write(`round ${round} ${pkg.padEnd(13)} up ${run.upSeconds.toFixed(2)} s, no-op preview ${run.previewSeconds.toFixed(2)} s\n`);
    }
  }
  const of = (pkg: Pkg, k: 'upSeconds' | 'previewSeconds') => mean(runs.filter((r) => r.provider === pkg).map((r) => r[k]));
  const summary = {
    up: { microseg: round3(of('microseg', 'upSeconds')), noop: round3(of('microsegnoop', 'upSeconds')) },
    preview: { microseg: round3(of('microseg', 'previewSeconds')), noop: round3(of('microsegnoop', 'previewSeconds')) },
  };
  const ratio = { up: round3(summary.up.microseg / summary.up.noop), preview: round3(summary.preview.microseg / summary.preview.noop) };
  const result = {
    benchmark: 'provider',
    date: new Date().toISOString(),
    resources: total,
    composition: composition(total),
    rounds,
    cpus: require('node:os').cpus().length,
    node: process.version,
    seconds: summary,
    ratio,
    msPerResource: {
      up: { microseg: round3((summary.up.microseg * 1000) / total), noop: round3((summary.up.noop * 1000) / total) },
      preview: { microseg: round3((summary.preview.microseg * 1000) / total), noop: round3((summary.preview.noop * 1000) / total) },
    },
    target: 'microseg adds <= 20% over the no-op provider (ratio <= 1.2)',
    meetsTarget: { up: ratio.up <= 1.2, preview: ratio.preview <= 1.2 },
    runs,
  };
  const line = (op: string, m: number, z: number, q: number) => `| ${op.padEnd(16)} | ${m.toFixed(2).padStart(11)} | ${z.toFixed(2).padStart(11)} | ${q.toFixed(2).padStart(5)} | ${((m * 1000) / total).toFixed(1).padStart(13)} |`;
  process.stdout.write(
    [
      `provider benchmark: ${total} resources, ${rounds} rounds alternated (mean seconds)`,
      '| operation        | microseg, s | no-op, s    | ratio | microseg ms/res |',
      '|------------------|-------------|-------------|-------|-----------------|',
      line('pulumi up', summary.up.microseg, summary.up.noop, ratio.up),
      line('no-op preview', summary.preview.microseg, summary.preview.noop, ratio.preview),
      '',
    ].join('\n'),
  );
  const dir = join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'provider.json'), `${JSON.stringify(result, null, 2)}\n`);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`provider benchmark failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
