// The one definition is in provider/src (bench/ uses it too); tests keep importing it from here.
export { mulberry32 } from '../../provider/src/engine/testing/seeded-random';
