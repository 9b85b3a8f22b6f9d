// Integration and e2e tests use the infrastructure that deploy/local/up.sh started
// (npm test runs it first); it describes itself in .palisade/env, loaded here so
// every test worker inherits it. Unit tests need none of it.
const fs = require('node:fs');
const path = require('node:path');

module.exports = async () => {
  const envFile = path.join(__dirname, '..', '.palisade', 'env');
  if (!fs.existsSync(envFile)) return;
  for (const line of fs.readFileSync(envFile, 'utf8').split('\n')) {
    const match = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (match && process.env[match[1]] === undefined) process.env[match[1]] = match[2];
  }
};
