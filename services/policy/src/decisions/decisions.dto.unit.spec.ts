import { askedByService, decisionRequestSchema } from './decisions.dto';
import { evaluate } from '../model/evaluate';

const request = decisionRequestSchema.parse({
  tenantId: 'acme',
  subject: { type: 'user', id: 'alice' },
  action: 'read',
  resource: { type: 'document', id: 'd-1' },
  explain: true,
});

describe('askedByService', () => {
  it('drops explain and stamps the asking service, so a decision asked by a service never carries explain details', () => {
    const asked = askedByService(request, 'llm-router');
    expect(asked).not.toHaveProperty('explain');
    expect(asked.askedBy).toBe('llm-router');
    expect(evaluate(asked, { tenant: undefined, platform: undefined })).not.toHaveProperty('explain');
    expect(evaluate(request, { tenant: undefined, platform: undefined })).toHaveProperty('explain'); // what it would have returned
  });

  it('stamps no service when the caller is unknown', () => {
    expect(askedByService(request, undefined)).not.toHaveProperty('askedBy');
  });
});
