import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { validateSpec } from '../engine';
import { flattenManifests, fromManifest } from '../kubernetes/manifests';
import { identityOf, resourceToken } from '../model';
import type { World } from '../engine';
import { getKubernetesManifests, type Flavor } from '../export/kubernetes';
import { buildWorld, loadTopology } from '../topology';
import { withStore, type StoreOptions } from './context';
import { json } from './format';
import { CliError, EXIT_FAILED, EXIT_OK, type CliIo } from './io';

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

/**
 * `microseg export --cluster C --flavor kubernetes|antrea|calico [--pods-only] [--host-endpoints] [--topology FILE]`: the pod side of a
 * cluster's policy as Kubernetes manifests (multi-document YAML, or `--json`), from the store or from a
 * topology file. Constructs the flavor cannot express keep their verdicts only by refusal: each is listed
 * with its reason and the command exits 1 without printing manifests.
 */
export async function runExport(options: StoreOptions & { cluster: string; flavor: string; podsOnly?: boolean; hostEndpoints?: boolean; topology?: string; json?: boolean }, io: CliIo): Promise<number> {
  if (options.flavor !== 'kubernetes' && options.flavor !== 'antrea' && options.flavor !== 'calico') throw new CliError(`--flavor ${options.flavor}: supported flavors: kubernetes, antrea, calico`);
  const flavor: Flavor = options.flavor;
  const run = (world: World): number => {
    const r = getKubernetesManifests(world, { cluster: options.cluster, flavor, podsOnly: options.podsOnly, hostEndpoints: options.hostEndpoints });
    if (r.refusals.length) {
      throw new CliError(`export refused: ${r.refusals.length} construct(s) cannot be expressed in flavor ${flavor} without changing a verdict:\n  ${r.refusals.map((x) => `${x.construct}: ${x.reason}`).join('\n  ')}`, EXIT_FAILED);
    }
    if (options.json) io.stdout(json({ manifests: r.manifests }));
    else io.stdout(r.manifests.map((m) => stringify(m, { lineWidth: 0 })).join('---\n'));
    return EXIT_OK;
  };
  if (options.topology !== undefined) {
    let text: string;
    try {
      text = await readFile(path.resolve(io.cwd, options.topology), 'utf8');
    } catch (err) {
      throw new CliError(`--topology: cannot read ${options.topology}: ${(err as Error).message}`);
    }
    const loaded = loadTopology(text);
    if (!loaded.ok) throw new CliError(`${options.topology} is invalid:\n  ${loaded.problems.map((p) => `${p.path}: ${p.message}`).join('\n  ')}`);
    const built = buildWorld(loaded.topology);
    if (built.problems.length) throw new CliError(`${options.topology} is invalid:\n  ${built.problems.map((p) => `${p.path}: ${p.message}`).join('\n  ')}`);
    return run(built.world);
  }
  return withStore(options, io, async (ctx) => run(await ctx.world()));
}
