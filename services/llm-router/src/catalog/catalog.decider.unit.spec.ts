import { DeciderSpecification } from '@palisade/eventsourcing';
import { catalogDecider, type CatalogCommand } from './catalog.decider';
import type { CatalogEvent, ModelDefinition, ProviderDefinition } from './catalog.events';

const spec = DeciderSpecification.for(catalogDecider);
const at = { tenantId: 'acme', actor: { type: 'user' as const, id: 'alice' }, now: new Date('2026-12-03T10:00:00.000Z') };
const cmd = (c: Omit<CatalogCommand, 'metadata'>) => ({ ...c, metadata: at }) as CatalogCommand;

const local: ProviderDefinition = { providerId: 'local', kind: 'openai', baseUrl: 'http://10.0.0.5:8000/v1', compliance: 'private' };
const llama: ModelDefinition = { modelId: 'llama', providerId: 'local', upstreamModel: 'llama-3.3-70b', contextWindow: 131072, maxOutputTokens: 8192, inputMicrosPerMTok: 100_000, outputMicrosPerMTok: 200_000 };
const providerRegistered: CatalogEvent = { type: 'llm-router.provider.registered', data: local };
const modelRegistered: CatalogEvent = { type: 'llm-router.model.registered', data: llama };
const routeConfigured: CatalogEvent = { type: 'llm-router.route.configured', data: { routeId: 'default', candidates: ['llama'] } };

describe('catalog decider', () => {
  it('registers providers, models of registered providers and routes of registered models; the same definition again changes nothing', () => {
    spec([]).when(cmd({ type: 'register-provider', data: local })).then([providerRegistered]);
    spec([providerRegistered]).when(cmd({ type: 'register-provider', data: local })).then([]);
    spec([providerRegistered]).when(cmd({ type: 'register-model', data: llama })).then([modelRegistered]);
    spec([providerRegistered, modelRegistered]).when(cmd({ type: 'configure-route', data: { routeId: 'default', candidates: ['llama'] } })).then([routeConfigured]);
  });

  it('refuses a model of an unknown provider, a route of unknown or repeated models, and names shared by a route and a model', () => {
    spec([]).when(cmd({ type: 'register-model', data: llama })).thenThrows('validation', 'providerId: no such provider');
    spec([providerRegistered, modelRegistered]).when(cmd({ type: 'configure-route', data: { routeId: 'r', candidates: ['gpt'] } })).thenThrows('validation', 'no such model gpt');
    spec([providerRegistered, modelRegistered]).when(cmd({ type: 'configure-route', data: { routeId: 'r', candidates: ['llama', 'llama'] } })).thenThrows('validation', 'each model at most once');
    spec([providerRegistered, modelRegistered]).when(cmd({ type: 'configure-route', data: { routeId: 'llama', candidates: ['llama'] } })).thenThrows('conflict', 'a model has this name');
    spec([providerRegistered, modelRegistered, routeConfigured]).when(cmd({ type: 'register-model', data: { ...llama, modelId: 'default' } })).thenThrows('conflict', 'a route has this name');
  });

  it('removes nothing in use, and removes what is not', () => {
    spec([providerRegistered, modelRegistered]).when(cmd({ type: 'remove-provider', data: { providerId: 'local' } })).thenThrows('illegal_state', 'used by model llama');
    spec([providerRegistered, modelRegistered, routeConfigured]).when(cmd({ type: 'remove-model', data: { modelId: 'llama' } })).thenThrows('illegal_state', 'candidate of route default');
    spec([providerRegistered, modelRegistered, routeConfigured]).when(cmd({ type: 'remove-route', data: { routeId: 'default' } })).then([{ type: 'llm-router.route.removed', data: { routeId: 'default' } }]);
    spec([providerRegistered, modelRegistered]).when(cmd({ type: 'remove-model', data: { modelId: 'llama' } })).then([{ type: 'llm-router.model.removed', data: { modelId: 'llama' } }]);
    spec([]).when(cmd({ type: 'remove-route', data: { routeId: 'x' } })).thenThrows('not_found');
  });

  it('turns zero retention on and off, and the same setting again changes nothing', () => {
    const on: CatalogEvent = { type: 'llm-router.settings.configured', data: { zeroRetention: true } };
    spec([]).when(cmd({ type: 'configure-settings', data: { zeroRetention: false } })).then([]);
    spec([]).when(cmd({ type: 'configure-settings', data: { zeroRetention: true } })).then([on]);
    spec([on]).when(cmd({ type: 'configure-settings', data: { zeroRetention: true } })).then([]);
    spec([on]).when(cmd({ type: 'configure-settings', data: { zeroRetention: false } })).then([{ type: 'llm-router.settings.configured', data: { zeroRetention: false } }]);
  });
});
