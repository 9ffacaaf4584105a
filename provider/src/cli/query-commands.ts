import { connectivityMatrix, effectiveRules, traceflow, type Observation, type World } from '../engine';
import { json, ruleRef, service, table } from './format';
import { parsePort, parseProtocol, requirePort, withStore, type StoreOptions } from './context';
import { CliError, EXIT_FAILED, EXIT_OK, type CliIo } from './io';

/** Queries of the applied policy of one environment: traceflow, effective-rules, members, matrix. */

export interface TraceflowOptions extends StoreOptions {
  from: string;
  to: string;
  protocol?: string;
  port?: string;
  sourcePort?: string;
  /** `allow`, `drop`, `reject` or `deny`: exit 1 when the verdict differs (for scripts). */
  expect?: string;
  json?: boolean;
}

/** Describes an endpoint reference for the header: `prod/shop/orders-0 (10.42.0.3)`. */
function describe(world: World, ref: string): string {
  const r = world.resolve(ref);
  if ('problem' in r) return ref;
  const name = r.lb ? `lb:${r.lb}` : r.ep ? r.ep.name : 'unmanaged';
  return `${name} (${r.ip.s})`;
}

function observationRule(o: Observation): string {
  if (o.policy === undefined) return '';
  return o.policy === 'default' ? 'default rule' : `${o.category}: ${o.policy}/${o.rule}`;
}

function observationDetail(o: Observation): string {
  const parts: string[] = [];
  if (o.translatedSourceIp) parts.push(`source → ${o.translatedSourceIp}`);
  if (o.translatedDestinationIp) parts.push(`destination → ${o.translatedDestinationIp}${o.translatedPort !== undefined ? `:${o.translatedPort}` : ''}`);
  for (const s of o.staged ?? []) parts.push(`staged ${s.policy}/${s.rule} would ${s.action}`);
  if (o.note) parts.push(o.note);
  return parts.join('; ');
}

/** `microseg traceflow`: simulates one flow and explains it component by component. */
export async function runTraceflow(options: TraceflowOptions, io: CliIo): Promise<number> {
  const protocol = parseProtocol(options.protocol);
  const port = parsePort(options.port);
  requirePort(protocol, port);
  const sourcePort = parsePort(options.sourcePort, '--source-port');
  if (options.expect !== undefined && !['allow', 'drop', 'reject', 'deny'].includes(options.expect)) throw new CliError(`--expect: "${options.expect}" is not a verdict; expected allow, drop, reject or deny`);
  return withStore(options, io, async (ctx) => {
    const world = await ctx.world();
    const t = traceflow(world, { source: options.from, destination: options.to, protocol, port, sourcePort });
    if ('problem' in t) throw new CliError(`--${t.problem.path === 'destination' ? 'to' : 'from'}: ${t.problem.message}`);
    const matches = options.expect === undefined || (options.expect === 'deny' ? t.verdict !== 'allow' : t.verdict === options.expect);
    if (options.json) {
      io.stdout(json({ verdict: t.verdict, decidingPolicy: t.decidingPolicy, decidingRule: t.decidingRule, observations: t.observations, ...(options.expect ? { expected: options.expect, matches } : {}) }));
    } else {
      io.stdout(`traceflow ${describe(world, options.from)} → ${describe(world, options.to)} ${service(protocol, port)}\n\n`);
      io.stdout(
        table(
          ['#', 'COMPONENT', 'ACTION', 'RULE', 'SOURCE', 'DESTINATION', 'DETAIL'],
          t.observations.map((o, i) => [String(i + 1), o.component, o.action, observationRule(o), o.sourceIp ?? '', o.destinationIp ?? '', observationDetail(o)]),
        ),
      );
      io.stdout(`\nverdict: ${t.verdict} (decided by ${ruleRef(t.decidingPolicy, t.decidingRule)})\n`);
      if (!matches) io.stderr(`microseg: expected ${options.expect}, got ${t.verdict}\n`);
    }
    return matches ? EXIT_OK : EXIT_FAILED;
  });
}

/** `microseg effective-rules TARGET`: rules enforced on a workload's pods or a VM's interfaces, in order. */
export async function runEffectiveRules(target: string, options: StoreOptions & { json?: boolean }, io: CliIo): Promise<number> {
  return withStore(options, io, async (ctx) => {
    const rules = effectiveRules(await ctx.world(), target);
    if ('problem' in rules) throw new CliError(rules.problem.message);
    // The quarantine expansion sorts before every priority; -Infinity is not JSON.
    const rows = rules.map((r) => ({ ...r, policyPriority: Number.isFinite(r.policyPriority) ? r.policyPriority : Number.MIN_SAFE_INTEGER }));
    if (options.json) {
      io.stdout(json({ target, rules: rows }));
      return EXIT_OK;
    }
    if (rows.length === 0) {
      io.stdout(`no rules apply to ${target}; every flow gets the default rule (${(await ctx.world()).defaultAction})\n`);
      return EXIT_OK;
    }
    io.stdout(
      table(
        ['ENFORCEMENT POINT', 'DIRECTION', 'CATEGORY', 'POLICY', 'PRIORITY', 'RULE', 'ACTION', 'SOURCES', 'DESTINATIONS', 'SERVICES', 'FLAGS'],
        rows.map((r) => [
          r.enforcementPoint,
          r.direction,
          r.category,
          r.policy,
          r.policyPriority === Number.MIN_SAFE_INTEGER ? 'first' : String(r.policyPriority),
          r.rule,
          r.action,
          r.sources.join(' ') || 'any',
          r.destinations.join(' ') || 'any',
          r.services.join(' ') || 'any',
          [r.staged ? 'staged' : '', r.disabled ? 'disabled' : ''].filter(Boolean).join(','),
        ]),
      ),
    );
    return EXIT_OK;
  });
}

/** `microseg members GROUP`: resolved members of a SecurityGroup. */
export async function runMembers(group: string, options: StoreOptions & { json?: boolean }, io: CliIo): Promise<number> {
  return withStore(options, io, async (ctx) => {
    const world = await ctx.world();
    if (!world.get('SecurityGroup', group)) throw new CliError(`SecurityGroup "${group}" does not exist in environment "${ctx.environment}"`);
    const m = world.groupMembers(group);
    if (options.json) {
      io.stdout(json({ group, members: m.members, ipBlocks: m.ipBlocks, count: m.members.length }));
      return EXIT_OK;
    }
    if (m.members.length > 0) io.stdout(table(['KIND', 'NAME', 'IP'], m.members.map((x) => [x.kind, x.name, x.ip])));
    for (const b of m.ipBlocks) io.stdout(`ip block ${b}\n`);
    io.stdout(`${m.members.length} member${m.members.length === 1 ? '' : 's'}${m.ipBlocks.length ? `, ${m.ipBlocks.length} IP block${m.ipBlocks.length === 1 ? '' : 's'}` : ''}\n`);
    return EXIT_OK;
  });
}

/** `microseg matrix GROUP...`: verdicts between the members of every ordered pair of groups. */
export async function runMatrix(groups: readonly string[], options: StoreOptions & { protocol?: string; port?: string; json?: boolean }, io: CliIo): Promise<number> {
  const protocol = parseProtocol(options.protocol);
  const port = parsePort(options.port);
  requirePort(protocol, port);
  if (groups.length === 0) throw new CliError('matrix: expected at least one SecurityGroup name');
  return withStore(options, io, async (ctx) => {
    const world = await ctx.world();
    for (const g of groups) if (!world.get('SecurityGroup', g)) throw new CliError(`SecurityGroup "${g}" does not exist in environment "${ctx.environment}"`);
    const cells = connectivityMatrix(world, groups, protocol, port);
    if (options.json) {
      io.stdout(json({ protocol, ...(port !== undefined ? { port } : {}), cells }));
      return EXIT_OK;
    }
    const cell = (from: string, to: string) => {
      const c = cells.find((x) => x.from === from && x.to === to)!;
      return c.verdict === 'empty' ? '-' : `${c.verdict} ${c.allowed}/${c.total}`;
    };
    io.stdout(`${service(protocol, port)}: rows are sources, columns destinations (allowed/total member pairs)\n\n`);
    io.stdout(table(['FROM \\ TO', ...groups], groups.map((f) => [f, ...groups.map((t) => cell(f, t))])));
    return EXIT_OK;
  });
}
