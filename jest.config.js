// One Jest run for the whole monorepo. Tiers are chosen by file suffix:
//   *.unit.spec.ts  no I/O
//   *.int.spec.ts   real PostgreSQL, NATS (TLS + JetStream), Kafka started by deploy/local
//   *.e2e.spec.ts   the running services over their real APIs
// Workspace packages resolve to their sources, so tests need no build.
const fs = require('node:fs');
const path = require('node:path');
const swcrc = JSON.parse(fs.readFileSync(path.join(__dirname, '.swcrc'), 'utf8'));
delete swcrc.$schema;

const tier = process.env.TEST_TIER; // unit | int | e2e | undefined (all)
const testMatch = tier ? [`**/*.${tier}.spec.ts`] : ['**/*.spec.ts'];

module.exports = {
  rootDir: __dirname,
  roots: ['<rootDir>/libs', '<rootDir>/services', '<rootDir>/deploy', '<rootDir>/test'],
  testMatch,
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  transform: { '^.+\\.ts$': ['@swc/jest', swcrc] },
  moduleNameMapper: { '^@palisade/([^/]+)$': '<rootDir>/libs/$1/src/index.ts' },
  moduleFileExtensions: ['ts', 'js', 'json'],
  testEnvironment: 'node',
  globalSetup: '<rootDir>/test/global-setup.js',
  testTimeout: 60000,
  maxWorkers: 2,
};
