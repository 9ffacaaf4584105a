import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { buildWorld, loadTopology, runExpectations, type ExpectationResult, type TopologyProblem } from '../topology';
import { json, service } from './format';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, type CliIo } from './io';

export interface TestOptions {
  /** Print one JSON document instead of text. */
  json?: boolean;
}

/** The outcome of one topology file. */
export interface FileReport {
  file: string;
  /** `invalid` when the file (or its world) has problems and no expectation was trusted. */
  status: 'passed' | 'failed' | 'invalid';
  problems: TopologyProblem[];
  warnings: TopologyProblem[];
  results: {
    path: string;
    from: string;
    to: string;
    protocol: string;
    port?: number;
    expect: string;
    rule?: string;
    sourceRule?: string;
    destinationRule?: string;
    verdict: string;
    decidedBy: string;
    /** What each firewall side applied: `policy/rule`, `default` or `none`. */
    decidedAtSource: string;
    decidedAtDestination: string;
    passed: boolean;
    reason?: string;
  }[];
}

/** Loads, builds and evaluates one topology file; never throws for user errors. */
export async function testFile(file: string, io: CliIo): Promise<FileReport> {
  const report: FileReport = { file, status: 'invalid', problems: [], warnings: [], results: [] };
  let text: string;
  try {
    text = await readFile(path.resolve(io.cwd, file), 'utf8');
  } catch (err) {
    report.problems.push({ path: '(file)', message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}` });
    return report;
  }
  const loaded = loadTopology(text);
  if (!loaded.ok) {
    report.problems = loaded.problems;
    return report;
  }
  const built = buildWorld(loaded.topology);
  report.warnings = [...loaded.topology.warnings, ...built.warnings];
  report.problems = built.problems;
  const { results, problems } = runExpectations(built.world, loaded.topology.expectations);
  report.problems.push(...problems);
  report.results = results.map(toResultRow);
  if (report.problems.length > 0) return report;
  report.status = results.every((r) => r.passed) ? 'passed' : 'failed';
  return report;
}

function toResultRow(r: ExpectationResult): FileReport['results'][number] {
  const e = r.expectation;
  return {
    path: e.path,
    from: e.fromLabel,
    to: e.toLabel,
    protocol: e.protocol,
    ...(e.port !== undefined ? { port: e.port } : {}),
    expect: e.expect,
    ...(e.rule !== undefined ? { rule: e.rule } : {}),
    ...(e.sourceRule !== undefined ? { sourceRule: e.sourceRule } : {}),
    ...(e.destinationRule !== undefined ? { destinationRule: e.destinationRule } : {}),
    verdict: r.verdict,
    decidedBy: r.decidedBy,
    decidedAtSource: r.sourceRule,
    decidedAtDestination: r.destinationRule,
    passed: r.passed,
    ...(r.reason !== undefined ? { reason: r.reason } : {}),
  };
}

/**
 * `microseg test FILE...`: evaluates every expectation of every file. Exit 0 when all pass, 1 when any
 * fails, 2 when any file is invalid (its problems are printed with their paths; other files still run).
 */
export async function runTest(files: readonly string[], options: TestOptions, io: CliIo): Promise<number> {
  const reports: FileReport[] = [];
  for (const f of files) reports.push(await testFile(f, io));
  const code = reports.some((r) => r.status === 'invalid') ? EXIT_USAGE : reports.some((r) => r.status === 'failed') ? EXIT_FAILED : EXIT_OK;
  if (options.json) {
    io.stdout(json({ ok: code === EXIT_OK, files: reports }));
    return code;
  }
  for (const r of reports) printReport(r, io);
  if (reports.length > 1) {
    const count = (s: FileReport['status']) => reports.filter((r) => r.status === s).length;
    io.stdout(`\n${reports.length} files: ${count('passed')} passed, ${count('failed')} failed, ${count('invalid')} invalid\n`);
  }
  return code;
}

function printReport(r: FileReport, io: CliIo): void {
  io.stdout(`${r.file}\n`);
  for (const w of r.warnings) io.stderr(`${r.file}: warning: ${w.path}: ${w.message}\n`);
  for (const p of r.problems) io.stderr(`${r.file}: error: ${p.path}: ${p.message}\n`);
  const width = Math.max(0, ...r.results.map((x) => `${x.from} → ${x.to} ${service(x.protocol, x.port)}`.length));
  for (const x of r.results) {
    const flow = `${x.from} → ${x.to} ${service(x.protocol, x.port)}`.padEnd(width);
    const got = `${x.verdict} by ${x.decidedBy}`;
    if (x.passed) io.stdout(`  PASS  ${flow}  ${got}\n`);
    else {
      const sides = (x.reason ?? '').split('; ').filter((m) => m.includes(' firewall, got '));
      io.stdout(`  FAIL  ${flow}  ${got}; expected ${x.expect}${x.rule ? ` by ${x.rule}` : ''}${sides.length ? `; ${sides.join('; ')}` : ''} (${x.path})\n`);
    }
  }
  const passed = r.results.filter((x) => x.passed).length;
  const failed = r.results.length - passed;
  if (r.status === 'invalid') io.stdout(`  INVALID: ${r.problems.length} problem${r.problems.length === 1 ? '' : 's'} (see above); expectations not trusted\n`);
  else io.stdout(`  ${passed} passed, ${failed} failed\n`);
}
