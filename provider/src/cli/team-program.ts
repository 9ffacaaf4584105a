/** Argument parsing of the team-mode commands (serve, token, audit); the commands live in team-commands.ts. */
import { Command } from 'commander';
import { runAudit, runServe, runTokenCreate, runTokenRevoke } from './team-commands';
import type { CliIo } from './io';

export function registerTeamCommands(program: Command, io: CliIo, done: (code: number) => void): void {
  const storeOpts = (cmd: Command) =>
    cmd
      .option('--store <url>', 'PostgreSQL store, postgres://user@host:port/db (default: $MICROSEG_STORE)')
      .option('--data-dir <dir>', 'SQLite data directory instead of PostgreSQL (one machine)');

  storeOpts(
    program
      .command('serve')
      .description('serve the backend over HTTP for teams (objects, change log, functions, audit; roles by token)')
      .requiredOption('--listen <host:port>', 'address to listen on, e.g. 127.0.0.1:8443')
      .option('--tls-cert <file>', 'PEM certificate (with --tls-key: serve HTTPS)')
      .option('--tls-key <file>', 'PEM private key')
      .option('--log', 'one JSON log line per request on stderr (tokens are never logged)')
      .option('--flow-retention-days <days>', 'keep the flow records agents post this many days', '7')
      .option('--flow-max-records <n>', 'keep at most this many flow records per environment', '200000')
      .option('--audit-retention-days <days>', 'keep audit records this many days', '400')
      .option('--audit-max-records <n>', 'keep at most this many audit records per environment', '1000000'),
  ).action(async (o: Record<string, unknown>) =>
    done(
      await runServe(
        {
          listen: o.listen as string,
          store: o.store as string | undefined,
          dataDir: o.dataDir as string | undefined,
          tlsCert: o.tlsCert as string | undefined,
          tlsKey: o.tlsKey as string | undefined,
          log: o.log === true,
          flowRetentionDays: o.flowRetentionDays as string,
          flowMaxRecords: o.flowMaxRecords as string,
          auditRetentionDays: o.auditRetentionDays as string,
          auditMaxRecords: o.auditMaxRecords as string,
        },
        io,
      ),
    ),
  );

  const token = program.command('token').description('API tokens of `microseg serve` (stored hashed in the store)');
  storeOpts(
    token
      .command('create')
      .description('create a token and print it once')
      .requiredOption('--role <role>', 'security-admin, app-owner, auditor or agent')
      .option('--namespaces <list>', 'app-owner: namespaces it owns, NAMESPACE or CLUSTER/NAMESPACE, comma-separated')
      .option('--description <text>', 'who or what uses it')
      .option('--json', 'print JSON'),
  ).action(async (o: Record<string, unknown>) =>
    done(
      await runTokenCreate(
        { store: o.store as string | undefined, dataDir: o.dataDir as string | undefined, role: o.role as string, namespaces: o.namespaces as string | undefined, description: o.description as string | undefined, json: o.json === true },
        io,
      ),
    ),
  );
  storeOpts(token.command('revoke').description('revoke a token by its id').argument('<id>', 'token id (the part after mseg_)')).action(async (id: string, o: Record<string, unknown>) =>
    done(await runTokenRevoke(id, { store: o.store as string | undefined, dataDir: o.dataDir as string | undefined }, io)),
  );

  program
    .command('audit')
    .description("a server's audit log of an environment: who changed what, when, to which revision (token from $MICROSEG_TOKEN)")
    .option('--endpoint <url>', 'server URL (default: $MICROSEG_ENDPOINT)')
    .option('--ca-cert <file>', 'CA of the server certificate (default: $MICROSEG_CA_CERT)')
    .option('-e, --environment <name>', 'environment', 'default')
    .option('--limit <n>', 'only the newest N records')
    .option('--kind <kind>', 'only this kind')
    .option('--name <name>', 'only this object')
    .option('--json', 'print JSON')
    .action(async (o: Record<string, unknown>) =>
      done(
        await runAudit(
          { endpoint: o.endpoint as string | undefined, caCert: o.caCert as string | undefined, environment: o.environment as string | undefined, limit: o.limit as string | undefined, kind: o.kind as string | undefined, name: o.name as string | undefined, json: o.json === true },
          io,
        ),
      ),
    );
}
