/** Topology files: loading (`loadTopology`) and evaluation of their expectations (`buildWorld`, `runExpectations`). */
export { loadTopology, renderPath, type Topology, type TopologyObject, type TopologyProblem, type TopologyResult, type Expectation, type ExpectedVerdict } from './load';
export { buildWorld, runExpectations, type TopologyWorld, type ExpectationResult } from './evaluate';
