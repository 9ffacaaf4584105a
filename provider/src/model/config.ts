import { z } from 'zod';

/** Provider configuration (`microseg:<key>` stack config). */
export const providerConfig = z.object({
  dataDir: z.string().optional().describe('Directory of the embedded store; defaults to a directory under the user home.'),
  environment: z.string().default('default').describe('Environment (stack) name; separates the state of dev, staging and prod in one store.'),
  defaultAction: z.enum(['allow', 'drop']).default('drop').describe('Action of the default rule: drop (zero trust) or allow (brownfield roll-outs).'),
});

export type ProviderConfig = z.output<typeof providerConfig>;
