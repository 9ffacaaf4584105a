/** The bundled in-process backend: service layer + engine. */
export { EmbeddedBackend, openEmbeddedBackend, PROVIDER_WAIT_FOR_USERS_MS, resolveEnvironment, describeOwner, engineValidator, runFunction, type EmbeddedBackendOptions } from './embedded';
export { referencesOf } from './references';
export { RemoteBackend, type RemoteBackendOptions } from './remote';
