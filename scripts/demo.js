// `npm run demo`: one agent's day against the platform `npm start` runs (scripts/demo.ts,
// which tells it; the steps are test/agent-day/day.ts, shared with the end-to-end test).
// The TypeScript is compiled on load by swc with the repository's .swcrc, as Jest does.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { REPO, infraEnv } = require('./platform-runner');

Object.assign(process.env, infraEnv());
// kafkajs's retry timers trip Node 24's TimeoutNegativeWarning: noise in a demo; other warnings still print
process.removeAllListeners('warning');
process.on('warning', (w) => {
  if (w.name !== 'TimeoutNegativeWarning') console.warn(`${w.name}: ${w.message}`);
});
const swc = require('@swc/core');
const swcrc = JSON.parse(fs.readFileSync(path.join(REPO, '.swcrc'), 'utf8'));
delete swcrc.$schema;
require.extensions['.ts'] = (module, filename) => {
  const { code } = swc.transformSync(fs.readFileSync(filename, 'utf8'), { ...swcrc, filename, swcrc: false, sourceMaps: false });
  module._compile(code, filename);
};

require('./demo.ts')
  .main()
  .then(
    (code) => process.exit(code),
    (error) => {
      console.error(`\nthe demo stopped: ${error && error.message ? error.message : error}`);
      process.exit(1);
    },
  );
