import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { openSqliteStore, type Store } from '../../provider/src/store';
import { startUiServer, type UiServer } from '../../provider/src/ui/server';
import { seedVcci } from '../support/visibility-seed';

/**
 * The visibility page in real headless Chromium (the Debian package; scripts/setup.sh installs it), served
 * by the same server as `microseg ui`, over a SQLite store holding the flagship example (examples/vcci-app)
 * and flow records. The screenshots it saves are the ones docs/visibility.md shows.
 */
jest.setTimeout(180_000);

const ENV = 'vcci';
const SHOTS = path.join(__dirname, '..', '..', 'docs', 'images');
const CHROMIUM = '/usr/bin/chromium';
let dir: string;
let store: Store;
let server: UiServer;
let browser: Browser;
let page: Page;

function cli(...argv: string[]): Promise<string> {
  const main = path.join(__dirname, '..', '..', 'dist', 'provider', 'src', 'cli', 'main.js');
  return new Promise((resolve, reject) => execFile(process.execPath, ['--no-warnings', main, ...argv, '--data-dir', dir, '-e', ENV], (e, out, err) => (e ? reject(new Error(err)) : resolve(out))));
}

beforeAll(async () => {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/setup.sh (as root it installs the Debian chromium package)`);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'microseg-browser-'));
  store = await openSqliteStore({ dataDir: dir });
  const { backend } = await seedVcci(store, ENV);
  server = await startUiServer({ store, environment: ENV, world: () => backend.currentWorld() });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-gpu', '--disable-quic'],
  });
  page = await browser.newPage({ viewport: { width: 1400, height: 820 } });
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  (page as unknown as { errors: string[] }).errors = pageErrors;
  // The page may reach its own server only: anything else (a CDN) fails the test.
  const foreign: string[] = [];
  page.on('request', (r) => {
    if (!r.url().startsWith(server.url)) foreign.push(r.url());
  });
  (page as unknown as { foreign: string[] }).foreign = foreign;
  fs.mkdirSync(SHOTS, { recursive: true });
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await store?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** Evaluates an expression in the page (a string: the page's globals are not this process's types). */
const js = <T>(expression: string) => page.evaluate(expression) as Promise<T>;
const waitFor = (expression: string) => page.waitForFunction(expression);
const graphIds = () => js<string[]>('microsegGraph.nodes().map((n) => n.id())');

test('the topology shows the example\'s workloads and VMs grouped by security group, with observed flows as edges', async () => {
  await page.goto(server.url);
  await waitFor('Number(document.body.dataset.topologyLoaded ?? 0) > 0');
  const ids = await graphIds();
  for (const id of ['workload:vcci/shop/frontend', 'workload:vcci/shop/apigateway', 'workload:vcci/shop/backend', 'vm:database', 'vm:rating', 'group:frontend', 'group:database'])
    expect(ids).toContain(id);
  const edges = await js<string[]>("microsegGraph.edges().map((e) => `${e.data('origin')} ${e.data('source')}>${e.data('target')} ${e.data('verdict')}`)");
  expect(edges).toContain('flow workload:vcci/shop/frontend>workload:vcci/shop/apigateway allow');
  expect(edges).toContain('flow workload:vcci/shop/frontend>vm:database drop');
  expect(edges.some((e) => e.startsWith('matrix group:frontend>group:apigateway'))).toBe(true);
  await page.screenshot({ path: path.join(SHOTS, 'visibility-topology.png') });
  expect({ foreign: (page as unknown as { foreign: string[] }).foreign, errors: (page as unknown as { errors: string[] }).errors }).toEqual({ foreign: [], errors: [] });
});

test('clicking a node shows its effective rules and realization status', async () => {
  const box = (await page.locator('#graph').boundingBox())!;
  const pos = await js<{ x: number; y: number }>("microsegGraph.$id('vm:database').renderedPosition()");
  await page.mouse.click(box.x + pos.x, box.y + pos.y);
  await page.waitForSelector('#effective-rules');
  const details = await page.locator('#details').innerText();
  expect(details).toContain('vm:database');
  expect(details).toContain('prod-boundaries/db-from-backend-egress');
  expect(details).toMatch(/vm:database#0\s+unreported/);
  await page.screenshot({ path: path.join(SHOTS, 'visibility-node.png') });
});

test('the policy view lists rules by category with their flow hits', async () => {
  await page.click('nav button[data-view="policies"]');
  await page.fill('#policies-form input[name="since"]', '3650d');
  await page.click('#policies-form button');
  await page.waitForSelector('table[data-category="application"]');
  const row = await page.locator('table[data-category="application"] tr', { hasText: 'frontend-to-gateway' }).innerText();
  expect(row.split('\t').slice(0, 4)).toEqual(['shop', 'frontend-to-gateway', 'allow', '4']);
  await page.screenshot({ path: path.join(SHOTS, 'visibility-policies.png') });
});

test('a traceflow from the form shows the same path and deciding rule as the CLI', async () => {
  await page.click('nav button[data-view="traceflow"]');
  await page.fill('#traceflow-form input[name="from"]', 'workload:vcci/shop/apigateway');
  await page.fill('#traceflow-form input[name="to"]', 'lb:backend-lb');
  await page.fill('#traceflow-form input[name="port"]', '80');
  await page.click('#traceflow-form button');
  await page.waitForSelector('#deciding-rule');
  const cliTrace = JSON.parse(await cli('traceflow', '--from', 'workload:vcci/shop/apigateway', '--to', 'lb:backend-lb', '--port', '80', '--json')) as { verdict: string; decidingPolicy: string; decidingRule: string; observations: { component: string; action: string }[] };
  const pageRows = await js<string[][]>("[...document.querySelectorAll('#trace-table tbody tr')].map((tr) => [...tr.querySelectorAll('td')].slice(1, 3).map((td) => td.textContent))");
  expect(pageRows).toEqual(cliTrace.observations.map((o) => [o.component, o.action]));
  expect(pageRows.map((r) => r[0])).toEqual(expect.arrayContaining(['source-firewall', 'load-balancer', 'destination-firewall']));
  expect(await page.locator('#verdict').innerText()).toBe(cliTrace.verdict);
  expect(await page.locator('#deciding-rule').innerText()).toBe(`${cliTrace.decidingPolicy}/${cliTrace.decidingRule}`);
  await page.screenshot({ path: path.join(SHOTS, 'visibility-traceflow.png') });
});

test('the flows table filters by verdict and endpoint', async () => {
  await page.click('nav button[data-view="flows"]');
  await waitFor("document.body.dataset.flowsLoaded === '12'");
  await page.selectOption('#flows-form select[name="verdict"]', 'drop');
  await page.click('#flows-form button');
  await waitFor("document.body.dataset.flowsLoaded !== '12'");
  const verdicts = await page.locator('#flows-table tbody td:nth-child(7)').allInnerTexts();
  expect(verdicts).toEqual(['drop', 'drop', 'drop']);
  await page.fill('#flows-form input[name="to"]', 'vm:database');
  await page.click('#flows-form button');
  await waitFor("document.body.dataset.flowsLoaded === '2'");
  // frontend may reach only the gateway and DNS: its own firewall drops the rest on the way out.
  expect(await page.locator('#flows-table tbody td:nth-child(8)').allInnerTexts()).toEqual(['shop/frontend-deny-rest', 'shop/frontend-deny-rest']);
  await page.selectOption('#flows-form select[name="verdict"]', '');
  await page.fill('#flows-form input[name="to"]', '');
  await page.click('#flows-form button');
  await waitFor("document.body.dataset.flowsLoaded === '12'");
  await page.screenshot({ path: path.join(SHOTS, 'visibility-flows.png') });
});

test('`microseg graph` exports the same topology as DOT, and as SVG and PNG drawn by the page in Chromium', async () => {
  const dot = await cli('graph', '--format', 'dot');
  expect(dot).toMatch(/^digraph microseg \{/);
  expect(dot).toContain('subgraph "cluster_frontend"');
  expect(dot).toContain('"workload:vcci/shop/frontend" -> "vm:database" [label="tcp/5432 ×2", color="#cf222e"');
  const svgFile = path.join(dir, 'topology.svg');
  const pngFile = path.join(SHOTS, 'visibility-graph-export.png');
  await cli('graph', '--format', 'svg', '--output', svgFile);
  const svg = fs.readFileSync(svgFile, 'utf8');
  expect(svg).toMatch(/<svg[\s\S]*frontend[\s\S]*<\/svg>/);
  await cli('graph', '--format', 'png', '--output', pngFile);
  expect(fs.readFileSync(pngFile).subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
});
