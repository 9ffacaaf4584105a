// Runs inside one network namespace (`ip netns exec NS node probe-agent.js PORTS_JSON`): serves TCP and
// UDP on the given ports and runs probes on request. Protocol: one JSON object per line on stdin
// ({id, op: 'tcp'|'udp'|'icmp', dst, port, sport, timeoutMs}), one JSON result per line on stdout
// ({id, result: 'open'|'reject'|'timeout', detail}). Plain JavaScript: it runs as its own process.
'use strict';
const net = require('node:net');
const dgram = require('node:dgram');
const { execFile } = require('node:child_process');
const readline = require('node:readline');

const { tcp = [], udp = [] } = JSON.parse(process.argv[2] || '{}');
const servers = [];
let pending = tcp.length + udp.length;
const listening = () => {
  if (--pending === 0) process.stdout.write(JSON.stringify({ ready: true }) + '\n');
};
if (pending === 0) setImmediate(() => process.stdout.write(JSON.stringify({ ready: true }) + '\n'));
for (const port of tcp) {
  const s = net.createServer((c) => {
    c.on('error', () => {});
    c.end('ok');
  });
  s.on('error', (e) => process.stderr.write(`tcp ${port}: ${e.message}\n`));
  s.listen(port, '0.0.0.0', listening);
  servers.push(s);
}
for (const port of udp) {
  const s = dgram.createSocket('udp4');
  s.on('message', (m, r) => s.send(m, r.port, r.address));
  s.on('error', (e) => process.stderr.write(`udp ${port}: ${e.message}\n`));
  s.bind(port, '0.0.0.0', listening);
  servers.push(s);
}

const REJECT_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET']);
// A packet dropped by this host's own output hook fails the send with EPERM: a drop, seen from inside.
const classify = (code) => (REJECT_CODES.has(code) ? 'reject' : code === 'EPERM' ? 'timeout' : 'error');
const reply = (id, result, detail) => process.stdout.write(JSON.stringify({ id, result, detail }) + '\n');

function probeTcp(p) {
  let done = false;
  const finish = (result, detail) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    sock.destroy();
    reply(p.id, result, detail);
  };
  const opts = { host: p.dst, port: p.port };
  if (p.sport) opts.localPort = p.sport;
  const sock = net.connect(opts);
  const timer = setTimeout(() => finish('timeout'), p.timeoutMs);
  sock.on('connect', () => finish('open'));
  sock.on('error', (e) => finish(classify(e.code), e.code));
}

function probeUdp(p) {
  let done = false;
  const sock = dgram.createSocket('udp4');
  const finish = (result, detail) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    clearInterval(resend);
    try {
      sock.close();
    } catch {}
    reply(p.id, result, detail);
  };
  const timer = setTimeout(() => finish('timeout'), p.timeoutMs);
  let resend;
  sock.on('message', () => finish('open'));
  sock.on('error', (e) => finish(classify(e.code), e.code));
  sock.bind(p.sport || 0, () => {
    sock.connect(p.port, p.dst, () => {
      // A connected UDP socket reports an ICMP error on the next send or receive: send twice.
      // EPERM is this host's own firewall refusing the send: a drop, unless a reject's ICMP error follows.
      const send = () => sock.send('probe', (e) => e && e.code !== 'EPERM' && finish(classify(e.code), e.code));
      send();
      resend = setInterval(send, Math.max(50, p.timeoutMs / 4));
    });
  });
}

function probeIcmp(p) {
  const wait = Math.max(1, Math.ceil(p.timeoutMs / 1000));
  execFile('ping', ['-n', '-c', '1', '-W', String(wait), p.dst], (err, stdout) => {
    if (/bytes from/.test(stdout)) return reply(p.id, 'open');
    if (/^From /m.test(stdout)) return reply(p.id, 'reject', stdout.split('\n').find((l) => l.startsWith('From ')));
    reply(p.id, 'timeout');
  });
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const p = JSON.parse(line);
  if (p.op === 'tcp') probeTcp(p);
  else if (p.op === 'udp') probeUdp(p);
  else if (p.op === 'icmp') probeIcmp(p);
});
rl.on('close', () => process.exit(0));
