import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { SecretKeySource } from '../service/secrets';
import { StoreError } from './errors';

/** Name of the key file inside a data directory. */
export const SECRET_KEY_FILE = 'secret.key';

/**
 * The key that encrypts secret-marked values in a store: MICROSEG_SECRET_KEY (32 bytes, base64 or hex)
 * when set, so it can live outside the data directory (a secret manager, CI variables); else
 * `secret.key` in the data directory, created owner-only (0600) the first time a secret is stored; for a
 * store without a directory (in memory), a key that lives as long as the process.
 */
export function secretKeySource(dataDir: string | undefined, env: Readonly<Record<string, string | undefined>> = process.env): SecretKeySource {
  const fromEnv = env.MICROSEG_SECRET_KEY?.trim();
  if (fromEnv) {
    const key = /^[0-9a-fA-F]{64}$/.test(fromEnv) ? Buffer.from(fromEnv, 'hex') : Buffer.from(fromEnv, 'base64');
    if (key.length !== 32) throw new StoreError('INVALID_ARGUMENT', 'MICROSEG_SECRET_KEY must be 32 bytes, as 64 hex digits or base64 (e.g. `openssl rand -base64 32`)');
    return { key: () => key };
  }
  if (dataDir === undefined) {
    let key: Buffer | undefined;
    return { key: (create) => (key ??= create ? randomBytes(32) : undefined) };
  }
  const file = path.join(dataDir, SECRET_KEY_FILE);
  return {
    key: (create) => {
      try {
        return readKey(file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !create) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
          throw err;
        }
      }
      try {
        fs.writeFileSync(file, randomBytes(32).toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new StoreError('IO', `cannot create ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { path: file }, { cause: err });
      }
      // Another process may have won the race: everyone uses the file's key.
      return readKey(file);
    },
  };
}

function readKey(file: string): Buffer {
  const key = Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'base64');
  if (key.length !== 32) throw new StoreError('CORRUPT', `${file} is not a microseg secret key (expected 32 bytes, base64)`, { path: file });
  return key;
}
