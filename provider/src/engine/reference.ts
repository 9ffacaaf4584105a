export const referenceVerdict = undefined; export type ReferenceInput = never;
