import { z } from 'zod';
import { createApiKeyBody, rotateApiKeyBody } from '../api-keys/api-keys.dto';
import { audience } from '../validation';
import { teamId } from '../teams/teams.dto';
import { MAX_GUIDE_BYTES } from './agents.decider';

export const agentIdParam = z.string().uuid('must be an agent id (UUID)');
export const agentName = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'must be an agent name: lower case letters, digits, ".", "_", "-", at most 63');

export const registerAgentBody = z.strictObject({
  name: agentName,
  /** Required for an agent; a subagent is in its parent's team. */
  teamId: teamId.optional(),
  /** Administrators only: the user the agent acts for (default: the caller). */
  ownerId: z.string().uuid('must be a user id (UUID)').optional(),
  /** Registers a subagent of this agent (one level only). */
  parentAgentId: agentIdParam.optional(),
});

export const createAgentKeyBody = createApiKeyBody.omit({ serviceAccount: true });
export const rotateAgentKeyBody = rotateApiKeyBody;
export const agentKeyIdParam = z.string().regex(/^[0-9a-f]{24}$/, 'must be an API key id');

export const agentGuideBody = z.strictObject({
  text: z.string().refine((t) => Buffer.byteLength(t) <= MAX_GUIDE_BYTES, `must be at most ${MAX_GUIDE_BYTES} bytes`),
});

export const agentTokenBody = z.strictObject({ apiKey: z.string().min(1).max(200), audience: audience.optional() });
