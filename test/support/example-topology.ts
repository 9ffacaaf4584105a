import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { World } from '../../provider/src/engine';
import { buildWorld, loadTopology } from '../../provider/src/topology';

/** The world of a topology file in examples/topologies/ (throws with the loader's problems when it does not load). */
export function exampleTopologyWorld(file: string): World {
  const loaded = loadTopology(readFileSync(path.join(__dirname, '..', '..', 'examples', 'topologies', file), 'utf8'));
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
  return buildWorld(loaded.topology).world;
}
