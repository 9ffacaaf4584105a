export { World, type Change, type DefaultAction, type PodOutput, type ResolvedRef, type WorldOptions } from './world';
