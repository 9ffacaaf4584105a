/**
 * Realization on Linux: an enforcement point's decisions compiled to one nftables table. Pure (no I/O):
 * the agent (provider/src/agent) applies the output with `nft`.
 */
import { endpointsOfPoint, enforcementPointModel, PointModelCache, type World } from '../../engine';
import { CompileCache, compilePoint, type CompiledPoint, type CompileOptions } from './compile';
import { renderJson, renderText } from './render';

export { compilePoint, CompileCache, tableNameOf, flowMark, CATEGORIES, type CompiledPoint, type CompileOptions, type FlowRule } from './compile';
export { renderJson, renderText, replaceTable, replaceTableText, elementJson, elementTexts, elementKeyTexts, setJson } from './render';
export { sameShape, sameChain, sameSetDeclaration } from './ir';
export type { Table, Chain, Rule, Match, Verdict, AddressSet, ServiceMap, PortMap, AddressMap, RuleMap, NamedSet, FlowSet, AddrKey, ServiceKey } from './ir';

export interface RealizedPoint extends CompiledPoint {
  readonly point: string;
  readonly text: string;
  readonly json: ReturnType<typeof renderJson>;
}

/** Compiles every endpoint an enforcement-point reference names (`vm:NAME#i`, `vm:NAME`, `pod:...`). */
export function realizePoints(world: World, ref: string, options: CompileOptions = {}): RealizedPoint[] | undefined {
  const eps = endpointsOfPoint(world, ref);
  if (!eps) return undefined;
  const shared = new PointModelCache(world);
  const cache = options.cache ?? new CompileCache();
  return eps.map((ep) => {
    const model = enforcementPointModel(world, ep, shared);
    const c = compilePoint(model, { ...options, cache });
    return { ...c, point: model.name, text: renderText(c.table), json: renderJson(c.table) };
  });
}
