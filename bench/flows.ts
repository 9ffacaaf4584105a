/**
 * Flow-record benchmark. Run: node dist/bench/flows.js [--records 100000] [--batch 500]
 * Ingests N flow records into a fresh SQLite store in agent-sized batches (each batch one transaction
 * with the retention check, as `microseg agent` writes them), then times the queries the CLI and the
 * page make: by rule, by workload pair (source and destination IPs), by verdict in a window, newest
 * 500, and the aggregation by workload. Prints a table and JSON.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openSqliteStore, type FlowRecord } from '../provider/src/store';
import { ruleHitStats, ruleHitStatsOf } from '../provider/src/visibility/flows';

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};

const N = arg('records', 100_000);
const BATCH = arg('batch', 500);
const RULES = 200;
const PODS = 2000;

/** Deterministic estate: PODS sources and destinations in 10.x, RULES rules, one drop in ten. */
function record(i: number, now: number): FlowRecord {
  const src = i % PODS;
  const dst = (i * 7 + 3) % PODS;
  const drop = i % 10 === 0;
  return {
    id: `vm:p${dst}#0|in|tcp|10.1.${src >> 8}.${src & 255}:${30000 + (i % 30000)}>10.2.${dst >> 8}.${dst & 255}:443|ct${i}`,
    point: `pod:c1/ns/p${dst}`,
    direction: 'in',
    protocol: 'tcp',
    sourceIp: `10.1.${src >> 8}.${src & 255}`,
    sourcePort: 30000 + (i % 30000),
    destinationIp: `10.2.${dst >> 8}.${dst & 255}`,
    destinationPort: 443,
    verdict: drop ? 'drop' : 'allow',
    rule: drop ? 'default' : `app/r${i % RULES}`,
    firstSeen: new Date(now - (N - i) * 10).toISOString(),
    lastSeen: new Date(now - (N - i) * 10 + 5).toISOString(),
    packets: 10 + (i % 50),
    bytes: 1000 + (i % 5000),
  };
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'microseg-bench-flows-'));
  const store = await openSqliteStore({ dataDir: dir });
  const now = Date.now();
  try {
    const t0 = performance.now();
    for (let i = 0; i < N; i += BATCH) await store.recordFlows('bench', Array.from({ length: Math.min(BATCH, N - i) }, (_, k) => record(i + k, now)), { maxCount: N });
    const ingestMs = performance.now() - t0;
    const time = async <T>(fn: () => Promise<T>, runs = 5): Promise<{ ms: number; result: T }> => {
      let result!: T;
      const ms: number[] = [];
      for (let r = 0; r < runs; r++) {
        const s = performance.now();
        result = await fn();
        ms.push(performance.now() - s);
      }
      return { ms: ms.sort((a, b) => a - b)[Math.floor(runs / 2)]!, result };
    };
    const byRule = await time(() => store.flows('bench', { rule: 'app/r17' }));
    const byPair = await time(() => store.flows('bench', { sourceIps: ['10.1.0.5'], destinationIps: ['10.2.0.38'] }));
    const dropsLastHour = await time(() => store.flows('bench', { verdict: 'drop', since: new Date(now - 3600_000).toISOString(), limit: 500 }));
    const newest = await time(() => store.flows('bench', { limit: 500 }));
    // Rule statistics as `microseg rule-stats` and the server compute them (summed in SQL), and as they were
    // computed before (every record of the window read, summed in JavaScript), for the comparison.
    const stats = await time(async () => ruleHitStatsOf(await store.ruleStats('bench', { since: new Date(now - 86_400_000).toISOString() })), 3);
    const statsJs = await time(async () => ruleHitStats(await store.flows('bench', { since: new Date(now - 86_400_000).toISOString() })), 3);
    // Equal but for the order of the per-point keys (the store sorts them).
    const canonical = (rows: typeof stats.result) => JSON.stringify(rows.map((r) => ({ ...r, points: Object.fromEntries(Object.entries(r.points).sort()) })));
    if (canonical(stats.result) !== canonical(statsJs.result)) throw new Error('rule statistics in SQL differ from those in JavaScript');
    const retention = await time(() => store.recordFlows('bench', [record(N, now)], { maxCount: N }), 3);
    const dbBytes = fs.statSync(path.join(dir, 'microseg.db')).size + (fs.existsSync(path.join(dir, 'microseg.db-wal')) ? fs.statSync(path.join(dir, 'microseg.db-wal')).size : 0);
    const rows: [string, string, string][] = [
      ['ingest', `${N} records in batches of ${BATCH}`, `${(ingestMs / 1000).toFixed(2)} s (${Math.round(N / (ingestMs / 1000))} records/s)`],
      ['query by rule', `${byRule.result.length} records`, `${byRule.ms.toFixed(1)} ms`],
      ['query by workload pair', `${byPair.result.length} records`, `${byPair.ms.toFixed(1)} ms`],
      ['drops in the last hour (limit 500)', `${dropsLastHour.result.length} records`, `${dropsLastHour.ms.toFixed(1)} ms`],
      ['newest 500', `${newest.result.length} records`, `${newest.ms.toFixed(1)} ms`],
      ['rule statistics, 24 h window (SQL GROUP BY)', `${stats.result.length} rules`, `${stats.ms.toFixed(1)} ms`],
      ['  the same summed in JavaScript (before)', `${statsJs.result.length} rules`, `${statsJs.ms.toFixed(1)} ms`],
      ['one more batch at the count limit (retention prunes)', '1 record', `${retention.ms.toFixed(1)} ms`],
      ['store size', '', `${(dbBytes / 1048576).toFixed(1)} MiB`],
    ];
    const w = [0, 1, 2].map((c) => Math.max(...rows.map((r) => r[c]!.length)));
    for (const r of rows) process.stdout.write(`${r.map((c, i) => c.padEnd(w[i]!)).join('  ')}\n`);
    process.stdout.write(
      JSON.stringify({ records: N, batch: BATCH, ingestMs, recordsPerSecond: N / (ingestMs / 1000), byRuleMs: byRule.ms, byPairMs: byPair.ms, dropsLastHourMs: dropsLastHour.ms, newestMs: newest.ms, ruleStatsMs: stats.ms, ruleStatsJsMs: statsJs.ms, retentionWriteMs: retention.ms, storeBytes: dbBytes }) + '\n',
    );
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

void main();
