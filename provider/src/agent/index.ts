export { RealizationAgent, hitsOf, elementDelta, type AgentOptions, type ReconcileResult } from './agent';
export { NftCli, NftError, preflight, type NftCliOptions } from './nft';
export { StoreDesiredState, StoreStatusSink, readStatuses, REALIZATION_KIND } from './store-adapters';
export type { DesiredState, NftExecutor, NftListing, RealizationStatus, RealizationState, RuleHits, StatusSink } from './ports';
