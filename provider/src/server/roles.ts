/**
 * Roles of team mode and what each may do. Pure: decisions take the principal, the operation and the
 * engine's world, and return the missing permission (or nothing).
 *
 * - security-admin: every kind and category (tiers, quarantine, inventory), token-free of limits.
 * - app-owner: application-category FirewallPolicies and their FirewallRules, and Workloads, only inside
 *   its namespaces; a policy's appliedTo must name SecurityGroups whose members are all pods of those
 *   namespaces (checked against the members at write time), so an app owner cannot widen a policy beyond
 *   its own workloads. Reads and functions are allowed (like the auditor).
 * - auditor: reads, functions, the change log and the audit log; no writes, no previews of writes.
 * - agent: reads, the change log and effective rules (the rulesets of its enforcement points); writes only
 *   realization status and flow records (server/agent-routes.ts, flow-routes.ts), for any point: tokens
 *   carry no enforcement-point scope. Agents do not read flow records (`flows.read`: every other role).
 */
import type { World } from '../engine';

export const ROLES = ['security-admin', 'app-owner', 'auditor', 'agent'] as const;
export type Role = (typeof ROLES)[number];

export function isRole(s: string): s is Role {
  return (ROLES as readonly string[]).includes(s);
}

/** Who is calling: from a verified token. */
export interface Principal {
  /** The token's public id (never the secret). */
  readonly tokenId: string;
  readonly role: Role;
  /** app-owner: namespaces as `namespace` (any cluster) or `cluster/namespace`. */
  readonly namespaces: readonly string[];
  readonly description?: string;
}

/** The operation a route performs; `permission` is what a 403 names. */
export type Operation =
  | { readonly action: 'read' }
  | { readonly action: 'watch' }
  | { readonly action: 'audit' }
  | { readonly action: 'function'; readonly fn: string }
  /** An agent's realization status of an enforcement point (the status subresource). */
  | { readonly action: 'report' }
  /** An agent's flow records of its enforcement points (the flow ingest route). */
  | { readonly action: 'report-flows' }
  /** Flow records and rule statistics (observed traffic: who talks to whom). */
  | { readonly action: 'read-flows' }
  | { readonly action: 'write'; readonly kind: string; readonly name: string; readonly spec?: Record<string, unknown>; readonly existing?: Record<string, unknown>; readonly verb: 'create' | 'update' | 'delete' | 'plan' };

/** The permission string of an operation, as named in 403 messages and the matrix. */
export function permissionOf(op: Operation): string {
  switch (op.action) {
    case 'read':
      return 'objects.read';
    case 'watch':
      return 'changes.watch';
    case 'audit':
      return 'audit.read';
    case 'function':
      return `functions.${op.fn}`;
    case 'report':
      return 'realization.report';
    case 'report-flows':
      return 'flows.report';
    case 'read-flows':
      return 'flows.read';
    case 'write':
      return `objects.${op.verb === 'plan' ? 'preview' : op.verb}:${op.kind}`;
  }
}

const READ_ROLES: readonly Role[] = ['security-admin', 'app-owner', 'auditor', 'agent'];

/** `undefined` when allowed; otherwise why not (one sentence, naming the role and the permission). */
export function authorize(principal: Principal, op: Operation, world: World | undefined): string | undefined {
  const permission = permissionOf(op);
  const deny = (why: string) => `role ${principal.role} lacks permission ${permission}${why ? `: ${why}` : ''}`;
  switch (op.action) {
    case 'read':
    case 'watch':
      return READ_ROLES.includes(principal.role) ? undefined : deny('');
    case 'audit':
      return principal.role === 'security-admin' || principal.role === 'auditor' ? undefined : deny('only security-admin and auditor read the audit log');
    case 'report':
      // Agent tokens are not scoped to enforcement points (a token carries namespaces only): any agent
      // token may report any point of the environment, like a node's kubelet credentials before NodeRestriction.
      return principal.role === 'agent' || principal.role === 'security-admin' ? undefined : deny('only agents report realization status');
    case 'report-flows':
      // Like status reports: any agent token, any point of the environment (tokens carry no point scope).
      return principal.role === 'agent' || principal.role === 'security-admin' ? undefined : deny('only agents report flow records');
    case 'read-flows':
      // Observed traffic is read by people (auditor and above), not by agents: an agent token on a host
      // must not learn who else talks to whom in the estate.
      return principal.role === 'agent' ? deny('agents report flow records but do not read them') : undefined;
    case 'function':
      if (principal.role === 'agent') return op.fn === 'getEffectiveRules' ? undefined : deny('agents may only read effective rules');
      return undefined;
    case 'write':
      if (principal.role === 'security-admin') return undefined;
      if (principal.role !== 'app-owner') return deny(`${principal.role} is read-only`);
      return appOwnerWrite(principal, op, world, deny);
  }
}

function inNamespaces(principal: Principal, cluster: string, namespace: string): boolean {
  return principal.namespaces.some((n) => n === namespace || n === `${cluster}/${namespace}`);
}

function appOwnerWrite(principal: Principal, op: Extract<Operation, { action: 'write' }>, world: World | undefined, deny: (why: string) => string): string | undefined {
  const scope = principal.namespaces.length ? `namespaces ${principal.namespaces.join(', ')}` : 'no namespaces';
  // Both the object as it is and as it will be must be the app owner's: no taking over, no giving away.
  const versions = [op.existing, op.spec].filter((v): v is Record<string, unknown> => v !== undefined);
  switch (op.kind) {
    case 'Workload':
    case 'KubernetesNetworkPolicy':
      // App owners write their namespaces' NetworkPolicies as in Kubernetes (product.md, Team mode).
      for (const v of versions) {
        if (!inNamespaces(principal, String(v.cluster ?? ''), String(v.namespace ?? ''))) return deny(`${op.kind} ${JSON.stringify(op.name)} is in namespace ${String(v.cluster)}/${String(v.namespace)}, outside the token's ${scope}`);
      }
      return undefined;
    case 'FirewallPolicy':
      for (const v of versions) {
        const why = policyScopeProblem(principal, v, world, scope);
        if (why) return deny(`FirewallPolicy ${JSON.stringify(op.name)} ${why}`);
      }
      return undefined;
    case 'FirewallRule':
      for (const v of versions) {
        const policy = String(v.policy ?? '');
        const p = world?.get('FirewallPolicy', policy) as Record<string, unknown> | undefined;
        if (!p) return deny(`its policy ${JSON.stringify(policy)} does not exist`);
        const why = policyScopeProblem(principal, p, world, scope);
        if (why) return deny(`the rule's FirewallPolicy ${JSON.stringify(policy)} ${why}`);
        const groups = Array.isArray(v.appliedTo) ? (v.appliedTo as unknown[]).map(String) : [];
        const outside = groups.map((g) => groupProblem(principal, g, world, scope)).find((x) => x);
        if (outside) return deny(`the rule's appliedTo ${outside}`);
      }
      return undefined;
    default:
      return deny(`app-owners write only application-category FirewallPolicies, their FirewallRules, and Workloads and KubernetesNetworkPolicies in their namespaces, not ${op.kind}`);
  }
}

function policyScopeProblem(principal: Principal, spec: Record<string, unknown>, world: World | undefined, scope: string): string | undefined {
  const category = String(spec.category ?? 'application');
  if (category !== 'application') return `is in category ${category}; app-owners write only application-category policies`;
  const groups = Array.isArray(spec.appliedTo) ? (spec.appliedTo as unknown[]).map(String) : [];
  if (groups.length === 0) return `has no appliedTo, so it would apply everywhere; app-owners must apply policies to groups of their ${scope}`;
  for (const g of groups) {
    const why = groupProblem(principal, g, world, scope);
    if (why) return `appliedTo ${why}`;
  }
  return undefined;
}

function groupProblem(principal: Principal, group: string, world: World | undefined, scope: string): string | undefined {
  if (!world?.get('SecurityGroup', group)) return `SecurityGroup ${JSON.stringify(group)} does not exist`;
  const m = world.groupMembers(group);
  if (m.ipBlocks.length > 0) return `SecurityGroup ${JSON.stringify(group)} holds IP blocks, outside the token's ${scope}`;
  for (const member of m.members) {
    const parts = member.name.split('/');
    if (member.kind !== 'pod' || parts.length < 3 || !inNamespaces(principal, parts[0], parts[1])) {
      return `SecurityGroup ${JSON.stringify(group)} has member ${member.name}, outside the token's ${scope}`;
    }
  }
  return undefined;
}
