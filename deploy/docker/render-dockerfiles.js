#!/usr/bin/env node
// Writes services/<name>/Dockerfile for each service of libs/contracts' SERVICES: the
// shared deploy/docker/service.Dockerfile with SERVICE and PORT filled in, so that each
// service has a Dockerfile of its own and they cannot drift apart. Run after editing
// the template (needs libs/contracts built); deploy/compose.unit.spec.ts checks them.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const REPO = path.resolve(__dirname, '..', '..');
const TEMPLATE = path.join(__dirname, 'service.Dockerfile');
// a service's Node flags (measured reasons in its README): the same as `npm start` runs it with
const { NODE_FLAGS } = require(path.join(REPO, 'scripts', 'platform-runner.js'));

function renderServiceDockerfile(template, service, port) {
  const header = [
    '# syntax=docker/dockerfile:1',
    `# The ${service} service. Generated from deploy/docker/service.Dockerfile by`,
    '# deploy/docker/render-dockerfiles.js: edit the template, then run that script.',
    '#',
    `#   docker build -f services/${service}/Dockerfile -t palisade/${service} .`,
  ].join('\n');
  const body = template
    .replace(/^# syntax=.*\n/, '')
    .replace(/^((?:#.*)?\n)*/, '')
    .replace(/^ARG SERVICE$/gm, `ARG SERVICE=${service}`)
    .replace(/^ARG PORT$/gm, `ARG PORT=${port}`)
    .replace(/^CMD \["node", "\/app\/main.js"\]$/m, `CMD ${JSON.stringify(['node', ...(NODE_FLAGS[service] ?? []), '/app/main.js']).replace(/","/g, '", "')}`);
  return `${header}\n${body}`;
}

module.exports = { renderServiceDockerfile, TEMPLATE };

if (require.main === module) {
  const { SERVICES } = require(path.join(REPO, 'libs', 'contracts'));
  const template = fs.readFileSync(TEMPLATE, 'utf8');
  for (const [service, { port }] of Object.entries(SERVICES)) {
    const file = path.join(REPO, 'services', service, 'Dockerfile');
    fs.writeFileSync(file, renderServiceDockerfile(template, service, port));
    console.log(`wrote ${path.relative(REPO, file)}`);
  }
}
