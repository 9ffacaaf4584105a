import { validateSpec } from '../../provider/src/engine';
import type { Kind } from '../../provider/src/model';
import type { BackendService } from '../../provider/src/service';

/**
 * Validates a spec as the provider does (the name filled in from `name` where the kind has one) and creates
 * or updates the object through the service: the tests' way to change desired state outside Pulumi.
 */
export async function putSpec(service: BackendService, kind: Kind, name: string, spec: Record<string, unknown>): Promise<void> {
  const r = validateSpec(kind, spec.name === undefined && kind !== 'Namespace' && kind !== 'Workload' ? { ...spec, name } : spec);
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  const value = r.value as Record<string, unknown>;
  if (await service.find(kind, name)) await service.update(kind, name, value);
  else await service.create(kind, name, value);
}
