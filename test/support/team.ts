/** A team-mode server on a throw-away PostgreSQL, with one token per role, for server and client tests. */
import axios, { type AxiosResponse } from 'axios';
import { startServer, type RunningServer, type ServeOptions } from '../../provider/src/server/serve';
import { createToken } from '../../provider/src/server/tokens';
import type { Role } from '../../provider/src/server/roles';
import { startPostgres, type PostgresCluster } from './postgres';

export interface Team {
  readonly pg: PostgresCluster;
  readonly storeUrl: string;
  readonly server: RunningServer;
  readonly tokens: Record<Role | 'appOwnerPay', string>;
  /** One HTTP call with a token (or none); never throws on a status. */
  call(method: string, path: string, options?: { token?: string | null; body?: unknown; headers?: Record<string, string>; raw?: string }): Promise<AxiosResponse>;
  close(): Promise<void>;
}

/** The key every test server (and replica process, which inherits the environment) encrypts secrets with. */
export function ensureSecretKey(): void {
  process.env.MICROSEG_SECRET_KEY ??= Buffer.alloc(32, 7).toString('base64');
}

export async function startTeam(options: Partial<ServeOptions> = {}): Promise<Team> {
  ensureSecretKey();
  const pg = await startPostgres();
  const storeUrl = await pg.createDatabase('team');
  const server = await startServer({ listen: '127.0.0.1:0', storeUrl, ...options });
  const tokens = {
    'security-admin': (await createToken(server.store, { role: 'security-admin', description: 'tests' })).token,
    'app-owner': (await createToken(server.store, { role: 'app-owner', namespaces: ['c1/shop'] })).token,
    appOwnerPay: (await createToken(server.store, { role: 'app-owner', namespaces: ['pay'] })).token,
    auditor: (await createToken(server.store, { role: 'auditor' })).token,
    agent: (await createToken(server.store, { role: 'agent' })).token,
  };
  return {
    pg,
    storeUrl,
    server,
    tokens,
    call: (method, path, o = {}) => {
      const token = o.token === undefined ? tokens['security-admin'] : o.token;
      return axios.request({
        method,
        url: `${server.url}${path}`,
        validateStatus: () => true,
        headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(o.raw !== undefined || o.body !== undefined ? { 'content-type': 'application/json' } : {}), ...(o.headers ?? {}) },
        ...(o.raw !== undefined ? { data: o.raw, transformRequest: [(d: unknown) => d] } : o.body !== undefined ? { data: o.body } : {}),
      });
    },
    close: async () => {
      await server.close();
      pg.destroy();
    },
  };
}

/** A small shop: one cluster, namespaces shop and pay, a workload in each, groups per namespace and one for all. */
export const SHOP = [
  { kind: 'KubernetesCluster', name: 'c1', spec: { name: 'c1', podCidr: '10.10.0.0/16', serviceCidr: '10.96.0.0/16', nodes: [{ name: 'n1', ip: '192.168.0.1' }] } },
  { kind: 'Namespace', name: 'c1/shop', spec: { name: 'shop', cluster: 'c1' } },
  { kind: 'Namespace', name: 'c1/pay', spec: { name: 'pay', cluster: 'c1' } },
  { kind: 'Workload', name: 'c1/shop/web', spec: { name: 'web', cluster: 'c1', namespace: 'shop', labels: { app: 'web' }, replicas: 2 } },
  { kind: 'Workload', name: 'c1/pay/api', spec: { name: 'api', cluster: 'c1', namespace: 'pay', labels: { app: 'api' } } },
  { kind: 'SecurityGroup', name: 'shop-pods', spec: { name: 'shop-pods', podSelectors: [{ cluster: 'c1', namespaces: ['shop'] }] } },
  { kind: 'SecurityGroup', name: 'pay-pods', spec: { name: 'pay-pods', podSelectors: [{ cluster: 'c1', namespaces: ['pay'] }] } },
  { kind: 'SecurityGroup', name: 'all-pods', spec: { name: 'all-pods', podSelectors: [{ cluster: 'c1' }] } },
] as const;

export async function seedShop(team: Team, env: string): Promise<void> {
  for (const o of SHOP) {
    const r = await team.call('PUT', `/v1/environments/${env}/objects/${o.kind}/${o.name}`, { body: { spec: o.spec } });
    if (r.status !== 201) throw new Error(`seeding ${o.kind}/${o.name}: HTTP ${r.status} ${JSON.stringify(r.data)}`);
  }
}
