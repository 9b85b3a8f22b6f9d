import { PalisadeError } from '@palisade/contracts';
import type { CatalogState } from '../catalog/catalog.decider';
import type { ModelDefinition, ProviderDefinition } from '../catalog/catalog.events';
import { attemptsOf, callerRules, capabilitiesOf, classify, hasImageType, classWhenServed, permits, plan, raisedByRules, type ClassificationRule, type ClassOf, type RuleSubject } from './routing';

const provider = (providerId: string, compliance: 'private' | 'external'): ProviderDefinition => ({ providerId, kind: 'openai', baseUrl: `http://${providerId}.test/v1`, compliance });
const model = (modelId: string, providerId: string, contextWindow = 128_000): ModelDefinition => ({ modelId, providerId, upstreamModel: modelId, contextWindow, maxOutputTokens: 4096, inputMicrosPerMTok: 1, outputMicrosPerMTok: 1 });

const catalog: CatalogState = {
  providers: { onprem: provider('onprem', 'private'), onprem2: provider('onprem2', 'private'), cloud: provider('cloud', 'external'), cloud2: provider('cloud2', 'external') },
  models: {
    local: model('local', 'onprem'),
    'local-small': model('local-small', 'onprem2', 8_000),
    'local-big': model('local-big', 'onprem2', 200_000),
    gpt: model('gpt', 'cloud'),
    gpt2: model('gpt2', 'cloud2'),
  },
  routes: {
    'cloud-first': { routeId: 'cloud-first', candidates: ['gpt', 'local', 'gpt2'] },
    'cloud-only': { routeId: 'cloud-only', candidates: ['gpt', 'gpt2'] },
    'private-then-cloud': { routeId: 'private-then-cloud', candidates: ['local', 'gpt'] },
    'big-then-small': { routeId: 'big-then-small', candidates: ['local', 'local-small', 'local-big'] },
  },
};
const ids = (c: ReturnType<typeof plan>) => c.map((x) => x.model.modelId);

describe('tenant rules raising the class', () => {
  const agentId = '0190c3a0-0000-7000-8000-000000000001';
  const caller: RuleSubject = { teams: ['finance', 'ops'], agentId, model: 'gpt' };

  it('a team rule raises requests of callers in that team only', () => {
    const rules: ClassificationRule[] = [{ team: 'finance', atLeast: 'confidential' }];
    expect(raisedByRules('internal', rules, caller)).toEqual({ classification: 'confidential', raisedBy: [0] });
    expect(raisedByRules('internal', rules, { ...caller, teams: ['sales'] })).toEqual({ classification: 'internal', raisedBy: [] });
  });

  it('an agent rule raises that agent’s requests only (never a person’s)', () => {
    const rules: ClassificationRule[] = [{ agent: agentId, atLeast: 'restricted' }];
    expect(raisedByRules('public', rules, caller).classification).toBe('restricted');
    expect(raisedByRules('public', rules, { ...caller, agentId: '0190c3a0-0000-7000-8000-000000000002' }).classification).toBe('public');
    expect(raisedByRules('public', rules, { teams: [], model: 'gpt' }).classification).toBe('public');
  });

  it('a model rule raises requests naming that model or route', () => {
    const rules: ClassificationRule[] = [{ model: 'cloud-first', atLeast: 'confidential' }];
    expect(raisedByRules('public', rules, { ...caller, model: 'cloud-first' }).classification).toBe('confidential');
    expect(raisedByRules('public', rules, caller).classification).toBe('public');
  });

  it('every field of a rule must match; the highest matching rule wins and every rule that raised is named', () => {
    const rules: ClassificationRule[] = [
      { team: 'finance', model: 'local', atLeast: 'restricted' },
      { team: 'ops', atLeast: 'internal' },
      { team: 'finance', atLeast: 'confidential' },
      { model: 'gpt', atLeast: 'internal' },
    ];
    expect(raisedByRules('public', rules, caller)).toEqual({ classification: 'confidential', raisedBy: [1, 2, 3] });
    expect(raisedByRules('public', rules, { ...caller, model: 'local' })).toEqual({ classification: 'restricted', raisedBy: [0, 1, 2] });
  });

  it('never lowers: a rule at or below the declared class changes nothing and is not named', () => {
    const rules: ClassificationRule[] = [{ team: 'finance', atLeast: 'internal' }, { agent: agentId, atLeast: 'confidential' }];
    expect(raisedByRules('restricted', rules, caller)).toEqual({ classification: 'restricted', raisedBy: [] });
    expect(raisedByRules('confidential', rules, caller)).toEqual({ classification: 'confidential', raisedBy: [] });
  });
});

describe('rules on a model apply to the candidate that serves the request', () => {
  const caller: RuleSubject = { teams: [], model: 'cloud-first' };
  /** The class as the call path computes it: the declared one raised by the rules matching the route and the models tried. */
  const classOf =
    (declared: 'public' | 'internal', rules: ClassificationRule[]): ClassOf =>
    (served) =>
      raisedByRules(declared, rules, { ...caller, served }).classification;
  const classes = (c: ReturnType<typeof plan>) => c.map((x) => `${x.model.modelId}@${x.classification}`);

  it('a rule naming a model matches when that model is tried for a route, and only then', () => {
    const rules: ClassificationRule[] = [{ model: 'local', atLeast: 'restricted' }];
    expect(raisedByRules('public', rules, { ...caller, served: ['gpt', 'local'] })).toEqual({ classification: 'restricted', raisedBy: [0] });
    expect(raisedByRules('public', rules, { ...caller, served: ['gpt'] }).classification).toBe('public');
    expect(raisedByRules('public', rules, caller).classification).toBe('public');
  });

  it('the rules made once per request give, per list of models tried, the class raisedByRules gives', () => {
    const agentId = '0190c3a0-0000-7000-8000-000000000001';
    const who: RuleSubject = { teams: ['finance'], agentId, model: 'cloud-first' };
    const rules: ClassificationRule[] = [
      { team: 'finance', model: 'local', atLeast: 'confidential' },
      { team: 'sales', model: 'gpt', atLeast: 'restricted' },
      { agent: agentId, model: 'gpt2', atLeast: 'restricted' },
      { model: 'cloud-first', atLeast: 'internal' },
      { model: 'local', atLeast: 'internal' },
    ];
    const made = callerRules('public', rules, who);
    for (const served of [[], ['gpt'], ['local'], ['gpt', 'local'], ['gpt2'], ['local', 'gpt2']]) {
      expect(classWhenServed(made, served)).toBe(raisedByRules('public', rules, { ...who, served }).classification);
    }
    expect(classWhenServed(made, ['local'])).toBe('confidential');
    expect(classWhenServed(made, ['gpt'])).toBe('internal');
  });

  it('raises the class per candidate before it is tried: a candidate whose own rule raises the class above what its provider may receive is skipped', () => {
    expect(classes(plan(catalog, 'cloud-first', classOf('public', [{ model: 'gpt', atLeast: 'confidential' }])))).toEqual(['local@public']);
    expect(classes(plan(catalog, 'cloud-first', classOf('public', [{ model: 'local', atLeast: 'restricted' }])))).toEqual(['gpt@public', 'local@restricted']);
  });

  it('refuses when no candidate’s provider may receive the class its own rules give, naming each; nothing is sent', () => {
    const rules: ClassificationRule[] = [{ model: 'gpt', atLeast: 'confidential' }, { model: 'gpt2', atLeast: 'restricted' }];
    expect(() => plan(catalog, 'cloud-only', classOf('public', rules))).toThrow(expect.objectContaining({ code: 'forbidden', message: expect.stringContaining('gpt: confidential, gpt2: restricted') }));
  });

  it('a fallback is never tried at a lower class than the attempt before it: the rules of the candidates tried before it still apply', () => {
    // local raised the class to restricted: gpt2, external, is no fallback after it
    const planned = plan(catalog, 'cloud-first', classOf('public', [{ model: 'local', atLeast: 'restricted' }]));
    expect(classes(planned)).toEqual(['gpt@public', 'local@restricted']);
    // nor is gpt tried again at restricted
    expect(classes(attemptsOf(planned))).toEqual(['gpt@public', 'local@restricted']);
    // a private first candidate raised to restricted: its private fallback is tried at restricted too, and it again
    const big = plan(catalog, 'big-then-small', classOf('internal', [{ model: 'local', atLeast: 'restricted' }]));
    expect(classes(attemptsOf(big))).toEqual(['local@restricted', 'local-big@restricted', 'local@restricted']);
  });

  it('the fallback rules still hold per candidate: never a smaller context window nor a model without the capabilities used', () => {
    const withCaps: CatalogState = { ...catalog, models: { ...catalog.models, 'local-big': { ...catalog.models['local-big'], capabilities: [] } } };
    expect(classes(plan(withCaps, 'big-then-small', classOf('internal', [{ model: 'local-small', atLeast: 'confidential' }]), ['tools']))).toEqual(['local@internal']);
  });
});

describe('classification', () => {
  it('keeps the declared class when nothing is found', () => {
    expect(classify('public', [])).toBe('public');
    expect(classify('restricted', [])).toBe('restricted');
  });
  it('raises to confidential for personal data and to restricted for secrets', () => {
    for (const type of ['email', 'phone', 'ip', 'card', 'iban', 'us_ssn', 'cn_resident_id'] as const) expect(classify('public', [type])).toBe('confidential');
    expect(classify('internal', ['email', 'secret'])).toBe('restricted');
  });
  it('never lowers what the caller declared', () => {
    expect(classify('restricted', ['email'])).toBe('restricted');
  });
});

describe('compliance routing', () => {
  it('lets external providers receive public and internal data only; private providers everything', () => {
    expect(['public', 'internal', 'confidential', 'restricted'].map((c) => permits('external', c as never))).toEqual([true, true, false, false]);
    expect(['public', 'internal', 'confidential', 'restricted'].map((c) => permits('private', c as never))).toEqual([true, true, true, true]);
  });

  it('sends confidential and restricted requests only to private providers, skipping external candidates', () => {
    expect(ids(plan(catalog, 'cloud-first', 'confidential'))).toEqual(['local']);
    expect(ids(plan(catalog, 'cloud-first', 'restricted'))).toEqual(['local']);
    expect(ids(plan(catalog, 'cloud-first', 'internal'))).toEqual(['gpt', 'local', 'gpt2']);
  });

  it('refuses when no permitted provider exists: nothing is sent where it may not go', () => {
    expect(() => plan(catalog, 'cloud-only', 'confidential')).toThrow(PalisadeError);
    expect(() => plan(catalog, 'gpt', 'restricted')).toThrow(/may receive restricted data/);
  });

  it('never falls back to a lower compliance class than the first candidate', () => {
    expect(ids(plan(catalog, 'private-then-cloud', 'public'))).toEqual(['local']);
  });

  it('never falls back to a model with a smaller context window', () => {
    expect(ids(plan(catalog, 'big-then-small', 'internal'))).toEqual(['local', 'local-big']);
  });

  it('resolves a model name directly, and an unknown name is not found', () => {
    expect(ids(plan(catalog, 'gpt', 'public'))).toEqual(['gpt']);
    expect(() => plan(catalog, 'nope', 'public')).toThrow(/no such model/);
    expect(() => plan(catalog, 'constructor', 'public')).toThrow(/no such model/);
  });

  it('makes at most three attempts, repeating a lone candidate, never more', () => {
    expect(ids(attemptsOf(plan(catalog, 'gpt', 'public')))).toEqual(['gpt', 'gpt', 'gpt']);
    expect(ids(attemptsOf(plan(catalog, 'cloud-first', 'public')))).toEqual(['gpt', 'local', 'gpt2']);
  });
});

describe('capabilities', () => {
  const withCaps: CatalogState = {
    ...catalog,
    models: {
      ...catalog.models,
      'text-only': { ...model('text-only', 'onprem'), capabilities: [] },
      'tools-only': { ...model('tools-only', 'onprem2'), capabilities: ['tools'] },
      vision: { ...model('vision', 'onprem2'), capabilities: ['tools', 'images'] },
    },
    routes: { mixed: { routeId: 'mixed', candidates: ['text-only', 'tools-only', 'vision', 'local'] }, 'text-only': { routeId: 'text-only', candidates: ['text-only'] } },
  };

  it('never routes a request to a model that declares it cannot do what the request uses, first candidate or fallback', () => {
    expect(ids(plan(withCaps, 'mixed', 'internal'))).toEqual(['text-only', 'tools-only', 'vision']);
    expect(ids(plan(withCaps, 'mixed', 'internal', ['tools']))).toEqual(['tools-only', 'vision', 'local']);
    // a model that declares nothing is taken as able (catalogs from before capabilities)
    expect(ids(plan(withCaps, 'mixed', 'internal', ['tools', 'images']))).toEqual(['vision', 'local']);
  });

  it('refuses when no permitted model can: nothing is sent', () => {
    expect(() => plan(withCaps, 'text-only', 'internal', ['images'])).toThrow(expect.objectContaining({ code: 'validation', message: expect.stringContaining('images') }));
  });

  it('reads what a request uses in either API: tools offered, images in messages, system prompts and tool results', () => {
    expect(capabilitiesOf({ messages: [{ role: 'user', content: 'hi' }] })).toEqual([]);
    expect(capabilitiesOf({ tools: [{ type: 'function', function: { name: 'f' } }], messages: [] })).toEqual(['tools']);
    expect(capabilitiesOf({ tools: [], messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,AA' } }] }] })).toEqual(['images']);
    expect(capabilitiesOf({ messages: [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 't', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AA' } }] }] }] })).toEqual(['images']);
    // the words in a text are not an image
    expect(capabilitiesOf({ messages: [{ role: 'user', content: 'send {"type":"image_url"}' }] })).toEqual([]);
  });

  it('finds images without stringifying the request, exactly where the JSON holds "type":"image_url" or "type":"image"', () => {
    const byText = (v: unknown) => /"type":"(image_url|image)"/.test(JSON.stringify(v));
    const keys = ['type', 'x"type', 'xtype', 'Type', 'image_url', 'content', 'a\\"type'];
    const values = ['image', 'image_url', 'images', 'text', ' image', '"type":"image"', 1, null, true, undefined];
    let seed = 3;
    const random = (n: number) => (seed = (seed * 1103515245 + 12345) % 2147483648) % n;
    const made = (depth: number): unknown => {
      if (depth > 3 || random(3) === 0) return values[random(values.length)];
      if (random(2) === 0) return Array.from({ length: random(4) }, () => made(depth + 1));
      return Object.fromEntries(Array.from({ length: random(4) }, () => [keys[random(keys.length)], made(depth + 1)]));
    };
    for (let i = 0; i < 5000; i++) {
      const body = { system: made(1), messages: made(0) };
      expect(capabilitiesOf(body).includes('images')).toBe(byText([body.system ?? null, body.messages ?? null]));
    }
    expect(hasImageType([{ at: new Date(0) }])).toBeUndefined();
    expect(capabilitiesOf({ messages: [{ role: 'user', content: [{ type: 'image' }], at: new Date(0) }] })).toEqual(['images']);
  });
});

describe('route weights', () => {
  const weighted: CatalogState = {
    ...catalog,
    routes: {
      split: { routeId: 'split', candidates: ['gpt', 'gpt2', 'local'], weights: [3, 1, 0] },
      'private-split': { routeId: 'private-split', candidates: ['local', 'local-big', 'gpt'], weights: [1, 1, 8] },
    },
  };
  const firstOf = (route: string, r: number, classification: 'internal' | 'confidential' = 'internal') => plan(weighted, route, classification, [], () => r)[0].model.modelId;

  it('draws the first candidate by weight; the others follow in order as fallbacks', () => {
    expect(firstOf('split', 0)).toBe('gpt');
    expect(firstOf('split', 0.74)).toBe('gpt');
    expect(firstOf('split', 0.75)).toBe('gpt2');
    expect(ids(plan(weighted, 'split', 'internal', [], () => 0.9))).toEqual(['gpt2', 'gpt', 'local']);
    // weight 0: never drawn, still a fallback
    const drawn = new Set(Array.from({ length: 100 }, (_, i) => firstOf('split', i / 100)));
    expect([...drawn].sort()).toEqual(['gpt', 'gpt2']);
  });

  it('draws only among what the class permits, and the fallback rules hold for the one drawn', () => {
    // confidential: gpt (weight 8) is not permitted, so the draw is between the two private models
    expect(new Set(Array.from({ length: 100 }, (_, i) => firstOf('private-split', i / 100, 'confidential')))).toEqual(new Set(['local', 'local-big']));
    // local-big drawn: local (smaller context window) is no fallback of it
    expect(ids(plan(weighted, 'private-split', 'confidential', [], () => 0.99))).toEqual(['local-big']);
  });
});
