import { teamIdSchema } from '@palisade/contracts';
import { z } from 'zod';

/** A team id: what tokens carry and ABAC rules compare, so lower case and stable. */
export const teamId = teamIdSchema;
export const teamName = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[^\p{Cc}]+$/u, 'must not contain control characters');

export const createTeamBody = z.strictObject({ teamId, name: teamName });
export const renameTeamBody = z.strictObject({ name: teamName });
export const teamIdParam = teamId;
export const memberIdParam = z.string().uuid('must be a user id (UUID)');
