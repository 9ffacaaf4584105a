// The engine is pure: policy semantics must not reach for Pulumi, the network or the disk.
import tseslint from 'typescript-eslint';

const impure = ['fs', 'fs/promises', 'net', 'http', 'https', 'http2', 'child_process', 'dgram', 'dns', 'tls', 'worker_threads', 'node:sqlite'];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'sdk/**', '.tools/**', '.state/**', 'examples/**/node_modules/**'] },
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.base],
    rules: {},
  },
  {
    files: ['provider/src/engine/**/*.ts', 'provider/src/model/**/*.ts', 'provider/src/realize/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: [...impure, ...impure.map((m) => `node:${m}`)].map((name) => ({ name, message: 'The engine is pure: no disk, network or process I/O.' })),
        patterns: [
          { group: ['@pulumi/*', '@grpc/*', 'axios', 'pg', 'better-sqlite3', 'google-protobuf', '**/provider/provider', '**/provider/provider/**', '**/store', '**/store/**', '**/service', '**/service/**', '**/backend', '**/backend/**', '**/cli', '**/cli/**'], message: 'The engine is pure: no Pulumi, gRPC, HTTP or store imports.' },
        ],
      }],
    },
  },
);
