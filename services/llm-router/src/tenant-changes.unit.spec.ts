import { eventSubject } from '@palisade/contracts';
import { CATALOG_EVENT_TYPES } from './catalog/catalog.events';
import { GUARD_POLICY_EVENT_TYPES } from './guards/guard-policy.events';
import { HELD_ANSWER_EVENT_TYPES } from './guards/held-answers.events';
import { MODEL_CALL_EVENT_TYPES } from './model-calls/model-calls.events';
import { CONFIG_EVENT_FEEDS, TenantChanges } from './tenant-changes';

/** NATS subject matching: `*` one token, a trailing `>` one or more. */
const matches = (filter: string, subject: string): boolean => {
  const f = filter.split('.');
  const s = subject.split('.');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '>') return s.length > i;
    if (i >= s.length || (f[i] !== '*' && f[i] !== s[i])) return false;
  }
  return f.length === s.length;
};

describe('TenantChanges', () => {
  it('feeds every event that changes what the router caches of a tenant, and none of the per-call ones', () => {
    const fed = (type: string) => CONFIG_EVENT_FEEDS.filter((feed) => matches(feed.filterSubject, eventSubject(type)));
    for (const type of [...CATALOG_EVENT_TYPES, ...GUARD_POLICY_EVENT_TYPES]) expect([type, fed(type).length]).toEqual([type, 1]);
    for (const type of [...MODEL_CALL_EVENT_TYPES, ...HELD_ANSWER_EVENT_TYPES]) expect([type, fed(type).length]).toEqual([type, 0]);
  });

  it('drops here on a sibling\'s word or another instance\'s event, and asks the siblings on its own change', async () => {
    const siblingHandlers: Array<(payload: unknown) => void> = [];
    const broadcasts: unknown[] = [];
    const warnings: object[] = [];
    const changes = new TenantChanges(
      { on: (_topic, handler) => void siblingHandlers.push(handler), broadcast: async (_topic, payload) => (broadcasts.push(payload), { missed: broadcasts.length > 1 ? 1 : 0 }) },
      { warn: (obj) => void warnings.push(obj) },
    );
    const dropped: string[] = [];
    changes.onChange((tenantId) => dropped.push(`a:${tenantId}`));
    changes.onChange((tenantId) => dropped.push(`b:${tenantId}`));
    siblingHandlers.forEach((h) => h({ tenantId: 'acme' }));
    siblingHandlers.forEach((h) => h({ tenant: 'not a change' }));
    changes.dropHere('globex');
    expect(dropped).toEqual(['a:acme', 'b:acme', 'a:globex', 'b:globex']);
    await changes.changed('acme');
    expect(broadcasts).toEqual([{ tenantId: 'acme' }]);
    expect(warnings).toEqual([]);
    // a worker that did not answer: warned, naming the tenant and the count
    await changes.changed('acme');
    expect(warnings).toEqual([{ tenantId: 'acme', workers: 1 }]);
  });
});
