// The one parse, OpenAPI schema and If-Match of every service (@palisade/service-kit).
export { ifMatch, openApiSchema, parse } from '@palisade/service-kit';

