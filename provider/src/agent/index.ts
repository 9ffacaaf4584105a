export { RealizationAgent, hitsOf, elementDeltaText, changedElements, type AgentOptions, type ReconcileResult } from './agent';
export { NetlinkNft, findNftWriter, type NetlinkNftOptions } from './netlink';
export { NftCli, NftError, preflight, elementChangesText, type NftCliOptions } from './nft';
export { StoreDesiredState, StoreStatusSink, StoreFlowSink, readStatuses, REALIZATION_KIND } from './store-adapters';
export { AgentServerClient, HttpDesiredState, HttpFlowSink, HttpStatusSink, FLOW_POST_BATCH, type AgentServerOptions } from './http-adapters';
export { ConntrackCli, FlowCollector, parseConntrack, droppedFlowsOf, type ConntrackEntry, type ConntrackReader, type DroppedFlow, type PointFlows } from './flows';
export type { DesiredState, ElementChange, FlowSink, NftExecutor, NftListing, RealizationStatus, RealizationState, RuleHits, StatusSink } from './ports';
