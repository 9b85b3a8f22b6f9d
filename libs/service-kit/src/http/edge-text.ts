import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { PalisadeError } from '@palisade/contracts';
import type { Request } from 'express';

/**
 * NUL, the bidirectional embedding, override and isolate controls (U+202A–U+202E,
 * U+2066–U+2069), and a UTF-16 surrogate without its other half (matched by code unit).
 */
// eslint-disable-next-line no-control-regex -- NUL is exactly what is refused
const FORBIDDEN = /[\u0000\u202A-\u202E\u2066-\u2069]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Text no field may hold: a NUL, a lone UTF-16 surrogate, or a bidirectional control. */
export function isUnsafeText(text: string): boolean {
  return FORBIDDEN.test(text);
}

/**
 * Where in a parsed JSON value (or query object) the first unsafe text is, as a field
 * path (`name`, `rules[2].id`; '' for the value itself); object keys count as text.
 * Iterative, so a deeply nested body cannot exhaust the stack; undefined when all is safe.
 */
export function unsafeTextPath(value: unknown): string | undefined {
  const stack: Array<[unknown, string]> = [[value, '']];
  while (stack.length > 0) {
    const [node, path] = stack.pop()!;
    if (typeof node === 'string') {
      if (isUnsafeText(node)) return path;
    } else if (Array.isArray(node)) {
      for (let i = node.length - 1; i >= 0; i--) stack.push([node[i], `${path}[${i}]`]);
    } else if (node !== null && typeof node === 'object' && !Buffer.isBuffer(node)) {
      const entries = Object.entries(node);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [key, child] = entries[i];
        const childPath = path ? `${path}.${key}` : key;
        if (isUnsafeText(key)) return childPath;
        stack.push([child, childPath]);
      }
    }
  }
  return undefined;
}

/** The first unsafe text of a request: `{ field, location }`, path parameters first, then the query, then the body. */
export function unsafeRequestField(req: Pick<Request, 'params' | 'query' | 'body'>): { field: string; location: 'path' | 'query' | 'body' } | undefined {
  for (const [location, value] of [
    ['path', req.params],
    ['query', req.query],
    ['body', req.body],
  ] as const) {
    const field = unsafeTextPath(value);
    if (field !== undefined) return { field: printable(field) || location, location };
  }
  return undefined;
}

/** A field name fit for a message: any control it holds written as a `\uXXXX` escape. */
function printable(field: string): string {
  // eslint-disable-next-line no-control-regex -- controls are what is escaped
  return field.replace(/[\u0000-\u001F\u202A-\u202E\u2066-\u2069\uD800-\uDFFF]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * The one edge check of text every service shares (a global guard installed by the
 * platform module for every HTTP route, after the mTLS and authentication guards): NUL
 * bytes, lone UTF-16 surrogates (`"\ud800"` in JSON) and bidirectional controls in any
 * path parameter, query parameter or body field are a 400 naming the field, before a
 * handler, a database or a log line sees them.
 *
 * A guard, not an interceptor: with any global interceptor Nest wraps every request's
 * handler in two `AsyncResource.bind` closures, and each carries accessors made for it
 * that V8 keeps in old space, holding the whole request (a router's 4 KB prompt, say)
 * alive across scavenges until the next full collection: longer scavenge pauses on the
 * hottest path.
 */
@Injectable()
export class EdgeTextGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    if (context.getType() === 'http') {
      const unsafe = unsafeRequestField(context.switchToHttp().getRequest<Request>());
      if (unsafe) {
        throw new PalisadeError('validation', `${unsafe.field}: must not contain NUL, unpaired UTF-16 surrogates or bidirectional control characters`, {
          field: unsafe.field,
          location: unsafe.location,
        });
      }
    }
    return true;
  }
}
