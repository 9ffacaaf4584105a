import { z } from 'zod';

/** Provider configuration (`microseg:<key>` stack config). */
export const providerConfig = z.object({
  dataDir: z.string().optional().describe('Directory of the embedded store; defaults to a directory under the user home.'),
  environment: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'use letters, digits, ".", "_" and "-" (at most 128 characters), starting with a letter or digit')
    .optional()
    .describe('Environment: a namespace of objects inside one store (dev, staging, prod). Defaults to the Pulumi stack name, so a stack per environment needs no setting.'),
  defaultAction: z
    .enum(['allow', 'drop'])
    .optional()
    .describe('Action of the default rule: drop (zero trust) or allow (brownfield roll-outs). Stored with the environment, so the CLI gives the same verdicts; when unset, the environment\'s stored action, else drop.'),
  endpoint: z
    .string()
    .optional()
    .describe('URL of a `microseg serve` server (team mode; several replicas separated by commas). When absent the embedded store on this machine is used.'),
  token: z.string().optional().describe('API token for the server (from `microseg token create`); set it as a secret.'),
  caCert: z.string().optional().describe('PEM text, or a file path, of the CA that signed the server certificate (when not publicly trusted).'),
  waitForRealization: z
    .boolean()
    .optional()
    .describe('When true, creating or updating a VirtualMachine or FirewallPolicy waits until every enforcement point it affects reports the new revision realized (microseg agent), within the operation\'s customTimeouts (default 5 minutes), and fails listing the points that did not realize. Default false.'),
});

/** Configuration keys that are secrets in the schema (and never logged). */
export const providerConfigSecrets: readonly string[] = ['token'];

export type ProviderConfig = z.output<typeof providerConfig>;
