import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { SERVICE_NAMES } from '@palisade/contracts';
import { ACTION_CLASSES, actionClassesMarkdown, actionClassOf, EVENT_TYPE_CLASSES, UNCLASSIFIED } from './action-classes';

const REPO = join(__dirname, '..', '..', '..', '..');
const SERVICES_DIR = join(REPO, 'services');

function* eventsFiles(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (name === 'node_modules' || name === 'dist') continue;
    if (statSync(path).isDirectory()) yield* eventsFiles(path);
    else if (name.endsWith('.events.ts')) yield path;
  }
}

/**
 * Every event type a service defines: string literals `<service>.<aggregate>.<verb>` in
 * services/<svc>/src/**\/*.events.ts (where style.md puts them), plus the
 * `<service>.lifecycle.started` every service emits through service-kit.
 */
function emittedTypes(): Map<string, string> {
  const services = SERVICE_NAMES.map((s) => s.replace(/[-]/g, '\\-')).join('|');
  const literal = new RegExp(`['"\`]((?:${services})\\.[a-z][a-z0-9_-]*\\.[a-z][a-z0-9_]*)['"\`]`, 'g');
  const found = new Map<string, string>();
  for (const service of readdirSync(SERVICES_DIR)) {
    const src = join(SERVICES_DIR, service, 'src');
    if (!statSync(join(SERVICES_DIR, service)).isDirectory()) continue;
    let files: string[] = [];
    try {
      files = [...eventsFiles(src)];
    } catch {
      continue;
    }
    for (const file of files) {
      for (const m of readFileSync(file, 'utf8').matchAll(literal)) found.set(m[1], relative(REPO, file));
    }
  }
  for (const s of SERVICE_NAMES) found.set(`${s}.lifecycle.started`, 'libs/service-kit/src/lifecycle.ts');
  return found;
}

describe('action-class coverage', () => {
  const emitted = emittedTypes();

  it('finds the event types the services define (the scan works)', () => {
    expect(emitted.get('credential.secret.read')).toMatch(/^services\/credential\/src\/.+\.events\.ts$/);
    expect(emitted.get('audit.subject.erased')).toBe('services/audit/src/audit.events.ts');
    expect(emitted.size).toBeGreaterThan(40);
  });

  it('classifies every event type every service emits (add new types to src/coverage/action-classes.ts)', () => {
    const missing = [...emitted].filter(([type]) => actionClassOf(type) === UNCLASSIFIED).map(([type, file]) => `${type} (${file})`);
    expect(missing).toEqual([]);
  });

  it('lists only real classes, and no type that no service defines any more', () => {
    for (const c of Object.values(EVENT_TYPE_CLASSES)) expect(ACTION_CLASSES).toContain(c);
    expect(Object.keys(EVENT_TYPE_CLASSES).filter((t) => !emitted.has(t))).toEqual([]);
  });

  it('docs/action-classes.md is the table, generated (node services/audit/bin/action-classes-doc.js)', () => {
    expect(readFileSync(join(__dirname, '..', '..', 'docs', 'action-classes.md'), 'utf8')).toBe(actionClassesMarkdown());
  });
});
