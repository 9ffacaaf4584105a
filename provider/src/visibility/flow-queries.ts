import type { World } from '../engine';
import type { FlowRecord, Store } from '../store';
import { flowQueryOf, parseFlowTime, type FlowFilter } from './flow-filter';
import { ruleHitStatsOf, rulesNeverHit, type PolicyRuleRef, type RuleHitStats } from './flows';

/**
 * The reads behind `microseg flows` and `microseg rule-stats`, shared by the CLI on a local store and the
 * server's flow routes (which the CLI calls with --endpoint), so both answer the same.
 */

/** Flow records matching a filter, newest first. */
export async function readFlows(store: Store, environment: string, world: World, filter: FlowFilter, now: Date = new Date()): Promise<FlowRecord[]> {
  return store.flows(environment, flowQueryOf(world, filter, now));
}

/** Per-rule statistics of the records last seen in the window from `since` (default 24 h back). */
export async function readRuleStats(store: Store, environment: string, since: string | undefined, now: Date = new Date()): Promise<{ since: string; rules: RuleHitStats[] }> {
  const from = parseFlowTime('since', since ?? '24h', now);
  // Summed in the store (SQL GROUP BY): 100k records in a window cost a query, not a transfer of every record.
  return { since: from, rules: ruleHitStatsOf(await store.ruleStats(environment, { since: from })) };
}

/** Enforced rules no flow record names in the last `days` days: the clean-up candidates. */
export async function readUnusedRules(store: Store, environment: string, world: World, days: number, now: Date = new Date()): Promise<PolicyRuleRef[]> {
  return rulesNeverHit(world, await store.ruleStats(environment, { since: new Date(now.getTime() - days * 8.64e7).toISOString() }));
}
