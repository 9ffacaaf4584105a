import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { validateSpec } from '../engine';
import { flattenManifests, fromManifest } from '../kubernetes/manifests';
import { identityOf, resourceToken } from '../model';
import { json } from './format';
import { CliError, EXIT_OK, type CliIo } from './io';

/**
 * `microseg import-k8s FILE… --cluster C`: Kubernetes manifests (NetworkPolicies; Namespaces, Pods and
 * pod controllers for their labels and named ports) → the `resources:` of a topology file on stdout,
 * ready to paste next to the cluster's declaration (or `--json`: the objects with their identities).
 * Every object is validated as the provider validates it; nothing is written anywhere.
 */
export async function runImportK8s(files: readonly string[], options: { cluster: string; namespace?: string; json?: boolean }, io: CliIo): Promise<number> {
  const resources: Record<string, { type: string; properties: Record<string, unknown> }> = {};
  const objects: { kind: string; name: string; spec: Record<string, unknown> }[] = [];
  const skipped: string[] = [];
  const problems: string[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = file === '-' ? await io.readStdin() : await readFile(path.resolve(io.cwd, file), 'utf8');
    } catch (err) {
      throw new CliError(`${file}: cannot read: ${(err as Error).message}`);
    }
    const docs = parseAllDocuments(text);
    const parsed: unknown[] = [];
    for (const [i, d] of (Array.isArray(docs) ? docs : [docs]).entries()) {
      if (d.errors.length) problems.push(`${file}: document ${i + 1}: YAML syntax: ${d.errors[0]!.message.split('\n')[0]}`);
      else parsed.push(d.toJS());
    }
    flattenManifests(parsed).forEach((m, i) => {
      const where = `${file}: object ${i + 1}`;
      const r = fromManifest(m, options.cluster, options.namespace);
      if ('skipped' in r) return void skipped.push(`${where}: skipped, ${r.skipped}`);
      if ('problem' in r) return void problems.push(`${where}: ${r.problem.path ? `${r.problem.path}: ` : ''}${r.problem.message}`);
      const { kind, spec } = r.object;
      const checked = validateSpec(kind, spec);
      const name = identityOf(kind, spec as { name?: string; cluster?: string; namespace?: string });
      for (const p of checked.problems) if (p.severity !== 'warning') problems.push(`${where} (${kind} ${name}): ${p.path || '(spec)'}: ${p.message}`);
      if (!checked.ok) return;
      let key = `${kind === 'KubernetesNetworkPolicy' ? 'netpol' : kind.toLowerCase()}-${name.split('/').slice(1).join('-')}`.replace(/[^A-Za-z0-9_-]/g, '-');
      for (let n = 2; resources[key]; n++) key = `${key.replace(/-\d+$/, '')}-${n}`;
      resources[key] = { type: resourceToken(kind), properties: spec };
      objects.push({ kind, name, spec });
    });
  }
  if (problems.length) throw new CliError(`import-k8s: ${problems.length} problem(s):\n  ${problems.join('\n  ')}`);
  for (const s of skipped) io.stderr(`microseg: ${s}\n`);
  if (options.json) io.stdout(json({ objects }));
  else io.stdout(stringify({ resources }, { lineWidth: 0 }));
  return EXIT_OK;
}
