/**
 * The topology as Graphviz DOT (pure): security groups as clusters holding their workloads and VMs,
 * observed flows as solid edges (green allowed, red blocked), what the policy allows between groups as
 * dashed edges. Deterministic: the same topology prints the same bytes, so it diffs well in reviews.
 */

export interface DotNode {
  readonly id: string;
  readonly kind: string;
  readonly label: string;
  readonly groups?: readonly string[];
}

export interface DotEdge {
  readonly source: string;
  readonly target: string;
  readonly origin: 'flow' | 'matrix';
  readonly verdict: string;
  readonly label: string;
}

const q = (s: string) => `"${s.replace(/["\\]/g, '\\$&')}"`;
const COLORS: Record<string, string> = { allow: '#2da44e', drop: '#cf222e', reject: '#cf222e', partial: '#bf8700' };

export function topologyDot(nodes: readonly DotNode[], edges: readonly DotEdge[]): string {
  const lines = ['digraph microseg {', '  graph [rankdir=LR, fontname="Helvetica", compound=true];', '  node [fontname="Helvetica", fontsize=10];', '  edge [fontname="Helvetica", fontsize=8];'];
  const members = nodes.filter((n) => n.kind === 'vm' || n.kind === 'workload');
  const groups = nodes.filter((n) => n.kind === 'group');
  const placed = new Set<string>();
  const nodeLine = (n: DotNode) => `${q(n.id)} [label=${q(n.label)}, shape=${n.kind === 'vm' ? 'box' : 'ellipse'}];`;
  for (const g of groups) {
    const inside = members.filter((m) => m.groups?.[0] === g.label);
    // An anchor node per group: matrix edges join groups, and DOT edges need nodes.
    lines.push(`  subgraph ${q(`cluster_${g.label}`)} {`, `    label=${q(`group ${g.label}`)}; style=rounded; color="#8c959f";`, `    ${q(g.id)} [label="", shape=point, style=invis];`);
    for (const m of inside) (lines.push(`    ${nodeLine(m)}`), placed.add(m.id));
    lines.push('  }');
  }
  for (const m of members) if (!placed.has(m.id)) lines.push(`  ${nodeLine(m)}`);
  for (const e of edges) {
    const color = e.origin === 'matrix' ? '#4fa3ff' : COLORS[e.verdict] ?? '#57606a';
    const group = (id: string) => (id.startsWith('group:') ? `, ${id === e.source ? 'ltail' : 'lhead'}=${q(`cluster_${id.slice(6)}`)}` : '');
    lines.push(`  ${q(e.source)} -> ${q(e.target)} [label=${q(e.label)}, color=${q(color)}, fontcolor=${q(color)}${e.origin === 'matrix' ? ', style=dashed' : ''}${group(e.source)}${group(e.target)}];`);
  }
  lines.push('}');
  return lines.join('\n') + '\n';
}
