// setupFiles of the jest project e2e-server: the e2e files it runs deploy into `microseg serve` on PostgreSQL
// (test/support/e2e-backend.ts). Jest gives each test file its own copy of process.env, so this stays in it.
process.env.MICROSEG_E2E_BACKEND = 'server';
