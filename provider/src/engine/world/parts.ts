import type { Membership } from '../membership';
import type { Addressing } from './addressing';
import type { Groups } from './groups';
import type { Inventory } from './inventory';
import type { Policies } from './policies';
import type { AllocationProblems, Specs } from './specs';

/** The parts a World is made of, for the functions that read across them (outputs, resolve, validation). */
export interface WorldParts {
  readonly specs: Specs;
  readonly membership: Membership;
  readonly allocationProblems: AllocationProblems;
  readonly inventory: Inventory;
  readonly addressing: Addressing;
  readonly groups: Groups;
  readonly policies: Policies;
}
