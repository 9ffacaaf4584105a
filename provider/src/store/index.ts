/** The store: durable storage of microseg objects behind one interface. */
export * from './types';
export { StoreError, type StoreErrorCode, type StoreErrorDetails } from './errors';
export { MemoryStore } from './memory';
export { SqliteStore, openSqliteStore, type SqliteStoreOptions } from './sqlite';
export { resolveDataDir, resolveDatabaseFile, DATABASE_FILE, type DataDirOptions } from './datadir';
export { MIGRATIONS, LATEST_VERSION, APPLICATION_ID, type Migration } from './migrations';
export { exportState, importState, parseStateDocument, STATE_FORMAT, STATE_VERSION, type StateDocument, type StateObject, type ExportOptions } from './state';
export { PostgresStore, openPostgresStore, redactUrl, CHANGES_CHANNEL, type PostgresStoreOptions } from './postgres';
export { PG_MIGRATIONS, PG_LATEST_VERSION } from './postgres-migrations';
export { secretKeySource, SECRET_KEY_FILE } from './secret-key';
export { checkFlow, mergeFlow, flowMatches, compareFlows, flowRecordSchema } from './flows';
export { checkAudit } from './audit';
