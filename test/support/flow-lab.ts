/**
 * The flow-record lab of the kernel tests: a client VM and a server VM, the server's inbound rules allow
 * 8080, reject 9091 and leave 9090 to the default drop, and a staged policy under review would drop 8080
 * too. test/kernel/flows.test.ts runs it on a local store, flows-server.test.ts through `microseg serve`.
 */
import type { Kind } from '../../provider/src/model';

export const FLOW_LAB_CLIENT = '192.168.81.10';
export const FLOW_LAB_SERVER = '192.168.81.20';
/** Ports the lab's server listens on. */
export const FLOW_LAB_PORTS = { tcpPorts: [8080, 9090, 9091], udpPorts: [] as number[] };

const from = { sources: [{ group: 'client' }], destinations: [{ group: 'server' }], direction: 'in' };

/** The lab's objects in creation order, each spec with its name (as the server's PUT wants it). */
export const FLOW_LAB_OBJECTS: ReadonlyArray<readonly [Kind, string, Record<string, unknown>]> = [
  ['VirtualMachine', 'client', { name: 'client', interfaces: [{ ip: FLOW_LAB_CLIENT }] }],
  ['VirtualMachine', 'server', { name: 'server', interfaces: [{ ip: FLOW_LAB_SERVER }] }],
  ['SecurityGroup', 'client', { name: 'client', vms: ['client'] }],
  ['SecurityGroup', 'server', { name: 'server', vms: ['server'] }],
  [
    'FirewallPolicy',
    'app',
    {
      name: 'app',
      category: 'application',
      priority: 1,
      rules: [
        { name: 'client-8080', action: 'allow', ...from, services: [{ protocol: 'tcp', ports: [8080] }] },
        { name: 'refuse-9091', action: 'reject', ...from, services: [{ protocol: 'tcp', ports: [9091] }] },
        { name: 'any-out', action: 'allow', direction: 'out' },
      ],
    },
  ],
  // What a tightening under review would do: drop 8080 too.
  ['FirewallPolicy', 'next', { name: 'next', category: 'application', priority: 0, enforcement: 'staged', rules: [{ name: 'no-8080', action: 'drop', ...from, services: [{ protocol: 'tcp', ports: [8080] }] }] }],
];
