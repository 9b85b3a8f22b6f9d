import type { DomainEvent } from '@palisade/eventsourcing';

/**
 * Stream `team-<tenant>.<teamId>`. A team (a department) groups users of a tenant; its id
 * is what tokens carry (`teams`, `dept`) and ABAC rules read (`subject.teams`,
 * `subject.department`), so it never changes; the name may. Team ids and names are the
 * organisation's words, not personal data; members are named by user id only.
 */
export type TeamEvent =
  | DomainEvent<'auth.team.created', { teamId: string; name: string }>
  | DomainEvent<'auth.team.renamed', { teamId: string; name: string }>
  | DomainEvent<'auth.team.archived', { teamId: string }>
  | DomainEvent<'auth.team-member.added', { teamId: string; userId: string; source: TeamMembershipSource }>
  | DomainEvent<'auth.team-member.removed', { teamId: string; userId: string; source: TeamMembershipSource }>;

/** Who made a membership: an administrator, or a directory / IdP group mapping at sign-in. */
export type TeamMembershipSource = 'admin' | 'group-mapping';
