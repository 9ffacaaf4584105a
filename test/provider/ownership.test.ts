/**
 * The provider core's part in ownership, environments and cancellation, against a recording backend:
 * the stack named by the engine picks the default environment, every write carries the resource URN as
 * its owner, a read for import claims the object, Cancel and customTimeouts abort what still waits.
 */
import { z } from 'zod';
import { defineResource, resourceToken } from '../../provider/src/model/define';
import { Backend, BackendResult, OperationContext } from '../../provider/src/provider/backend';
import { ProviderCore, stackOfUrn } from '../../provider/src/provider/core';
import { PropertyMap } from '../../provider/src/provider/values';

const Widget = defineResource({
  name: 'Widget',
  description: 'A test resource.',
  inputs: z.object({ name: z.string().optional(), size: z.number() }),
  outputs: z.object({}),
});
const TOKEN = resourceToken('Widget');
const URN = 'urn:pulumi:prod::shop::microseg:index:Widget::w1';
const PROVIDER_URN = 'urn:pulumi:staging::shop::pulumi:providers:microseg::default';

/** Records what the core asks; `hold` makes writes wait until their signal aborts. */
class RecordingBackend implements Backend {
  readonly calls: string[] = [];
  readonly contexts: (OperationContext | undefined)[] = [];
  hold = false;
  owner: string | undefined;
  async plan(kind: string, name: string, _spec: PropertyMap, mode: string, context?: OperationContext): Promise<BackendResult> {
    this.calls.push(`plan ${mode} ${kind}/${name}`);
    this.contexts.push(context);
    return { outputs: {}, warnings: [] };
  }
  async put(kind: string, name: string, _spec: PropertyMap, mode: string, context?: OperationContext): Promise<BackendResult> {
    this.calls.push(`put ${mode} ${kind}/${name}`);
    this.contexts.push(context);
    if (this.hold) {
      await new Promise<void>((_resolve, reject) => {
        const signal = context?.signal;
        if (!signal) return;
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      });
    }
    return { outputs: {}, warnings: [] };
  }
  async get(kind: string, name: string) {
    this.calls.push(`get ${kind}/${name}`);
    return { spec: { name, size: 1 }, outputs: {}, ...(this.owner ? { owner: this.owner } : {}) };
  }
  async assertCreatable(kind: string, name: string, context?: OperationContext) {
    this.calls.push(`assertCreatable ${kind}/${name} ${context?.owner ?? ''}`);
  }
  async claim(kind: string, name: string, owner: string) {
    this.calls.push(`claim ${kind}/${name} ${owner}`);
  }
  async delete(kind: string, name: string) {
    this.calls.push(`delete ${kind}/${name}`);
  }
  async invoke() {
    return {};
  }
  close() {}
}

function core(): { core: ProviderCore<Record<string, unknown>>; backend: RecordingBackend; stacks: (string | undefined)[] } {
  const backend = new RecordingBackend();
  const stacks: (string | undefined)[] = [];
  const c = new ProviderCore<Record<string, unknown>>({
    version: '1.0.0',
    resources: [Widget],
    functions: [],
    config: z.object({ environment: z.string().optional() }),
    schema: () => '{}',
    openBackend: (_config, context) => {
      stacks.push(context.stack);
      return backend;
    },
  });
  return { core: c, backend, stacks };
}

test('the stack comes from the provider URN of Configure, else from the first resource URN', async () => {
  expect(stackOfUrn(PROVIDER_URN)).toBe('staging');
  const configured = core();
  configured.core.configure({}, { urn: PROVIDER_URN });
  await configured.core.create({ token: TOKEN, urn: URN, properties: { name: 'w1', size: 1 }, preview: false });
  expect(configured.stacks).toEqual(['staging']);

  const unconfigured = core();
  await unconfigured.core.create({ token: TOKEN, urn: URN, properties: { name: 'w1', size: 1 }, preview: true });
  expect(unconfigured.stacks).toEqual(['prod']);
});

test('creates, previews and updates carry the resource URN as the owner', async () => {
  const { core: c, backend } = core();
  await c.create({ token: TOKEN, urn: URN, properties: { name: 'w1', size: 1 }, preview: true });
  await c.create({ token: TOKEN, urn: URN, properties: { name: 'w1', size: 1 }, preview: false });
  await c.update({ token: TOKEN, urn: URN, id: 'w1', news: { name: 'w1', size: 2 }, preview: false });
  expect(backend.calls).toEqual(['plan create Widget/w1', 'put create Widget/w1', 'put update Widget/w1']);
  expect(backend.contexts.map((x) => x?.owner)).toEqual([URN, URN, URN]);
});

test('a preview create whose inputs are still unknown is checked for a name collision all the same', async () => {
  const { core: c, backend } = core();
  await c.create({ token: TOKEN, urn: URN, properties: { name: 'w1', size: '04da6b54-80e4-46f7-96ec-b56ff0331ba9' }, preview: true });
  expect(backend.calls).toEqual([`assertCreatable Widget/w1 ${URN}`]);
});

test('a read for import (no state, no inputs) claims the object for the importing URN; a refresh does not', async () => {
  const { core: c, backend } = core();
  backend.owner = 'microseg-cli:alice';
  await c.read({ token: TOKEN, urn: URN, id: 'w1', inputs: {}, state: {} });
  await c.read({ token: TOKEN, urn: URN, id: 'w1', inputs: { name: 'w1', size: 1 }, state: { name: 'w1', size: 1 } });
  expect(backend.calls).toEqual(['get Widget/w1', `claim Widget/w1 ${URN}`, 'get Widget/w1']);
});

test('Cancel aborts the operations in flight with a clear reason, and later operations run', async () => {
  const { core: c, backend } = core();
  backend.hold = true;
  const inFlight = c.create({ token: TOKEN, urn: URN, properties: { name: 'w1', size: 1 }, preview: false });
  await new Promise((resolve) => setImmediate(resolve));
  c.cancel();
  await expect(inFlight).rejects.toThrow(/cancelled by the Pulumi engine/);
  backend.hold = false;
  await expect(c.create({ token: TOKEN, urn: URN, properties: { name: 'w2', size: 1 }, preview: false })).resolves.toMatchObject({ id: 'w2' });
});

test('a customTimeout aborts an operation that is still waiting, naming the timeout', async () => {
  const { core: c, backend } = core();
  backend.hold = true;
  await expect(c.create({ token: TOKEN, urn: URN, properties: { name: 'w1', size: 1 }, preview: false, timeout: 0.05 })).rejects.toThrow(/create timed out after 0.05 s \(customTimeouts\)/);
});

test('writing down the environment the stack name already gave does not replace the provider; another one does', () => {
  const { core: c } = core();
  expect(c.diffConfig({}, { environment: 'staging' }, ['environment'], { urn: PROVIDER_URN })).toMatchObject({ changed: false, replaces: [] });
  expect(c.diffConfig({ environment: 'staging' }, {}, ['environment'], { urn: PROVIDER_URN })).toMatchObject({ changed: false });
  expect(c.diffConfig({}, { environment: 'shared' }, ['environment'], { urn: PROVIDER_URN })).toMatchObject({ changed: true, replaces: ['environment'] });
});
