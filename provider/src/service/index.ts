/** The backend service layer: CRUD with validation, referential integrity and revisions. */
export { BackendService, SETTINGS_KIND, SETTINGS_NAME, isSettingsObject, type BackendServiceOptions, type UpdateOptions, type BatchWrite, type EnvironmentSettings, type ServedObject } from './service';
export { SecretBox, SECRET_MARKER, type SecretKeySource } from './secrets';
export { ServiceError, NotFoundError, ConflictError, InvalidError, InUseError, type ServiceErrorCode } from './errors';
export type { Validator, Problem, SpecReference } from './validator';
