/** The seven Palisade services, their HTTP ports and databases (brief, "Conventions"). */
export const SERVICES = {
  auth: { port: 7101 },
  policy: { port: 7102 },
  credential: { port: 7103 },
  'sandbox-orchestrator': { port: 7104 },
  audit: { port: 7105 },
  'llm-router': { port: 7106 },
  billing: { port: 7107 },
} as const;

export type ServiceName = keyof typeof SERVICES;

export const SERVICE_NAMES = Object.keys(SERVICES) as ServiceName[];

export function isServiceName(value: string): value is ServiceName {
  return Object.prototype.hasOwnProperty.call(SERVICES, value);
}

/** PostgreSQL database of a service: one per service, `palisade_<name>` with `-` as `_`. */
export function serviceDatabase(service: ServiceName): string {
  return `palisade_${service.replace(/-/g, '_')}`;
}

/** Trust domain of every service identity (SPIFFE-style URI SAN in its certificate). */
export const TRUST_DOMAIN = 'palisade.local';

export function serviceSpiffeId(service: ServiceName): string {
  return `spiffe://${TRUST_DOMAIN}/service/${service}`;
}
