import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { StoreError, type StoreErrorCode } from '../../provider/src/store';

/** A fresh temporary directory, removed by `cleanupTempDirs`. */
const made: string[] = [];
export function tempDir(prefix = 'microseg-store-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(d);
  return d;
}
export function cleanupTempDirs(): void {
  for (const d of made.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}

/** Awaits a rejection and checks it is a StoreError with the code; returns it for further checks. */
export async function expectStoreError(p: Promise<unknown>, code: StoreErrorCode): Promise<StoreError> {
  let caught: unknown;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(StoreError);
  expect((caught as StoreError).code).toBe(code);
  return caught as StoreError;
}
