import { functions, providerConfig, providerConfigSecrets, resources } from '../model';
import { buildPulumiSchema, PulumiPackageSpec } from './pulumi-schema';
import { pluginDownloadURL, version } from '../version';

/**
 * microseg's Pulumi package schema, built from the model's single definitions. `version` and
 * `pluginDownloadURL` default to what this build was made with (package.json; the package step's URL).
 */
export function microsegSchema(opts: { version?: string; pluginDownloadURL?: string } = {}): PulumiPackageSpec {
  return buildPulumiSchema({
    version: opts.version ?? version,
    pluginDownloadURL: opts.pluginDownloadURL ?? pluginDownloadURL,
    resources,
    functions,
    providerConfig,
    providerConfigSecrets,
    providerDescription: 'The microseg provider: where the embedded store lives (or which team-mode server it talks to), which environment a stack manages, and the default rule.',
  });
}

/** The schema as checked in (`schema.json`): stable key order, two-space indent, trailing newline. */
export function microsegSchemaJson(opts: { version?: string; pluginDownloadURL?: string } = {}): string {
  return `${JSON.stringify(microsegSchema(opts), null, 2)}\n`;
}
