// The one parse, OpenAPI schema, If-Match and ETag of every service (@palisade/service-kit).
export { ifMatch, openApiSchema, parse, withEtag } from '@palisade/service-kit';
