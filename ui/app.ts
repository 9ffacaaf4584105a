// The visibility page: four views over the read-only API of provider/src/ui/handlers.ts. Plain DOM and
// Cytoscape.js (bundled by scripts/build-ui.ts); no framework, nothing fetched but the API.
import cytoscape from 'cytoscape';
import cytoscapeSvg from 'cytoscape-svg';

// `cy.svg()`: `microseg graph --format svg` exports the topology through it.
cytoscape.use(cytoscapeSvg);

interface TopologyNode {
  id: string;
  kind: 'vm' | 'workload' | 'cluster' | 'namespace' | 'group';
  label: string;
  cluster?: string;
  namespace?: string;
  groups?: string[];
  ips?: string[];
}
interface TopologyEdge {
  id: string;
  source: string;
  target: string;
  origin: 'flow' | 'matrix';
  verdict: string;
  label: string;
}
interface Observation {
  component: string;
  action: string;
  category?: string;
  policy?: string;
  rule?: string;
  sourceIp?: string;
  destinationIp?: string;
  translatedSourceIp?: string;
  translatedDestinationIp?: string;
  translatedPort?: number;
  staged?: { policy: string; rule: string; action: string }[];
  note?: string;
}
interface FlowRecord {
  lastSeen: string;
  point: string;
  direction: string;
  protocol: string;
  sourceIp: string;
  sourcePort?: number;
  destinationIp: string;
  destinationPort?: number;
  verdict: string;
  rule: string;
  stagedVerdict?: string;
  stagedRule?: string;
  packets: number;
  bytes: number;
}

const $ = <T extends HTMLElement>(sel: string) => document.querySelector(sel) as T;
const esc = (s: unknown) => String(s ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

// Under `microseg serve` (config.json says so) the page signs in with an API token and calls the server's
// authenticated visibility routes; under `microseg ui` it calls the local /api/ routes without one.
interface Session {
  token: string;
  environment: string;
}
let serverApi: string | undefined;
const TOKEN_KEY = 'microseg.token';
const ENV_KEY = 'microseg.environment';

// The token lives in sessionStorage only (gone with the tab), never in the URL, the page or the console.
function session(): Session | undefined {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const environment = sessionStorage.getItem(ENV_KEY);
  return token && environment ? { token, environment } : undefined;
}

class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The error message of a reply: `{error: "..."}` from `microseg ui`, `{error: {code, message}}` from the server. */
function messageOf(status: number, body: unknown): string {
  const e = (body as { error?: unknown } | undefined)?.error;
  const text = typeof e === 'string' ? e : typeof (e as { message?: unknown })?.message === 'string' ? (e as { message: string }).message : '';
  if (status === 401) return `Not signed in (401): ${text || 'the token was refused'}`;
  if (status === 403) return `Not allowed (403): ${text || 'the token\'s role lacks this permission'}`;
  return text || `request failed (${status})`;
}

async function request<T>(url: string, token?: string): Promise<T> {
  const res = await fetch(url, token ? { headers: { authorization: `Bearer ${token}` }, cache: 'no-store' } : {});
  const body = (await res.json().catch(() => undefined)) as T | undefined;
  if (!res.ok) throw new ApiError(res.status, messageOf(res.status, body));
  return body as T;
}

async function api<T>(path: string, params: Record<string, string> = {}): Promise<T> {
  const q = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== ''));
  let body: T;
  if (serverApi === undefined) body = await request<T>(`${path}?${q}`);
  else {
    const s = session();
    if (!s) throw signOut('Sign in with an API token.');
    const view = path.replace(/^\/api\//, '');
    try {
      body = await request<T>(`${serverApi}/environments/${encodeURIComponent(s.environment)}/visibility/${encodeURIComponent(view)}?${q}`, s.token);
    } catch (err) {
      // A revoked or wrong token: back to the sign-in form, with the server's reason.
      if (err instanceof ApiError && err.status === 401) throw signOut(err.message);
      throw err;
    }
  }
  $('#status').textContent = '';
  return body;
}

function showError(err: unknown): void {
  $('#status').textContent = (err as Error).message;
}

/** Forgets the token and shows the sign-in form with a reason; returns an error for the caller to throw. */
function signOut(reason: string): Error {
  sessionStorage.removeItem(TOKEN_KEY);
  document.body.dataset.signedIn = 'false';
  $('#signin').hidden = false;
  $('#signin-error').textContent = reason;
  $('#session').hidden = true;
  return new Error(reason);
}

async function signIn(token: string, wanted: string): Promise<void> {
  const { environments } = await request<{ environments: string[] }>(`${serverApi}/environments`, token);
  const environment = wanted || environments[0];
  if (!environment) throw new Error('The server has no environments yet.');
  sessionStorage.setItem(TOKEN_KEY, token);
  sessionStorage.setItem(ENV_KEY, environment);
  const select = $<HTMLSelectElement>('#environment');
  select.innerHTML = [...new Set([environment, ...environments])].map((e) => `<option${e === environment ? ' selected' : ''}>${esc(e)}</option>`).join('');
  $('#signin').hidden = true;
  $('#signin-error').textContent = '';
  $('#session').hidden = false;
  document.body.dataset.signedIn = 'true';
}

function formValues(form: HTMLFormElement): Record<string, string> {
  const out: Record<string, string> = {};
  new FormData(form).forEach((v, k) => (out[k] = String(v).trim()));
  return out;
}

function tableHtml(headers: string[], rows: string[][], classes: (string | undefined)[][] = []): string {
  return `<thead><tr>${headers.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r, i) => `<tr>${r.map((c, j) => `<td class="${classes[i]?.[j] ?? ''}">${esc(c)}</td>`).join('')}</tr>`)
    .join('')}</tbody>`;
}

// ------------------------------------------------------------------ topology

let graph: cytoscape.Core | undefined;

const EDGE_COLORS: Record<string, string> = { allow: '#2da44e', drop: '#cf222e', reject: '#cf222e', partial: '#bf8700' };

async function loadTopology(): Promise<void> {
  const v = formValues($<HTMLFormElement>('#topology-form'));
  const [protocol, port] = (v.service || 'tcp/8080').split('/');
  const t = await api<{ nodes: TopologyNode[]; edges: TopologyEdge[] }>('/api/topology', { protocol: protocol ?? 'tcp', port: port ?? '', since: v.since ?? '' });
  const byGroup = v.groupBy !== 'namespace';
  const elements: cytoscape.ElementDefinition[] = [];
  for (const n of t.nodes) {
    if (byGroup && (n.kind === 'cluster' || n.kind === 'namespace')) continue;
    if (!byGroup && n.kind === 'group') continue;
    let parent: string | undefined;
    if (byGroup && (n.kind === 'vm' || n.kind === 'workload') && n.groups?.length) parent = `group:${n.groups[0]}`;
    if (!byGroup && n.kind === 'workload') parent = `namespace:${n.namespace}`;
    if (!byGroup && n.kind === 'namespace' && n.cluster) parent = `cluster:${n.cluster}`;
    elements.push({ data: { id: n.id, label: n.kind === 'group' ? `group ${n.label}` : n.label, kind: n.kind, groups: (n.groups ?? []).join(', '), ...(parent ? { parent } : {}) } });
  }
  const ids = new Set(elements.map((e) => e.data.id));
  for (const e of t.edges) if (ids.has(e.source) && ids.has(e.target)) elements.push({ data: { ...e } });
  graph?.destroy();
  graph = cytoscape({
    container: $('#graph'),
    elements,
    layout: { name: 'cose', animate: false, padding: 20, nodeRepulsion: () => 9000, randomize: false } as cytoscape.LayoutOptions,
    style: [
      { selector: 'node', style: { label: 'data(label)', 'font-size': 10, 'text-valign': 'bottom', 'background-color': '#4fa3ff', width: 22, height: 22 } },
      { selector: 'node[kind = "vm"]', style: { shape: 'round-rectangle', 'background-color': '#8250df' } },
      { selector: 'node[kind = "workload"]', style: { shape: 'ellipse', 'background-color': '#0969da' } },
      { selector: ':parent', style: { 'background-opacity': 0.06, 'border-color': '#8c959f', 'border-width': 1, 'text-valign': 'top', 'font-weight': 'bold', shape: 'round-rectangle' } },
      { selector: 'edge', style: { width: 2, 'curve-style': 'bezier', 'target-arrow-shape': 'triangle', label: 'data(label)', 'font-size': 8, 'text-rotation': 'autorotate' } },
      ...Object.entries(EDGE_COLORS).map(([verdict, color]) => ({ selector: `edge[verdict = "${verdict}"]`, style: { 'line-color': color, 'target-arrow-color': color } })),
      { selector: 'edge[origin = "matrix"]', style: { 'line-style': 'dashed', 'line-color': '#4fa3ff', 'target-arrow-color': '#4fa3ff', width: 1.5 } },
      { selector: 'node:selected', style: { 'border-width': 3, 'border-color': '#fb8500' } },
    ],
  });
  // The graph, for tests and the console (Cytoscape draws on a canvas: no DOM node per element).
  (window as unknown as { microsegGraph?: cytoscape.Core }).microsegGraph = graph;
  graph.on('tap', 'node[kind = "vm"], node[kind = "workload"]', (ev) => void showNode(String(ev.target.id())).catch(showError));
  document.body.dataset.topologyLoaded = String(elements.length);
}

async function showNode(id: string): Promise<void> {
  const d = await api<{ target: string; groups: string[]; rules: { direction: string; category: string; policy: string; rule: string; action: string; staged?: boolean }[]; realization: { point: string; state: string; error?: string }[] }>(
    '/api/endpoint',
    { target: id },
  );
  $('#details').innerHTML = `<h3>${esc(d.target)}</h3>
    <p>Groups: ${esc(d.groups.join(', ') || 'none')}</p>
    <h3>Realization</h3><table>${tableHtml(['POINT', 'STATE', 'ERROR'], d.realization.map((r) => [r.point, r.state, r.error ?? '']))}</table>
    <h3>Effective rules</h3><table id="effective-rules">${tableHtml(
      ['DIR', 'CATEGORY', 'RULE', 'ACTION'],
      d.rules.map((r) => [r.direction, r.category, `${r.policy}/${r.rule}`, `${r.action}${r.staged ? ' (staged)' : ''}`]),
      d.rules.map((r) => [undefined, undefined, undefined, r.action]),
    )}</table>`;
}

// ------------------------------------------------------------------ policies

async function loadPolicies(): Promise<void> {
  const v = formValues($<HTMLFormElement>('#policies-form'));
  const p = await api<{ categories: { category: string; rules: { policy: string; rule: string; action: string; staged: boolean; flows: number; kernelHits: number; lastSeen?: string }[] }[]; default: { flows: number; kernelHits: number } }>('/api/policies', {
    since: v.since ?? '',
  });
  $('#policies').innerHTML =
    p.categories
      .map(
        (c) =>
          `<h3>${esc(c.category)}</h3>${
            c.rules.length
              ? `<table data-category="${esc(c.category)}">${tableHtml(
                  ['POLICY', 'RULE', 'ACTION', 'FLOWS', 'KERNEL HITS', 'LAST SEEN'],
                  c.rules.map((r) => [r.policy, r.rule, `${r.action}${r.staged ? ' (staged)' : ''}`, String(r.flows), String(r.kernelHits), r.lastSeen ?? 'never']),
                  c.rules.map((r) => [undefined, undefined, r.action]),
                )}</table>`
              : '<p class="hint">no rules</p>'
          }`,
      )
      .join('') + `<h3>default rule</h3><p>${p.default.flows} flows, ${p.default.kernelHits} kernel hits</p>`;
}

// ------------------------------------------------------------------ traceflow

let traceGraph: cytoscape.Core | undefined;

async function runTrace(): Promise<void> {
  const v = formValues($<HTMLFormElement>('#traceflow-form'));
  const t = await api<{ verdict: string; decidingPolicy: string; decidingRule: string; observations: Observation[] }>('/api/traceflow', v);
  const deciding = t.decidingPolicy === 'default' ? 'default rule' : `${t.decidingPolicy}/${t.decidingRule}`;
  $('#trace-verdict').innerHTML = `Verdict <span id="verdict" class="${esc(t.verdict)}">${esc(t.verdict)}</span>, decided by <b id="deciding-rule">${esc(deciding)}</b>`;
  const elements: cytoscape.ElementDefinition[] = [];
  t.observations.forEach((o, i) => {
    const rule = o.policy ? (o.policy === 'default' ? 'default rule' : `${o.policy}/${o.rule}`) : o.translatedDestinationIp ?? o.translatedSourceIp ?? '';
    elements.push({ data: { id: `o${i}`, label: `${o.component}\n${o.action}${rule ? `\n${rule}` : ''}`, action: o.action }, position: { x: 120 + i * 190, y: 90 } });
    if (i > 0) elements.push({ data: { id: `e${i}`, source: `o${i - 1}`, target: `o${i}` } });
  });
  traceGraph?.destroy();
  traceGraph = cytoscape({
    container: $('#trace-graph'),
    elements,
    layout: { name: 'preset' },
    userZoomingEnabled: false,
    style: [
      { selector: 'node', style: { shape: 'round-rectangle', width: 160, height: 60, label: 'data(label)', 'text-wrap': 'wrap', 'text-valign': 'center', 'font-size': 10, 'background-color': '#ddf4ff', 'border-width': 1, 'border-color': '#54aeff' } },
      { selector: 'node[action = "drop"], node[action = "reject"]', style: { 'background-color': '#ffebe9', 'border-color': '#cf222e' } },
      { selector: 'edge', style: { width: 2, 'target-arrow-shape': 'triangle', 'curve-style': 'straight' } },
    ],
  });
  traceGraph.fit(undefined, 10);
  $('#trace-table').innerHTML = tableHtml(
    ['#', 'COMPONENT', 'ACTION', 'RULE', 'SOURCE', 'DESTINATION', 'DETAIL'],
    t.observations.map((o, i) => [
      String(i + 1),
      o.component,
      o.action,
      o.policy ? (o.policy === 'default' ? 'default rule' : `${o.category}: ${o.policy}/${o.rule}`) : '',
      o.sourceIp ?? '',
      o.destinationIp ?? '',
      [o.translatedSourceIp && `source → ${o.translatedSourceIp}`, o.translatedDestinationIp && `destination → ${o.translatedDestinationIp}${o.translatedPort !== undefined ? `:${o.translatedPort}` : ''}`, ...(o.staged ?? []).map((s) => `staged ${s.policy}/${s.rule} would ${s.action}`), o.note]
        .filter(Boolean)
        .join('; '),
    ]),
    t.observations.map((o) => [undefined, undefined, o.action]),
  );
}

// ------------------------------------------------------------------ flows

async function loadFlows(): Promise<void> {
  const v = formValues($<HTMLFormElement>('#flows-form'));
  const rows = await api<FlowRecord[]>('/api/flows', v);
  $('#flows-table').innerHTML = tableHtml(
    ['LAST SEEN', 'POINT', 'DIR', 'PROTO', 'SOURCE', 'DESTINATION', 'VERDICT', 'RULE', 'STAGED', 'PACKETS', 'BYTES'],
    rows.map((r) => [
      r.lastSeen,
      r.point,
      r.direction,
      r.protocol,
      `${r.sourceIp}${r.sourcePort !== undefined ? `:${r.sourcePort}` : ''}`,
      `${r.destinationIp}:${r.destinationPort ?? ''}`,
      r.verdict,
      r.rule,
      r.stagedVerdict ? `${r.stagedVerdict} (${r.stagedRule})` : '',
      String(r.packets),
      String(r.bytes),
    ]),
    rows.map((r) => [undefined, undefined, undefined, undefined, undefined, undefined, r.verdict]),
  );
  document.body.dataset.flowsLoaded = String(rows.length);
}

// ------------------------------------------------------------------ wiring

const loaders: Record<string, () => Promise<void>> = { topology: loadTopology, policies: loadPolicies, flows: loadFlows, traceflow: async () => undefined };

function show(view: string): void {
  document.querySelectorAll('nav button').forEach((b) => b.classList.toggle('active', (b as HTMLElement).dataset.view === view));
  document.querySelectorAll('.view').forEach((s) => s.classList.toggle('active', s.id === `view-${view}`));
  loaders[view]!().then(() => (view === 'topology' ? graph?.resize() : undefined), showError);
}

document.querySelectorAll('nav button').forEach((b) => b.addEventListener('click', () => show((b as HTMLElement).dataset.view!)));
for (const [id, fn] of [
  ['#topology-form', loadTopology],
  ['#policies-form', loadPolicies],
  ['#traceflow-form', runTrace],
  ['#flows-form', loadFlows],
] as const)
  $(id).addEventListener('submit', (ev) => {
    ev.preventDefault();
    fn().catch(showError);
  });

async function start(): Promise<void> {
  const config = await fetch('config.json', { cache: 'no-store' })
    .then((r) => (r.ok ? (r.json() as Promise<{ mode?: string; api?: string }>) : undefined))
    .catch(() => undefined);
  if (config?.mode !== 'server') return show(location.hash.slice(1) || 'topology');
  serverApi = config.api ?? '/v1';
  document.body.classList.add('server-mode');
  const form = $<HTMLFormElement>('#signin');
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const v = formValues(form);
    $<HTMLInputElement>('#signin input[name="token"]').value = '';
    signIn(v.token ?? '', v.environment ?? '').then(
      () => show(location.hash.slice(1) || 'topology'),
      (err: Error) => void signOut(err.message),
    );
  });
  $('#environment').addEventListener('change', () => {
    sessionStorage.setItem(ENV_KEY, $<HTMLSelectElement>('#environment').value);
    show(document.querySelector('nav button.active')?.getAttribute('data-view') ?? 'topology');
  });
  $('#signout').addEventListener('click', () => void signOut('Signed out.'));
  const s = session();
  if (!s) return void signOut('');
  await signIn(s.token, s.environment).then(
    () => show(location.hash.slice(1) || 'topology'),
    (err: Error) => void signOut(err.message),
  );
}
void start();
