// Two projects: fast unit/contract suites, and end-to-end suites that drive the real Pulumi CLI.
const transform = { '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2023' } }] };
module.exports = {
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      transform,
      roots: ['<rootDir>/test'],
      testMatch: ['<rootDir>/test/unit/**/*.test.ts', '<rootDir>/test/provider/**/*.test.ts', '<rootDir>/test/store/**/*.test.ts'],
    },
    {
      displayName: 'e2e',
      testEnvironment: 'node',
      transform,
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
