// Two projects: fast unit/contract suites, and end-to-end suites that drive the real Pulumi CLI.
const ESM_ONLY = '(nock|@mswjs/interceptors|@open-draft/[^/]+|outvariant|strict-event-emitter|is-node-process|rettime)';
const transform = {
  '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2023' } }],
  // nock 15 and its interceptors ship ES modules only; Jest on Node 22 loads test code as CommonJS, so they are compiled too.
  [`^.+/node_modules/${ESM_ONLY}/.+\\.m?js$`]: ['@swc/jest', { jsc: { target: 'es2023' }, module: { type: 'commonjs' } }],
};
const transformIgnorePatterns = [`/node_modules/(?!${ESM_ONLY}/)`];
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
      // Real nftables in network namespaces: needs root and nft (scripts/setup.sh installs nftables).
      displayName: 'kernel',
      testEnvironment: 'node',
      transform,
      roots: ['<rootDir>/test'],
      testMatch: ['<rootDir>/test/kernel/**/*.test.ts'],
      slowTestThreshold: 60,
    },
  ],
};
