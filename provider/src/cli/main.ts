import { Command, CommanderError, Option } from 'commander';
import { version } from '../version';
import { runDelete, runEnvironments, runGet, runList, runPut } from './object-commands';
import { runEffectiveRules, runMatrix, runMembers, runTraceflow } from './query-commands';
import { runExportState, runImportState } from './state-commands';
import { runExport, runImportK8s } from './k8s-commands';
import { runAgent, runHits, runRealization, runRealize } from './realize-commands';
import { runTest } from './test-command';
import { runFlows, runReport, runRuleStats } from './flow-commands';
import { runUi } from './ui-command';
import { runGraph } from './graph-command';
import { runHistory } from './history-command';
import { registerTeamCommands } from './team-program';
import { CliError, EXIT_FAILED, EXIT_OK, EXIT_USAGE, processIo, type CliIo } from './io';
import type { StoreOptions } from './context';

/**
 * The `microseg` command line. Argument parsing lives here (commander); each command is a plain function
 * in its own module taking typed options and a {@link CliIo}, so tests call them in-process.
 */

/** The options every store-backed command accepts. */
function withStoreOptions(cmd: Command): Command {
  return cmd
    .option('--data-dir <dir>', 'data directory of the embedded store (default: $MICROSEG_DATA_DIR, then ~/.microseg)')
    .option('-e, --environment <name>', 'environment (stack) in the store (default: $MICROSEG_ENVIRONMENT, then "default")')
    .addOption(new Option('--default-action <action>', "action of the default rule (default: the environment's stored microseg:defaultAction, then drop)").choices(['drop', 'allow']));
}

function storeOptions(o: Record<string, unknown>): StoreOptions {
  return { dataDir: o.dataDir as string | undefined, environment: o.environment as string | undefined, defaultAction: o.defaultAction as string | undefined };
}

/** Builds the program; `done` receives each command's exit code. */
export function buildProgram(io: CliIo, done: (code: number) => void): Command {
  const program = new Command('microseg');
  program
    .description('Zero-trust micro-segmentation for VMs and Kubernetes pods: test topology files and query the embedded store.')
    .version(version, '-V, --version')
    .exitOverride()
    .showHelpAfterError('(run microseg --help for usage)')
    .configureOutput({
      writeOut: (s) => io.stdout(s),
      writeErr: (s) => io.stderr(s),
      outputError: (s, write) => write(`microseg: ${s.replace(/^error: /, '')}`),
    });

  program
    .command('test')
    .description('load topology files and check their expectations (exit 0 all pass, 1 a failure, 2 an invalid file)')
    .argument('<file...>', 'topology files (YAML)')
    .option('--json', 'print one JSON report')
    .action(async (files: string[], o: { json?: boolean }) => done(await runTest(files, { json: o.json }, io)));

  withStoreOptions(
    program
      .command('traceflow')
      .description('simulate a flow and show which rule decided, component by component')
      .requiredOption('--from <endpoint>', 'source: IP, vm:NAME[#i], workload:CLUSTER/NAMESPACE/NAME or NAMESPACE/NAME, pod:CLUSTER/NAMESPACE/POD (prefix optional)')
      .requiredOption('--to <endpoint>', 'destination: the same forms, or lb:NAME')
      .option('--protocol <protocol>', 'tcp, udp, sctp, icmp or icmpv6', 'tcp')
      .option('--port <port>', 'destination port (required for tcp, udp and sctp)')
      .option('--source-port <port>', 'source port (only affects the load-balancer member choice)')
      .option('--expect <verdict>', 'exit 1 unless the verdict is this (allow, drop, reject, deny)')
      .option('--json', 'print JSON'),
  ).action(async (o: Record<string, unknown>) =>
    done(
      await runTraceflow(
        { ...storeOptions(o), from: o.from as string, to: o.to as string, protocol: o.protocol as string, port: o.port as string | undefined, sourcePort: o.sourcePort as string | undefined, expect: o.expect as string | undefined, json: o.json === true },
        io,
      ),
    ),
  );

  withStoreOptions(program.command('effective-rules').description('rules enforced on a workload or VM, in evaluation order').argument('<target>', 'workload CLUSTER/NAMESPACE/NAME, VM name, pod or IP').option('--json', 'print JSON')).action(
    async (target: string, o: Record<string, unknown>) => done(await runEffectiveRules(target, { ...storeOptions(o), json: o.json === true }, io)),
  );

  withStoreOptions(program.command('members').description('resolved members of a SecurityGroup').argument('<group>', 'SecurityGroup name').option('--json', 'print JSON')).action(
    async (group: string, o: Record<string, unknown>) => done(await runMembers(group, { ...storeOptions(o), json: o.json === true }, io)),
  );

  withStoreOptions(
    program
      .command('matrix')
      .description('connectivity between the members of every pair of groups')
      .argument('<group...>', 'SecurityGroup names')
      .option('--protocol <protocol>', 'tcp, udp, sctp, icmp or icmpv6', 'tcp')
      .option('--port <port>', 'destination port (required for tcp, udp and sctp)')
      .option('--json', 'print JSON'),
  ).action(async (groups: string[], o: Record<string, unknown>) =>
    done(await runMatrix(groups, { ...storeOptions(o), protocol: o.protocol as string, port: o.port as string | undefined, json: o.json === true }, io)),
  );

  withStoreOptions(program.command('get').description('show one stored object (spec and outputs)').argument('<kind>', 'resource kind, e.g. SecurityGroup').argument('<name>', 'backend name').option('--json', 'print JSON')).action(
    async (kind: string, name: string, o: Record<string, unknown>) => done(await runGet(kind, name, { ...storeOptions(o), json: o.json === true }, io)),
  );

  withStoreOptions(program.command('list').description('list stored objects').argument('[kind]', 'only this kind').option('--json', 'print JSON')).action(
    async (kind: string | undefined, o: Record<string, unknown>) => done(await runList(kind, { ...storeOptions(o), json: o.json === true }, io)),
  );

  withStoreOptions(
    program
      .command('put')
      .description('create or replace one object outside Pulumi (validated; shows as drift in pulumi refresh)')
      .argument('<kind>', 'resource kind')
      .argument('<name>', 'backend name (CLUSTER/NAME for a Namespace, CLUSTER/NAMESPACE/NAME for a Workload, POLICY/NAME for a FirewallRule)')
      .requiredOption('--spec <file>', 'JSON or YAML properties, - for stdin')
      .option('--json', 'print JSON'),
  ).action(async (kind: string, name: string, o: Record<string, unknown>) => done(await runPut(kind, name, { ...storeOptions(o), spec: o.spec as string, json: o.json === true }, io)));

  withStoreOptions(program.command('delete').description('delete one object (refused while others reference it)').argument('<kind>', 'resource kind').argument('<name>', 'backend name')).action(
    async (kind: string, name: string, o: Record<string, unknown>) => done(await runDelete(kind, name, storeOptions(o), io)),
  );

  withStoreOptions(
    program
      .command('history')
      .description('the change log of the environment: what changed, when, to which revision, and by whom (newest last)')
      .option('--kind <kind>', 'only this kind')
      .option('--name <name>', 'only this object (its backend name)')
      .option('--limit <n>', 'only the newest N changes')
      .option('--json', 'print JSON'),
  ).action(async (o: Record<string, unknown>) =>
    done(await runHistory({ ...storeOptions(o), kind: o.kind as string | undefined, name: o.name as string | undefined, limit: o.limit as string | undefined, json: o.json === true }, io)),
  );

  program
    .command('environments')
    .description('list the environments of the store with their object counts, default action and owners')
    .option('--data-dir <dir>', 'data directory of the embedded store (default: $MICROSEG_DATA_DIR, then ~/.microseg)')
    .option('--json', 'print JSON')
    .action(async (o: Record<string, unknown>) => done(await runEnvironments({ dataDir: o.dataDir as string | undefined, json: o.json === true }, io)));

  withStoreOptions(
    program.command('export-state').description('write the environment as a state document (JSON)').option('--out <file>', 'file to write (default: stdout)').option('--all-environments', 'every environment of the store'),
  ).action(async (o: Record<string, unknown>) => done(await runExportState({ ...storeOptions(o), out: o.out as string | undefined, allEnvironments: o.allEnvironments === true }, io)));

  withStoreOptions(
    program.command('import-state').description('restore a state document into empty environments').argument('<file>', 'state document, - for stdin').option('--into <environment>', 'restore a one-environment document under this name'),
  ).action(async (file: string, o: Record<string, unknown>) => done(await runImportState(file, { ...storeOptions(o), into: o.into as string | undefined }, io)));

  program
    .command('import-k8s')
    .description('turn Kubernetes manifests (NetworkPolicies; Namespaces, Pods, Deployments... for labels and named ports) into topology-file resources')
    .argument('<file...>', 'YAML manifests (multi-document, kind: List), - for stdin')
    .requiredOption('--cluster <name>', 'KubernetesCluster the objects belong to')
    .option('--namespace <name>', 'namespace of objects without metadata.namespace', 'default')
    .option('--json', 'print the objects as JSON instead of topology YAML')
    .action(async (files: string[], o: { cluster: string; namespace: string; json?: boolean }) => done(await runImportK8s(files, { cluster: o.cluster, namespace: o.namespace, json: o.json }, io)));

  withStoreOptions(
    program
      .command('export')
      .description("the pod side of a cluster's policy as Kubernetes manifests (refused, with reasons, when a verdict cannot be kept)")
      .requiredOption('--cluster <name>', 'KubernetesCluster to export')
      .addOption(new Option('--flavor <flavor>', 'kubernetes: ClusterNetworkPolicy v1alpha2 + NetworkPolicy; antrea: Antrea ClusterNetworkPolicy, ClusterGroup, Egress + NetworkPolicy; calico: projectcalico.org/v3 Tier, GlobalNetworkPolicy, GlobalNetworkSet + NetworkPolicy').default('kubernetes'))
      .option('--pods-only', "accept that ingress from a pod's own node is always admitted (Kubernetes, Antrea and Calico do; microseg may drop it)")
      .option('--host-endpoints', 'flavor calico: also write VM interfaces as HostEndpoints and apply the VM side of the rules to them')
      .option('--topology <file>', 'export from a topology file instead of the store')
      .option('--json', 'print JSON instead of multi-document YAML'),
  ).action(async (o: Record<string, unknown>) =>
    done(await runExport({ ...storeOptions(o), cluster: o.cluster as string, flavor: o.flavor as string, podsOnly: o.podsOnly === true, hostEndpoints: o.hostEndpoints === true, topology: o.topology as string | undefined, json: o.json === true }, io)),
  );

  registerTeamCommands(program, io, done);
  withStoreOptions(
    program
      .command('realize')
      .description('print the nftables ruleset of an enforcement point (dry run: what the agent applies)')
      .requiredOption('--enforcement-point <point>', 'vm:NAME#i, vm:NAME, pod:CLUSTER/NAMESPACE/POD or workload:CLUSTER/NAMESPACE/NAME')
      .addOption(new Option('--format <format>', 'nft text or nft -j JSON').choices(['nft', 'json']).default('nft')),
  ).action(async (o: Record<string, unknown>) => done(await runRealize({ ...storeOptions(o), point: o.enforcementPoint as string, format: o.format as string }, io)));

  withStoreOptions(
    program
      .command('agent')
      .description('apply the enforcement points\' rulesets to this host\'s nftables and keep them realized (root; through microseg-nft over netlink when installed, else nft; $MICROSEG_NFT_WRITER names the writer, =nft forces nft)')
      .requiredOption('--enforcement-point <point...>', 'vm:NAME#i, vm:NAME (every interface), pod:CLUSTER/NAMESPACE/POD')
      .option('--once', 'apply once, print the status and exit (1 unless every point is realized)')
      .option('--interval <ms>', 'report hit counters and flow records at least this often', '10000')
      .option('--no-flows', 'do not read flow records (conntrack and dropped-flow sets)')
      .option('--flow-retention-days <days>', 'local store: keep flow records this many days (with --endpoint the server decides)', '7')
      .option('--flow-max-records <n>', 'local store: keep at most this many flow records per environment', '200000')
      .option('--endpoint <url>', 'team mode: read the desired state from, and report status and flow records to, this `microseg serve` (default: $MICROSEG_ENDPOINT; token from $MICROSEG_TOKEN)')
      .option('--ca-cert <file>', 'CA of the server certificate (default: $MICROSEG_CA_CERT)'),
  ).action(async (o: Record<string, unknown>) =>
    done(
      await runAgent(
        {
          ...storeOptions(o),
          points: o.enforcementPoint as string[],
          once: o.once === true,
          intervalMs: Number(o.interval),
          flows: o.flows !== false,
          flowRetentionDays: o.flowRetentionDays as string,
          flowMaxRecords: o.flowMaxRecords as string,
          ...(o.endpoint !== undefined ? { endpoint: o.endpoint as string } : {}),
          ...(o.caCert !== undefined ? { caCert: o.caCert as string } : {}),
        },
        io,
      ),
    ),
  );

  withStoreOptions(program.command('realization').description('realization status of every enforcement point, as the agents reported it').option('--json', 'print JSON')).action(
    async (o: Record<string, unknown>) => done(await runRealization({ ...storeOptions(o), json: o.json === true }, io)),
  );

  withStoreOptions(
    program
      .command('hits')
      .description('rule hit counters read from the kernel by the agents, per enforcement point and rule')
      .option('--enforcement-point <point>', 'only this point')
      .option('--all', 'include rules without hits')
      .option('--json', 'print JSON'),
  ).action(async (o: Record<string, unknown>) => done(await runHits({ ...storeOptions(o), point: o.enforcementPoint as string | undefined, all: o.all === true, json: o.json === true }, io)));

  withStoreOptions(
    program
      .command('flows')
      .description('flow records the agents read from the kernel, newest first; --by aggregates them (who talks to whom)')
      .option('--from <endpoint>', 'source: IP, VM, workload or pod (every endpoint of a workload or VM)')
      .option('--to <endpoint>', 'destination: the same forms')
      .addOption(new Option('--verdict <verdict>', 'only this verdict').choices(['allow', 'drop', 'reject']))
      .option('--rule <policy/rule>', 'only flows this rule decided (default: the default rule)')
      .option('--since <time>', 'last seen since: a duration back from now (90s, 15m, 24h, 7d) or an ISO time')
      .option('--until <time>', 'last seen until: the same forms')
      .option('--enforcement-point <point>', 'only flows seen at this point (vm:NAME#i, pod:CLUSTER/NS/POD)')
      .option('--limit <n>', 'at most this many records')
      .addOption(new Option('--by <grouping>', 'aggregate by endpoint, workload (workloads and VMs) or security group').choices(['endpoint', 'workload', 'group']))
      .option('--endpoint <url>', 'team mode: read them from this `microseg serve` (default: $MICROSEG_ENDPOINT; token from $MICROSEG_TOKEN)')
      .option('--ca-cert <file>', 'CA of the server certificate (default: $MICROSEG_CA_CERT)')
      .option('--json', 'print JSON'),
  ).action(async (o: Record<string, unknown>) =>
    done(
      await runFlows(
        {
          ...storeOptions(o),
          from: o.from as string | undefined,
          to: o.to as string | undefined,
          verdict: o.verdict as string | undefined,
          rule: o.rule as string | undefined,
          since: o.since as string | undefined,
          until: o.until as string | undefined,
          point: o.enforcementPoint as string | undefined,
          limit: o.limit as string | undefined,
          by: o.by as string | undefined,
          endpoint: o.endpoint as string | undefined,
          caCert: o.caCert as string | undefined,
          json: o.json === true,
        },
        io,
      ),
    ),
  );

  withStoreOptions(
    program
      .command('rule-stats')
      .description('per-rule flows, packets and bytes in a time window, per enforcement point; or the rules never hit')
      .option('--since <time>', 'window start: a duration back from now (90s, 15m, 24h, 7d) or an ISO time', '24h')
      .option('--unused-days <days>', 'list the enforced rules no flow hit in this many days instead')
      .option('--endpoint <url>', 'team mode: read them from this `microseg serve` (default: $MICROSEG_ENDPOINT; token from $MICROSEG_TOKEN)')
      .option('--ca-cert <file>', 'CA of the server certificate (default: $MICROSEG_CA_CERT)')
      .option('--json', 'print JSON'),
  ).action(async (o: Record<string, unknown>) =>
    done(
      await runRuleStats(
        { ...storeOptions(o), since: o.since as string | undefined, unusedDays: o.unusedDays as string | undefined, endpoint: o.endpoint as string | undefined, caCert: o.caCert as string | undefined, json: o.json === true },
        io,
      ),
    ),
  );

  withStoreOptions(
    program
      .command('report')
      .description('compliance report: flows observed in a window against the current policy, and what staged policies would block')
      .option('--since <time>', 'window start: a duration back from now (90s, 15m, 24h, 7d) or an ISO time', '24h')
      .option('--json', 'print JSON'),
  ).action(async (o: Record<string, unknown>) => done(await runReport({ ...storeOptions(o), since: o.since as string | undefined, json: o.json === true }, io)));

  withStoreOptions(
    program
      .command('graph')
      .description('the topology graph (groups, workloads, VMs, observed flows, what the policy allows) as DOT, SVG or PNG')
      .addOption(new Option('--format <format>', 'dot (Graphviz), svg or png (drawn in headless Chromium)').choices(['dot', 'svg', 'png']).default('dot'))
      .option('--output <file>', 'write to this file (required for png)')
      .option('--service <protocol/port>', 'service of the policy edges between groups', 'tcp/8080')
      .option('--since <time>', 'observed flows since: a duration (90s, 15m, 24h, 7d) or an ISO time', '24h')
      .option('--chromium <path>', 'Chromium for svg and png', '/usr/bin/chromium'),
  ).action(async (o: Record<string, unknown>) =>
    done(await runGraph({ ...storeOptions(o), format: o.format as string, output: o.output as string | undefined, service: o.service as string, since: o.since as string, chromium: o.chromium as string }, io)),
  );

  withStoreOptions(
    program
      .command('ui')
      .description('serve the visibility page (topology, policies with hits, traceflow, flows) on loopback')
      .option('--port <port>', 'port (0: any free port)', '8417')
      .option('--host <address>', 'address to listen on', '127.0.0.1'),
  ).action(async (o: Record<string, unknown>) => done(await runUi({ ...storeOptions(o), port: o.port as string, host: o.host as string }, io)));

  return program;
}

/**
 * Runs the CLI with `argv` (without `node` and the script) and returns the exit code. User errors are
 * one line on stderr; only unexpected errors print a stack, and only with MICROSEG_DEBUG=1.
 */
export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  let code = EXIT_OK;
  const program = buildProgram(io, (c) => (code = c));
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' ? EXIT_OK : EXIT_USAGE;
    if (err instanceof CliError) {
      io.stderr(`microseg: ${err.message}\n`);
      return err.exitCode;
    }
    const e = err as Error;
    io.stderr(`microseg: internal error: ${e?.message ?? String(err)}${io.env.MICROSEG_DEBUG ? `\n${e?.stack ?? ''}` : ' (set MICROSEG_DEBUG=1 for details)'}\n`);
    return EXIT_FAILED;
  }
}

if (require.main === module) {
  // A closed pipe (`microseg test ... | head`) is not an error worth a stack trace.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
  void run(process.argv.slice(2), processIo()).then((c) => {
    process.exitCode = c;
  });
}
