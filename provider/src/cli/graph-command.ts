import * as fs from 'node:fs';
import { parseSince } from '../visibility/flows';
import { topologyDot } from '../visibility/dot';
import { topology } from '../ui/handlers';
import { startUiServer } from '../ui/server';
import { withStore, type StoreOptions, type StoreContext } from './context';
import { CliError, EXIT_OK, type CliIo } from './io';

/** `microseg graph --format dot|svg|png [--output FILE]`: the topology page's graph, for docs and reviews. */

export interface GraphOptions extends StoreOptions {
  format?: string;
  output?: string;
  service?: string;
  since?: string;
  chromium?: string;
}

/** svg and png are drawn by the page itself (Cytoscape.js) in headless Chromium, as users see it. */
async function render(ctx: StoreContext, format: 'svg' | 'png', options: GraphOptions): Promise<Buffer> {
  const executablePath = options.chromium ?? '/usr/bin/chromium';
  if (!fs.existsSync(executablePath)) throw new CliError(`--format ${format} draws the graph in headless Chromium, and ${executablePath} is missing: install it (Debian: apt-get install chromium) or pass --chromium PATH, or use --format dot`);
  // Loaded only here, by a name the bundler leaves alone: the plugin archive does not carry it.
  const moduleName = 'playwright-core';
  let pw: typeof import('playwright-core');
  try {
    pw = require(moduleName) as typeof import('playwright-core');
  } catch {
    throw new CliError(`--format ${format} needs the npm package playwright-core next to microseg (npm install playwright-core), or use --format dot`);
  }
  const server = await startUiServer({ store: ctx.store, environment: ctx.environment, world: () => ctx.world() });
  const browser = await pw.chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-gpu', '--disable-quic'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(server.url);
    const [protocol, port] = (options.service ?? 'tcp/8080').split('/');
    await page.fill('#topology-form input[name="service"]', `${protocol}/${port ?? ''}`);
    await page.fill('#topology-form input[name="since"]', options.since ?? '24h');
    await page.evaluate('document.body.dataset.topologyLoaded = ""');
    await page.click('#topology-form button');
    await page.waitForFunction('Number(document.body.dataset.topologyLoaded || 0) > 0');
    if (format === 'svg') return Buffer.from(await page.evaluate<string>('microsegGraph.svg({ full: true, bg: "#ffffff" })'));
    const b64 = await page.evaluate<string>('microsegGraph.png({ full: true, bg: "#ffffff", scale: 2, output: "base64" })');
    return Buffer.from(b64, 'base64');
  } finally {
    await browser.close();
    await server.close();
  }
}

export async function runGraph(options: GraphOptions, io: CliIo): Promise<number> {
  const format = options.format ?? 'dot';
  if (!['dot', 'svg', 'png'].includes(format)) throw new CliError(`--format: "${format}" is not a format; expected dot, svg or png`);
  if (format === 'png' && !options.output) throw new CliError('--format png: --output FILE is required (PNG is binary)');
  const since = parseSince(options.since ?? '24h', new Date());
  if (!since) throw new CliError(`--since: "${options.since}" is neither a duration (90s, 15m, 24h, 7d) nor an ISO-8601 time`);
  const [protocol, portText] = (options.service ?? 'tcp/8080').split('/');
  const port = portText ? Number(portText) : undefined;
  if (!['tcp', 'udp', 'sctp', 'icmp', 'icmpv6'].includes(protocol ?? '') || (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65535)))
    throw new CliError(`--service: "${options.service}" is not PROTOCOL/PORT (tcp/8080, udp/53, icmp)`);
  return withStore(options, io, async (ctx) => {
    let out: Buffer;
    if (format === 'dot') {
      const world = await ctx.world();
      const t = topology(world, await ctx.store.flows(ctx.environment, { since, limit: 20_000 }), { protocol: protocol as 'tcp', port });
      out = Buffer.from(topologyDot(t.nodes, t.edges));
    } else out = await render(ctx, format as 'svg' | 'png', options);
    if (options.output) fs.writeFileSync(options.output, out);
    else io.stdout(out.toString('utf8'));
    return EXIT_OK;
  });
}
