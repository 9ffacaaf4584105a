import { existsSync, readFileSync, writeFileSync } from 'node:fs';

/**
 * Expects `actual` to equal the golden file at `file`. `MICROSEG_UPDATE_GOLDEN=1` rewrites it instead. A
 * missing golden file fails (it is not created silently): a test whose expectation it would write from the
 * output under test could not fail.
 */
export function expectGolden(file: string, actual: string): void {
  if (process.env.MICROSEG_UPDATE_GOLDEN === '1') writeFileSync(file, actual);
  else if (!existsSync(file)) throw new Error(`golden file ${file} is missing: run the test once with MICROSEG_UPDATE_GOLDEN=1 and review what it writes`);
  expect(actual).toBe(readFileSync(file, 'utf8'));
}
