// Fast unit/contract suites; end-to-end suites that drive the real Pulumi CLI (the provider-behaviour ones
// against both backends); kernel and browser suites.
const ESM_ONLY = '(nock|@mswjs/interceptors|@open-draft/[^/]+|outvariant|strict-event-emitter|is-node-process|rettime)';
const transform = {
  '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2023' } }],
  // nock 15 and its interceptors ship ES modules only; Jest on Node 22 loads test code as CommonJS, so they are compiled too.
  [`^.+/node_modules/${ESM_ONLY}/.+\\.m?js$`]: ['@swc/jest', { jsc: { target: 'es2023' }, module: { type: 'commonjs' } }],
};
const transformIgnorePatterns = [`/node_modules/(?!${ESM_ONLY}/)`];
// End-to-end files that run against both backends: the embedded store (project e2e) and team mode (e2e-server).
const BOTH_BACKENDS = ['resources.test.ts', 'kubernetes-networkpolicy.test.ts', 'drift-and-environments.test.ts', 'flagship.test.ts', 'crash-recovery.test.ts'];
module.exports = {
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      transform,
      transformIgnorePatterns,
      roots: ['<rootDir>/test'],
      testMatch: ['<rootDir>/test/unit/**/*.test.ts', '<rootDir>/test/provider/**/*.test.ts', '<rootDir>/test/store/**/*.test.ts', '<rootDir>/test/server/**/*.test.ts'],
    },
    {
      displayName: 'e2e',
      testEnvironment: 'node',
      transform,
      transformIgnorePatterns,
      roots: ['<rootDir>/test'],
      testMatch: ['<rootDir>/test/e2e/**/*.test.ts'],
      slowTestThreshold: 60,
    },
    {
      // The e2e files that specify provider behaviour (preview, diff, import, refresh, drift, bad input,
      // policy impact, assertions) again, deployed into `microseg serve` on a real PostgreSQL instead of the
      // embedded store (test/support/e2e-backend.ts); one PostgreSQL and server per test file.
      displayName: 'e2e-server',
      testEnvironment: 'node',
      transform,
      transformIgnorePatterns,
      roots: ['<rootDir>/test'],
      testMatch: BOTH_BACKENDS.map((f) => `<rootDir>/test/e2e/${f}`),
      setupFiles: ['<rootDir>/test/support/e2e-server.setup.ts'],
      slowTestThreshold: 60,
    },
    {
      // Real nftables in network namespaces: needs root and nft (scripts/setup.sh installs nftables).
      displayName: 'kernel',
      testEnvironment: 'node',
      transform,
      roots: ['<rootDir>/test'],
      testMatch: ['<rootDir>/test/kernel/**/*.test.ts'],
      slowTestThreshold: 60,
    },
    {
      // The visibility page in real headless Chromium (scripts/setup.sh installs the Debian chromium package).
      displayName: 'browser',
      testEnvironment: 'node',
      transform,
      roots: ['<rootDir>/test'],
      testMatch: ['<rootDir>/test/browser/**/*.test.ts'],
      slowTestThreshold: 60,
    },
  ],
};
