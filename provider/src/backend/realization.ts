import type { RealizationStatus } from '../agent/ports';
import { endpointsOfPoint, pointName, type World } from '../engine';
import type { PropertyMap } from '../provider/values';
import type { Store } from '../store';

/**
 * Realization status as resource outputs: which enforcement points a VirtualMachine or FirewallPolicy
 * affects, and whether their agents report the object's current revision realized. Agents write
 * `RealizationStatus` objects into the store (see agent/store-adapters.ts); this reads them.
 *
 * A point counts as realized for an object written at change-log revision R when its agent reports
 * `realized` from a pass that saw R (`observedRevision >= R`). The agent's own desired revision moves only
 * when the point's ruleset text changes, so it cannot say whether a write that left the ruleset
 * unchanged was seen; the observed revision can.
 */
export const REALIZATION_KIND = 'RealizationStatus';

export type PointState = 'unreported' | 'pending' | 'realized' | 'error';

export interface PointRealization {
  readonly enforcementPoint: string;
  readonly state: PointState;
  readonly desiredRevision?: number;
  readonly realizedRevision?: number;
  readonly error?: string;
  readonly updatedAt?: string;
}

/** Kinds whose outputs carry realization status (and that waitForRealization waits for). */
export const REALIZED_KINDS: readonly string[] = ['VirtualMachine', 'FirewallPolicy'];

/** At most this many points are listed in a FirewallPolicy's `pointsNotRealized`. */
const LISTED = 100;

/** Every stored realization status of an environment, by enforcement point. */
export async function readStatuses(store: Store, environment: string): Promise<Map<string, RealizationStatus>> {
  const objects = await store.list(environment, { kind: REALIZATION_KIND });
  return new Map(objects.map((o) => [o.name, o.spec as unknown as RealizationStatus]));
}

/** The change-log revision of an object's newest write (0 when never logged). */
export async function revisionOf(store: Store, environment: string, kind: string, name: string): Promise<number> {
  const log = await store.changes(environment, { kind, name });
  return log.length ? log[log.length - 1]!.seq : 0;
}

/** Enforcement points an object affects: a VM's interfaces; every point where a policy has a rule. */
export function affectedPoints(world: World, kind: string, name: string): string[] {
  if (kind === 'VirtualMachine') return (endpointsOfPoint(world, `vm:${name}`) ?? []).map(pointName).sort();
  if (kind === 'FirewallPolicy') {
    const out: string[] = [];
    for (const ep of world.membership.endpoints.values()) {
      if (world.rulesAt(ep).all.some((r) => r.policy.name === name)) out.push(pointName(ep));
    }
    return out.sort();
  }
  return [];
}

/** One point's state relative to revision `revision` of the object that affects it. */
export function pointRealization(point: string, status: RealizationStatus | undefined, revision: number): PointRealization {
  if (!status) return { enforcementPoint: point, state: 'unreported' };
  const observed = status.observedRevision ?? status.desiredRevision;
  const state: PointState = observed < revision ? 'pending' : status.state;
  return {
    enforcementPoint: point,
    state,
    desiredRevision: status.desiredRevision,
    realizedRevision: status.realizedRevision,
    ...(status.error !== undefined ? { error: status.error } : {}),
    updatedAt: status.updatedAt,
  };
}

/** The realization of every point an object affects. */
export function realizationOf(world: World, kind: string, name: string, statuses: ReadonlyMap<string, RealizationStatus>, revision: number): PointRealization[] {
  return affectedPoints(world, kind, name).map((p) => pointRealization(p, statuses.get(p), revision));
}

/** The `realization` output of a VirtualMachine or FirewallPolicy. */
export function realizationOutputs(kind: string, points: readonly PointRealization[]): PropertyMap {
  if (kind === 'VirtualMachine') return { realization: points.map((p) => ({ ...p })) } as PropertyMap;
  if (kind === 'FirewallPolicy') {
    const notRealized = points.filter((p) => p.state !== 'realized').map((p) => p.enforcementPoint);
    return { realization: { desiredPointsRealized: points.length, currentPointsRealized: points.length - notRealized.length, pointsNotRealized: notRealized.slice(0, LISTED) } };
  }
  return {};
}

/** The failure message naming the points that did not realize, with their state and error. */
export function describeUnrealized(points: readonly PointRealization[]): string {
  const bad = points.filter((p) => p.state !== 'realized');
  const shown = bad.slice(0, 20).map((p) => `${p.enforcementPoint} (${p.state}${p.error !== undefined ? `: ${p.error}` : ''})`);
  return `${bad.length} of ${points.length} enforcement point${points.length === 1 ? '' : 's'} did not realize: ${shown.join(', ')}${bad.length > shown.length ? `, and ${bad.length - shown.length} more` : ''}`;
}
