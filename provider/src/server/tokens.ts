/**
 * API tokens: `mseg_<id>_<secret>`. Only the SHA-256 of the secret is stored (in the store's system
 * environment, so every replica sees the same tokens); the id is public and names the token in the audit
 * log and in messages, the secret never leaves the creating command's output.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Store } from '../store';
import { isRole, type Principal, type Role } from './roles';

/** The environment holding server-wide records; refused as a user environment by the API. */
export const SYSTEM_ENVIRONMENT = 'microseg.system';
const TOKEN_KIND = 'Token';
const TOKEN = /^mseg_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$/;

/** The public id and the secret of a well-formed token (the secret is base64url, so it may hold `_` itself). */
export function parseToken(token: string): { id: string; secret: string } | undefined {
  const m = TOKEN.exec(token);
  return m ? { id: m[1]!, secret: m[2]! } : undefined;
}

export interface CreatedToken {
  /** The full token: shown once. */
  readonly token: string;
  readonly id: string;
  readonly role: Role;
  readonly namespaces: readonly string[];
}

const hash = (secret: string) => createHash('sha256').update(secret).digest('hex');

export async function createToken(store: Store, options: { role: Role; namespaces?: readonly string[]; description?: string }): Promise<CreatedToken> {
  const id = randomBytes(9).toString('base64url').toLowerCase().replace(/[^a-z0-9]/g, '0').slice(0, 12).padEnd(12, '0');
  const secret = randomBytes(32).toString('base64url');
  const namespaces = [...(options.namespaces ?? [])];
  await store.apply(SYSTEM_ENVIRONMENT, [
    {
      op: 'put',
      kind: TOKEN_KIND,
      name: id,
      spec: { sha256: hash(secret), role: options.role, namespaces, ...(options.description ? { description: options.description } : {}), createdAt: new Date().toISOString() },
      expectedRevision: 0,
    },
  ]);
  return { token: `mseg_${id}_${secret}`, id, role: options.role, namespaces };
}

/** Removes a token; later requests with it get 401 (after the verifier's cache, at most `cacheMs`). */
export async function revokeToken(store: Store, id: string): Promise<void> {
  await store.apply(SYSTEM_ENVIRONMENT, [{ op: 'delete', kind: TOKEN_KIND, name: id }]);
}

/** Checks bearer tokens against the store, caching verified ones briefly (each request is one lookup otherwise). */
export class TokenVerifier {
  private readonly cache = new Map<string, { principal: Principal | undefined; until: number }>();
  constructor(
    private readonly store: Store,
    private readonly cacheMs = 5000,
  ) {}

  /** The principal of a token, or undefined when it is malformed, unknown or wrong. */
  async verify(token: string): Promise<Principal | undefined> {
    const m = TOKEN.exec(token);
    if (!m) return undefined;
    const cacheKey = hash(token);
    const hit = this.cache.get(cacheKey);
    if (hit && hit.until > Date.now()) return hit.principal;
    const [, id, secret] = m;
    const o = await this.store.get(SYSTEM_ENVIRONMENT, TOKEN_KIND, id);
    let principal: Principal | undefined;
    if (o && typeof o.spec.sha256 === 'string' && typeof o.spec.role === 'string' && isRole(o.spec.role)) {
      const want = Buffer.from(o.spec.sha256, 'hex');
      const got = Buffer.from(hash(secret), 'hex');
      if (want.length === got.length && timingSafeEqual(want, got)) {
        principal = {
          tokenId: id,
          role: o.spec.role,
          namespaces: Array.isArray(o.spec.namespaces) ? o.spec.namespaces.map(String) : [],
          ...(typeof o.spec.description === 'string' ? { description: o.spec.description } : {}),
        };
      }
    }
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(cacheKey, { principal, until: Date.now() + this.cacheMs });
    return principal;
  }
}
