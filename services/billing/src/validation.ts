import { z } from 'zod';

// The one parse, OpenAPI schema and If-Match of every service (@palisade/service-kit).
export { ifMatch, openApiSchema, parse } from '@palisade/service-kit';

export const uuid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'must be a lowercase UUID');
