/**
 * What the service needs from the engine: validation of a spec and the objects it references.
 * The engine provides the implementation; the service only depends on this interface.
 */
import type { JsonObject, ObjectRef } from '../store/types';

/** One validation problem, reported to the user (provider Check failures, CLI messages). */
export interface Problem {
  /** Stable machine-readable code, e.g. `required`, `invalid-cidr`, `missing-reference`. */
  readonly code: string;
  /** Property path in the spec, e.g. `rules[2].sources[0]`; empty for the whole object. */
  readonly path: string;
  readonly message: string;
}

/** A reference found in a spec; `path` (optional) says where, for error messages. */
export interface SpecReference extends ObjectRef {
  readonly path?: string;
}

/** Pluggable validation, implemented by the engine. Must be pure and synchronous. */
export interface Validator {
  /** Problems of a spec of a kind; empty when valid. */
  validate(kind: string, spec: JsonObject): Problem[];
  /** The objects a (valid) spec references; the store keeps these for referential integrity. */
  references(kind: string, spec: JsonObject): SpecReference[];
}
