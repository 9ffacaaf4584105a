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
  waitForRealization: z
    .boolean()
    .optional()
    .describe('When true, creating or updating a VirtualMachine or FirewallPolicy waits until every enforcement point it affects reports the new revision realized (microseg agent), within the operation\'s customTimeouts (default 5 minutes), and fails listing the points that did not realize. Default false.'),
});

export type ProviderConfig = z.output<typeof providerConfig>;
