import type { Response } from 'express';

// The one parse, OpenAPI schema and If-Match of every service (@palisade/service-kit).
export { ifMatch, openApiSchema, parse } from '@palisade/service-kit';

/** Sets the view's version as the response's ETag, and returns the view. */
export function withEtag<V extends { etag: number }>(res: Response, view: V): V {
  res.setHeader('etag', `"${view.etag}"`);
  return view;
}
