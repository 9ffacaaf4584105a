import fc from 'fast-check';
import { enforcementPoints } from '../../provider/src/engine';
import { realizePoints, replaceTable, replaceTableText } from '../../provider/src/realize/nftables';
import { buildWorld, worldArb } from '../support/random-world';
import { vcciWorld } from '../support/vcci-world';
import { requireRootAndNft } from './differential';
import { Lab, nftFile, sh } from './lab';

/** The kernel's own parser accepts every compiled ruleset, as text and as `nft -j` JSON (`nft -c`: check only). */
jest.setTimeout(120_000);

const ns = `${Lab.newPrefix()}check`;

beforeAll(async () => {
  requireRootAndNft();
  await sh('ip', ['netns', 'add', ns]);
});

afterAll(async () => {
  await Lab.cleanup(ns);
});

async function check(text: string, json: unknown): Promise<void> {
  await nftFile(ns, text, false, ['-c']);
  await nftFile(ns, JSON.stringify(json), true, ['-c']);
}

test('every enforcement point of examples/vcci-app compiles to a ruleset nft accepts', async () => {
  const world = await vcciWorld();
  const points = enforcementPoints(world);
  expect(points.length).toBeGreaterThan(10);
  for (const p of points) {
    const [r] = realizePoints(world, p.name)!;
    await check(replaceTableText(r!.table), replaceTable(r!.table));
  }
});

test('rulesets of generated worlds are accepted by nft', async () => {
  await fc.assert(
    fc.asyncProperty(worldArb, async (spec) => {
      const world = buildWorld(spec);
      for (const p of enforcementPoints(world)) {
        const [r] = realizePoints(world, p.name)!;
        await check(replaceTableText(r!.table), replaceTable(r!.table));
      }
    }),
    { numRuns: 8 },
  );
});
