import { functions, providerConfig, providerConfigSecrets, resources } from '../model';
import { buildPulumiSchema, PulumiPackageSpec } from './pulumi-schema';
import { version } from '../version';

/** microseg's Pulumi package schema, built from the model's single definitions. */
export function microsegSchema(): PulumiPackageSpec {
  return buildPulumiSchema({
    version,
    resources,
    functions,
    providerConfig,
    providerConfigSecrets,
    providerDescription: 'The microseg provider: where the embedded store lives (or which team-mode server it talks to), which environment a stack manages, and the default rule.',
  });
}

/** The schema as checked in (`schema.json`): stable key order, two-space indent, trailing newline. */
export function microsegSchemaJson(): string {
  return `${JSON.stringify(microsegSchema(), null, 2)}\n`;
}
