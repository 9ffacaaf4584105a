/**
 * The microseg policy engine: pure TypeScript (no I/O). Entry point: {@link World}.
 */
export { World, type Change, type WorldOptions, type DefaultAction, type PodOutput, type ResolvedRef } from './world';
export { validateSpec, type ValidationResult } from './validate';
export { renderPath, type Problem } from './problems';
export { traceflow, verdict, resolveFlow, evaluateFlow, type FlowSpec, type FlowProtocol, type Trace, type Observation, type Decision, type Verdict, type VerdictResult, type StagedHit, type ResolvedFlow } from './traceflow';
export { effectiveRules, groupsOf, connectivityMatrix, delta, endpointsFor, type EffectiveRule, type MatrixCell, type FlowChange } from './queries';
export { referenceVerdict, type ReferenceInput } from './testing/reference';
export { referencesOf, type Reference } from './references';
export type { StateSource, StoredObject } from './state';
export { Selector } from './selector';
export { parseIp, parseCidr } from './ip';
export { enforcementPoints, enforcementPointModel, PointModelCache, endpointsOfPoint, pointName, arrivesAsItself, addressText, normalize, V4_MAX, V6_MAX, type EnforcementPointModel, type PointRule, type PortMatch, type OtherMatch, type AddressRegion, type AddressRange, type PortProtocol } from './enforcement';
export type { Endpoint } from './membership';
