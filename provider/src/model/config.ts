import { z } from 'zod';

/** Provider configuration (`microseg:<key>` stack config). */
export const providerConfig = z.object({
  dataDir: z.string().optional().describe('Directory of the embedded store; defaults to a directory under the user home.'),
  environment: z.string().default('default').describe('Environment (stack) name; separates the state of dev, staging and prod in one store.'),
  defaultAction: z.enum(['allow', 'drop']).default('drop').describe('Action of the default rule: drop (zero trust) or allow (brownfield roll-outs).'),
  endpoint: z
    .string()
    .optional()
    .describe('URL of a `microseg serve` server (team mode; several replicas separated by commas). When absent the embedded store on this machine is used.'),
  token: z.string().optional().describe('API token for the server (from `microseg token create`); set it as a secret.'),
  caCert: z.string().optional().describe('PEM text, or a file path, of the CA that signed the server certificate (when not publicly trusted).'),
});

/** Configuration keys that are secrets in the schema (and never logged). */
export const providerConfigSecrets: readonly string[] = ['token'];

export type ProviderConfig = z.output<typeof providerConfig>;
