/** Plain-text rendering shared by the commands (tables for people, JSON for machines). */

/**
 * Renders rows as a left-aligned table with a header; columns are separated by two spaces and the last
 * column is not padded, so lines carry no trailing blanks.
 */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

/** Pretty JSON with a trailing newline. */
export function json(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}

/** `tcp/8080`, `udp`, `icmp`: how a flow's service is shown. */
export function service(protocol: string, port: number | undefined): string {
  return port === undefined ? protocol : `${protocol}/${port}`;
}

/** `policy/rule`, or `default` for the default rule. */
export function ruleRef(policy: string, rule: string): string {
  return policy === 'default' && rule === 'default' ? 'default' : `${policy}/${rule}`;
}
