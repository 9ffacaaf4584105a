/** The backend service layer: CRUD with validation, referential integrity and revisions. */
export { BackendService, SETTINGS_KIND, SETTINGS_NAME, isSettingsObject, type BackendServiceOptions, type UpdateOptions, type BatchWrite, type EnvironmentSettings } from './service';
export { ServiceError, NotFoundError, ConflictError, InvalidError, InUseError, type ServiceErrorCode } from './errors';
export type { Validator, Problem, SpecReference } from './validator';
