import { z } from 'zod';

/**
 * The single definition of a microseg resource. Its zod schemas are the source of the engine's
 * spec types, the provider's Check validation, the topology-file loader, schema.json and the docs.
 *
 * Conventions for the schemas:
 * - every field carries `.describe(...)`: it becomes the schema.json and SDK doc comment;
 * - a nested object that should become a named Pulumi type carries `.meta({ id: 'TypeName' })`
 *   (it is emitted as `microseg:index:TypeName`);
 * - defaults are given with `.default(...)` so Check applies them deterministically.
 */
export interface ResourceDefinition<I extends z.ZodObject = z.ZodObject, O extends z.ZodObject = z.ZodObject> {
  /** Resource name; the token is `microseg:index:<name>`. */
  readonly name: string;
  /** Markdown description shown in schema.json, the SDKs and docs. */
  readonly description: string;
  /** What the user declares. */
  readonly inputs: I;
  /** What the backend computes, returned next to the inputs as outputs. */
  readonly outputs: O;
  /** Input properties whose change forces a replacement (also `replaceOnChanges` in the schema). */
  readonly replaceOnChanges?: readonly string[];
  /** Input or output properties that are secret. */
  readonly secrets?: readonly string[];
  /** Property that names the object in the backend; autonamed from the Pulumi resource name when absent. */
  readonly nameProperty?: string;
}

/** The single definition of a microseg function (Pulumi invoke and CLI command). */
export interface FunctionDefinition<I extends z.ZodObject = z.ZodObject, O extends z.ZodObject = z.ZodObject> {
  /** Function name; the token is `microseg:index:<name>`. */
  readonly name: string;
  readonly description: string;
  readonly inputs: I;
  readonly outputs: O;
}

export const PACKAGE_NAME = 'microseg';

export function resourceToken(name: string): string {
  return `${PACKAGE_NAME}:index:${name}`;
}

export function defineResource<I extends z.ZodObject, O extends z.ZodObject>(def: ResourceDefinition<I, O>): ResourceDefinition<I, O> {
  return def;
}

export function defineFunction<I extends z.ZodObject, O extends z.ZodObject>(def: FunctionDefinition<I, O>): FunctionDefinition<I, O> {
  return def;
}
