import { PalisadeError } from '@palisade/contracts';
import { WORKSPACE } from './oci-config';

const MAX_PATH = 1024;
const MAX_NAME = 255;

/**
 * A file path in the workspace, as its names from the workspace down (pure): relative, or
 * absolute under `/workspace`; never `..` or `.`, empty names, NUL or control characters;
 * at most 1024 characters, 255 per name. What it cannot see (symbolic links on the way)
 * is refused when it is opened (`workspace-files.ts`).
 */
export function workspacePath(path: string): string[] {
  const refuse = (why: string) => new PalisadeError('validation', `path: ${why}`);
  if (typeof path !== 'string' || path.length === 0) throw refuse('required');
  if (path.length > MAX_PATH) throw refuse(`at most ${MAX_PATH} characters`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(path)) throw refuse('must not contain control characters');
  let rest = path;
  if (rest.startsWith('/')) {
    if (rest !== WORKSPACE && !rest.startsWith(`${WORKSPACE}/`)) throw refuse(`must be in ${WORKSPACE}`);
    rest = rest.slice(WORKSPACE.length + 1);
  }
  const names = rest.split('/');
  if (names.some((n) => n === '..')) throw refuse('must not contain ..');
  if (names.some((n) => n === '' || n === '.')) throw refuse('must name a file (no empty or . segments)');
  if (names.some((n) => Buffer.byteLength(n) > MAX_NAME)) throw refuse(`names of at most ${MAX_NAME} bytes`);
  return names;
}
