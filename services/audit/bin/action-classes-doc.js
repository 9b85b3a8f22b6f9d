#!/usr/bin/env node
// Writes services/audit/docs/action-classes.md from the action-class table (build first).
'use strict';
const { writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { actionClassesMarkdown } = require('../dist/coverage/action-classes');

writeFileSync(join(__dirname, '..', 'docs', 'action-classes.md'), actionClassesMarkdown());
