import type { World } from '../engine';
import type { FlowQuery, FlowRecord } from '../store';
import { ipsOf, parseSince } from './flows';

/**
 * The filters of `microseg flows`, the page's flows table and the server's flow routes, in one place:
 * raw option values (as typed on the command line or sent in a query string) → a store query, with
 * endpoint references resolved against the current world. Each caller words the error its own way
 * (`--since` on the command line, `since` in an HTTP 400).
 */
export interface FlowFilter {
  /** Source: an IP, VM, workload or pod reference (every endpoint of a workload or VM). */
  readonly from?: string;
  readonly to?: string;
  readonly verdict?: string;
  /** `policy/rule` or `default`. */
  readonly rule?: string;
  /** Enforcement point (`vm:NAME#i`, `pod:CLUSTER/NS/POD`). */
  readonly point?: string;
  /** A duration back from now (`90s`, `15m`, `24h`, `7d`) or an ISO time. */
  readonly since?: string;
  readonly until?: string;
  readonly limit?: string;
}

/** The filter keys, in the order their errors are reported. */
const FLOW_FILTER_KEYS = ['from', 'to', 'verdict', 'rule', 'point', 'since', 'until', 'limit'] as const;

/** A filter value that cannot be used; `option` is the filter key (`since`, `from`...). */
export class FlowFilterError extends Error {
  constructor(
    readonly option: (typeof FLOW_FILTER_KEYS)[number],
    readonly problem: string,
  ) {
    super(`${option}: ${problem}`);
  }
}

const VERDICTS: readonly FlowRecord['verdict'][] = ['allow', 'drop', 'reject'];

/** Parses a time filter: a duration back from `now` or an ISO time. */
export function parseFlowTime(option: 'since' | 'until', value: string, now: Date): string {
  const t = parseSince(value, now);
  if (!t) throw new FlowFilterError(option, `"${value}" is neither a duration (90s, 15m, 24h, 7d) nor an ISO-8601 time`);
  return t;
}

/** The store query of a filter; empty values count as absent (an HTML form sends them). */
export function flowQueryOf(world: World, filter: FlowFilter, now: Date = new Date(), defaults: { limit?: number } = {}): FlowQuery {
  const q: { -readonly [K in keyof FlowQuery]: FlowQuery[K] } = {};
  const given = (v: string | undefined): v is string => v !== undefined && v !== '';
  if (given(filter.verdict)) {
    if (!(VERDICTS as readonly string[]).includes(filter.verdict)) throw new FlowFilterError('verdict', `"${filter.verdict}" is not a verdict; expected allow, drop or reject`);
    q.verdict = filter.verdict as FlowRecord['verdict'];
  }
  if (given(filter.rule)) q.rule = filter.rule;
  if (given(filter.point)) q.point = filter.point;
  if (given(filter.since)) q.since = parseFlowTime('since', filter.since, now);
  if (given(filter.until)) q.until = parseFlowTime('until', filter.until, now);
  for (const [option, key] of [
    ['from', 'sourceIps'],
    ['to', 'destinationIps'],
  ] as const) {
    const v = filter[option];
    if (!given(v)) continue;
    const ips = ipsOf(world, v);
    if ('problem' in ips) throw new FlowFilterError(option, ips.problem);
    q[key] = ips;
  }
  if (given(filter.limit)) {
    const n = Number(filter.limit);
    if (!Number.isInteger(n) || n < 1) throw new FlowFilterError('limit', `"${filter.limit}" is not a positive integer`);
    q.limit = n;
  } else if (defaults.limit !== undefined) q.limit = defaults.limit;
  return q;
}
