import { traceflow, type FlowProtocol, type World } from '../engine';
import type { FlowRecord } from '../store';

/**
 * The compliance report (pure): every distinct flow observed in a window (source, destination, service)
 * against the current policy, and what the staged policies would have blocked. Observed verdicts come
 * from the kernel (flow records); current and staged ones from the engine's traceflow of the same flow.
 */

export interface ReportRow {
  readonly sourceIp: string;
  readonly destinationIp: string;
  readonly protocol: string;
  readonly port?: number;
  /** What the kernel did (the last record's verdict when records disagree) and which rule. */
  readonly observed: FlowRecord['verdict'];
  readonly observedRule: string;
  readonly flows: number;
  readonly lastSeen: string;
  /** What the current policy decides, and by which rule. */
  readonly current: string;
  readonly currentRule: string;
  /** The first staged rule that would decide differently from the current verdict, if any. */
  readonly staged?: { readonly action: string; readonly rule: string };
}

export interface ComplianceReport {
  readonly since: string;
  readonly flows: number;
  readonly distinct: number;
  /** Observed verdict equals the current policy's. */
  readonly compliant: number;
  /** Observed allowed, the current policy denies: traffic that happened and policy now forbids. */
  readonly allowedNowDenied: readonly ReportRow[];
  /** Observed blocked, the current policy allows. */
  readonly blockedNowAllowed: readonly ReportRow[];
  /** Observed allowed, a staged policy would drop or reject it. */
  readonly stagedWouldBlock: readonly ReportRow[];
  /** Flows traceflow cannot evaluate (protocols without ports, unknown addresses). */
  readonly unevaluated: number;
}

const PORTED = new Set(['tcp', 'udp', 'sctp']);

export function complianceReport(world: World, records: readonly FlowRecord[], since: string): ComplianceReport {
  const distinct = new Map<string, { r: FlowRecord; flows: number }>();
  for (const r of records) {
    const key = `${r.sourceIp}|${r.destinationIp}|${r.protocol}|${r.destinationPort ?? ''}`;
    const d = distinct.get(key);
    if (!d) distinct.set(key, { r, flows: 1 });
    else {
      d.flows++;
      if (r.lastSeen > d.r.lastSeen) d.r = r;
    }
  }
  let compliant = 0;
  let unevaluated = 0;
  const allowedNowDenied: ReportRow[] = [];
  const blockedNowAllowed: ReportRow[] = [];
  const stagedWouldBlock: ReportRow[] = [];
  for (const { r, flows } of distinct.values()) {
    if (!PORTED.has(r.protocol) || r.destinationPort === undefined) {
      unevaluated++;
      continue;
    }
    const t = traceflow(world, { source: r.sourceIp, destination: r.destinationIp, protocol: r.protocol as FlowProtocol, port: r.destinationPort });
    if ('problem' in t) {
      unevaluated++;
      continue;
    }
    const stagedHit = t.staged.find((s) => (s.action === 'drop' || s.action === 'reject') !== (t.verdict !== 'allow'));
    const row: ReportRow = {
      sourceIp: r.sourceIp,
      destinationIp: r.destinationIp,
      protocol: r.protocol,
      port: r.destinationPort,
      observed: r.verdict,
      observedRule: r.rule,
      flows,
      lastSeen: r.lastSeen,
      current: t.verdict,
      currentRule: t.decidingPolicy === 'default' ? 'default' : `${t.decidingPolicy}/${t.decidingRule}`,
      ...(stagedHit ? { staged: { action: stagedHit.action, rule: `${stagedHit.policy}/${stagedHit.rule}` } } : {}),
    };
    const observedAllowed = r.verdict === 'allow';
    const nowAllowed = t.verdict === 'allow';
    if (observedAllowed === nowAllowed) compliant++;
    else (observedAllowed ? allowedNowDenied : blockedNowAllowed).push(row);
    if (observedAllowed && stagedHit && stagedHit.action !== 'allow' && stagedHit.action !== 'pass') stagedWouldBlock.push(row);
  }
  return { since, flows: records.length, distinct: distinct.size, compliant, allowedNowDenied, blockedNowAllowed, stagedWouldBlock, unevaluated };
}
