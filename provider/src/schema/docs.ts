import { microsegSchema } from '.';
import { PulumiPropertySpec } from './pulumi-schema';

/** Renders one Markdown page per resource and function from the schema (itself from the model). */
export function renderReferenceDocs(): Record<string, string> {
  const schema = microsegSchema();
  const files: Record<string, string> = {};
  const typeName = (p: PulumiPropertySpec): string => {
    if (p.$ref) return p.$ref.startsWith('#/types/') ? `[${p.$ref.split(':').pop()}](types.md#${p.$ref.split(':').pop()!.toLowerCase()})` : 'any';
    if (p.type === 'array' && p.items) return `list of ${typeName(p.items)}`;
    if (p.type === 'object' && p.additionalProperties) return `map of ${typeName(p.additionalProperties)}`;
    if (p.oneOf) return p.oneOf.map(typeName).join(' or ');
    return p.type ?? 'any';
  };
  const table = (props: Record<string, PulumiPropertySpec>, required: readonly string[] = []): string => {
    const rows = Object.entries(props).map(([k, p]) => {
      const notes = [required.includes(k) ? 'required' : '', p.replaceOnChanges ? 'replaces on change' : '', p.secret ? 'secret' : '', p.default !== undefined ? `default \`${String(p.default)}\`` : '']
        .filter(Boolean)
        .join(', ');
      return `| \`${k}\` | ${typeName(p)} | ${notes} | ${(p.description ?? '').replace(/\n/g, ' ').replace(/\|/g, '\\|')} |`;
    });
    return ['| property | type | notes | description |', '| --- | --- | --- | --- |', ...rows].join('\n');
  };
  const index: string[] = ['# microseg reference', '', 'Generated from the model by `npm run gen`; do not edit.', '', '## Resources', ''];
  for (const [token, r] of Object.entries(schema.resources)) {
    const name = token.split(':').pop()!;
    index.push(`- [${name}](${name}.md)`);
    const outputs = Object.fromEntries(Object.entries(r.properties).filter(([k]) => !(k in r.inputProperties)));
    files[`docs/reference/${name}.md`] = [
      `# ${name}`, '', `Token: \`${token}\``, '', r.description, '', '## Inputs', '', table(r.inputProperties, r.requiredInputs), '',
      '## Outputs', '', 'All inputs, plus:', '', Object.keys(outputs).length ? table(outputs) : '_none_', '',
    ].join('\n');
  }
  index.push('', '## Functions', '');
  for (const [token, f] of Object.entries(schema.functions)) {
    const name = token.split(':').pop()!;
    index.push(`- [${name}](${name}.md)`);
    files[`docs/reference/${name}.md`] = [
      `# ${name}`, '', `Token: \`${token}\``, '', f.description, '', '## Arguments', '', table(f.inputs.properties, f.inputs.required), '',
      '## Result', '', table(f.outputs.properties, f.outputs.required), '',
    ].join('\n');
  }
  index.push('', '- [Types](types.md)', '- [Provider configuration](provider.md)', '');
  files['docs/reference/README.md'] = index.join('\n');
  files['docs/reference/types.md'] = ['# Types', '', ...Object.entries(schema.types).flatMap(([token, t]) => [`## ${token.split(':').pop()}`, '', t.description ?? '', '', table(t.properties, t.required), '']), ''].join('\n');
  files['docs/reference/provider.md'] = ['# Provider configuration', '', schema.provider.description, '', 'Set with `pulumi config set microseg:<key> <value>`.', '', table(schema.provider.inputProperties), ''].join('\n');
  return files;
}
