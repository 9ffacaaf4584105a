/**
 * The generated SDKs compile in their own language: scripts/check-sdks.sh runs tsc on sdk/nodejs,
 * imports and byte-compiles sdk/python in .tools/venv, and builds and vets the sdk/go module.
 * Cold (new venv, empty Go module cache) this takes minutes; steady state a few seconds per language.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './harness';

const script = join(ROOT, 'scripts', 'check-sdks.sh');

function check(lang: string): string {
  try {
    return execFileSync('bash', [script, lang], {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PATH: `${join(ROOT, '.tools', 'bin')}:${process.env.PATH ?? ''}` },
    });
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`scripts/check-sdks.sh ${lang} failed:\n${err.stdout ?? ''}${err.stderr ?? err.message}`);
  }
}

test.each(['nodejs', 'python', 'go'])('the generated %s SDK compiles', (lang) => {
  check(lang);
}, 900_000);
