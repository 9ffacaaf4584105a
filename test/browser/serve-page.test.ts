import { execFile, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { traceflow, type World } from '../../provider/src/engine';
import { parseToken } from '../../provider/src/server/tokens';
import { openSqliteStore } from '../../provider/src/store';
import { seedVcci } from '../support/visibility-seed';

/**
 * The visibility page under a real `microseg serve` (SQLite store, tokens from `microseg token create`), in
 * real headless Chromium: the page asks for a token, keeps it in sessionStorage, sends it as a bearer token
 * to the server's visibility routes and says plainly when the server refuses it (401) or the role may not (403).
 */
jest.setTimeout(180_000);

const ENV = 'vcci';
const SHOTS = path.join(__dirname, '..', '..', 'docs', 'images');
const CHROMIUM = '/usr/bin/chromium';
const MAIN = path.join(__dirname, '..', '..', 'dist', 'provider', 'src', 'cli', 'main.js');
let dir: string;
let world: World;
let serve: ChildProcess;
let serveLog = '';
let base: string;
let auditor: string;
let agent: string;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

function cli(...argv: string[]): Promise<string> {
  return new Promise((resolve, reject) => execFile(process.execPath, ['--no-warnings', MAIN, ...argv], (e, out, err) => (e ? reject(new Error(err)) : resolve(out))));
}

const tokenOf = async (role: string) => (JSON.parse(await cli('token', 'create', '--role', role, '--data-dir', dir, '--json')) as { token: string }).token;

beforeAll(async () => {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/setup.sh (as root it installs the Debian chromium package)`);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'microseg-serve-page-'));
  const store = await openSqliteStore({ dataDir: dir });
  ({ world } = await seedVcci(store, ENV));
  await store.close();
  auditor = await tokenOf('auditor');
  agent = await tokenOf('agent');
  // --log: the request log must never show a token.
  serve = spawn(process.execPath, ['--no-warnings', MAIN, 'serve', '--listen', '127.0.0.1:0', '--data-dir', dir, '--log'], { stdio: ['ignore', 'pipe', 'pipe'] });
  base = await new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      serveLog += chunk.toString();
      const m = /listening on (http:\/\/\S+)/.exec(serveLog);
      if (m) resolve(m[1]!);
    };
    serve.stderr!.on('data', onData);
    serve.stdout!.on('data', (c: Buffer) => (serveLog += c.toString()));
    serve.once('exit', (code) => reject(new Error(`microseg serve exited (${code}): ${serveLog}`)));
  });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-gpu', '--disable-quic'],
  });
  page = await browser.newPage({ viewport: { width: 1400, height: 820 } });
  page.on('pageerror', (e) => pageErrors.push(e.message));
  fs.mkdirSync(SHOTS, { recursive: true });
});

afterAll(async () => {
  await browser?.close();
  if (serve && serve.exitCode === null) {
    const exited = new Promise((resolve) => serve.once('exit', resolve));
    serve.kill('SIGTERM');
    await exited;
  }
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const js = <T>(expression: string) => page.evaluate(expression) as Promise<T>;
// Selectors, not waitForFunction: the page's Content-Security-Policy forbids the eval that one uses.
const waitFor = (selector: string, hasText?: string) => page.locator(selector, hasText ? { hasText } : {}).first().waitFor();

async function signIn(token: string): Promise<void> {
  await page.fill('#signin input[name="token"]', token);
  await page.fill('#signin input[name="environment"]', ENV);
  await page.click('#signin button');
}

test('the page is served without a token, but its data is not', async () => {
  const res = await fetch(`${base}/ui/`);
  expect(res.status).toBe(200);
  expect(await res.text()).toContain('<form id="signin"');
  expect(res.headers.get('content-security-policy')).toContain("connect-src 'self'");
  expect((await fetch(`${base}/ui/app.js`)).headers.get('content-type')).toMatch(/javascript/);
  expect((await fetch(`${base}/ui/..%2Fpackage.json`)).status).toBe(404);
  expect((await fetch(`${base}/v1/environments/${ENV}/visibility/topology`)).status).toBe(401);
});

test('a wrong token shows the server\'s refusal, and the API refuses it', async () => {
  await page.goto(`${base}/ui/`);
  await page.waitForSelector('#signin:not([hidden])');
  const wrong = auditor.slice(0, -4) + 'AAAA';
  await signIn(wrong);
  await waitFor('#signin-error', '401');
  expect(await page.locator('#signin-error').innerText()).toMatch(/^Not signed in \(401\): the token is unknown, revoked or malformed/);
  expect(await js<string | null>("sessionStorage.getItem('microseg.token')")).toBeNull();
  expect(await page.locator('#view-topology').isVisible()).toBe(false);
  await page.screenshot({ path: path.join(SHOTS, 'visibility-signin.png') });
  const res = await fetch(`${base}/v1/environments/${ENV}/visibility/topology`, { headers: { authorization: `Bearer ${wrong}` } });
  expect(res.status).toBe(401);
});

test('signed in with an auditor token, the page shows the example\'s topology from the server', async () => {
  await signIn(auditor);
  await waitFor('body[data-topology-loaded]:not([data-topology-loaded="0"])');
  const ids = await js<string[]>('microsegGraph.nodes().map((n) => n.id())');
  for (const id of ['workload:vcci/shop/frontend', 'workload:vcci/shop/backend', 'vm:database', 'group:frontend']) expect(ids).toContain(id);
  const edges = await js<string[]>("microsegGraph.edges().map((e) => `${e.data('origin')} ${e.data('source')}>${e.data('target')} ${e.data('verdict')}`)");
  expect(edges).toContain('flow workload:vcci/shop/frontend>vm:database drop');
  // The token stays in the tab's session storage: not in the URL, not in the form.
  expect(await js<string | null>("sessionStorage.getItem('microseg.token')")).toBe(auditor);
  expect(page.url()).toBe(`${base}/ui/`);
  expect(await page.inputValue('#signin input[name="token"]')).toBe('');
  expect(pageErrors).toEqual([]);
});

test('a traceflow from the form gives the engine\'s verdict and deciding rule', async () => {
  await page.click('nav button[data-view="traceflow"]');
  await page.fill('#traceflow-form input[name="from"]', 'workload:vcci/shop/apigateway');
  await page.fill('#traceflow-form input[name="to"]', 'lb:backend-lb');
  await page.fill('#traceflow-form input[name="port"]', '80');
  await page.click('#traceflow-form button');
  await page.waitForSelector('#deciding-rule');
  const t = traceflow(world, { source: 'workload:vcci/shop/apigateway', destination: 'lb:backend-lb', protocol: 'tcp', port: 80 });
  if ('problem' in t) throw new Error(t.problem.message);
  expect(await page.locator('#verdict').innerText()).toBe(t.verdict);
  expect(await page.locator('#deciding-rule').innerText()).toBe(`${t.decidingPolicy}/${t.decidingRule}`);
  const components = await js<string[]>("[...document.querySelectorAll('#trace-table tbody tr')].map((tr) => tr.querySelectorAll('td')[1].textContent)");
  expect(components).toEqual(t.observations.map((o) => o.component));
  await page.screenshot({ path: path.join(SHOTS, 'visibility-serve-traceflow.png') });
});

test('a role that may not trace gets a clear 403 message, and its token stays signed in', async () => {
  await page.click('#signout');
  await page.waitForSelector('#signin:not([hidden])');
  expect(await js<string | null>("sessionStorage.getItem('microseg.token')")).toBeNull();
  await signIn(agent);
  await waitFor('body[data-signed-in="true"]');
  await page.click('nav button[data-view="traceflow"]');
  await page.click('#traceflow-form button');
  await waitFor('#status', '403');
  expect(await page.locator('#status').innerText()).toBe('Not allowed (403): role agent lacks permission functions.traceflow: agents may only read effective rules');
  expect(await js<string | null>("sessionStorage.getItem('microseg.token')")).toBe(agent);
});

test('the request log never shows a token', () => {
  expect(serveLog).toContain('/visibility/traceflow');
  for (const token of [auditor, agent]) expect(serveLog).not.toContain(parseToken(token)!.secret);
});
