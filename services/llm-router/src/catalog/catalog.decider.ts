import { PalisadeError } from '@palisade/contracts';
import type { Command, Decider } from '@palisade/eventsourcing';
import type { CatalogEvent, ModelDefinition, ProviderDefinition, RouteDefinition, RouterSettings } from './catalog.events';

export const MAX_PROVIDERS = 100;
export const MAX_MODELS = 500;
export const MAX_ROUTES = 500;

export interface CatalogState {
  providers: Readonly<Record<string, ProviderDefinition>>;
  models: Readonly<Record<string, ModelDefinition>>;
  routes: Readonly<Record<string, RouteDefinition>>;
  /** Absent until configured (catalogs stored before settings existed): zero retention off. */
  settings?: RouterSettings;
}

export type CatalogCommand =
  | Command<'register-provider', ProviderDefinition>
  | Command<'remove-provider', { providerId: string }>
  | Command<'register-model', ModelDefinition>
  | Command<'remove-model', { modelId: string }>
  | Command<'configure-route', RouteDefinition>
  | Command<'remove-route', { routeId: string }>
  | Command<'configure-settings', RouterSettings>;

const same = (a: object, b: object | undefined) => b !== undefined && JSON.stringify(a) === JSON.stringify(b);
const without = <T>(record: Readonly<Record<string, T>>, key: string): Record<string, T> => Object.fromEntries(Object.entries(record).filter(([k]) => k !== key));

/**
 * The catalog's own rules: a model names a registered provider, a route names registered
 * models (each once), nothing in use is removed, and a route and a model never share a name
 * (a request's `model` must mean one thing). Registering again replaces; the same
 * definition again changes nothing.
 */
export const catalogDecider: Decider<CatalogState, CatalogCommand, CatalogEvent> = {
  initialState: () => ({ providers: {}, models: {}, routes: {} }),

  decide(command, state) {
    switch (command.type) {
      case 'register-provider': {
        const p = command.data;
        if (same(p, state.providers[p.providerId])) return [];
        if (!state.providers[p.providerId] && Object.keys(state.providers).length >= MAX_PROVIDERS) throw new PalisadeError('validation', `providerId: at most ${MAX_PROVIDERS} providers per tenant`);
        return [{ type: 'llm-router.provider.registered', data: p }];
      }
      case 'remove-provider': {
        const { providerId } = command.data;
        if (!state.providers[providerId]) throw new PalisadeError('not_found', 'provider not found');
        const user = Object.values(state.models).find((m) => m.providerId === providerId);
        if (user) throw new PalisadeError('illegal_state', `provider is used by model ${user.modelId}: remove the model first`);
        return [{ type: 'llm-router.provider.removed', data: { providerId } }];
      }
      case 'register-model': {
        const m = command.data;
        if (!state.providers[m.providerId]) throw new PalisadeError('validation', 'providerId: no such provider');
        if (state.routes[m.modelId]) throw new PalisadeError('conflict', 'modelId: a route has this name');
        if (same(m, state.models[m.modelId])) return [];
        if (!state.models[m.modelId] && Object.keys(state.models).length >= MAX_MODELS) throw new PalisadeError('validation', `modelId: at most ${MAX_MODELS} models per tenant`);
        return [{ type: 'llm-router.model.registered', data: m }];
      }
      case 'remove-model': {
        const { modelId } = command.data;
        if (!state.models[modelId]) throw new PalisadeError('not_found', 'model not found');
        const user = Object.values(state.routes).find((r) => r.candidates.includes(modelId));
        if (user) throw new PalisadeError('illegal_state', `model is a candidate of route ${user.routeId}: change the route first`);
        return [{ type: 'llm-router.model.removed', data: { modelId } }];
      }
      case 'configure-route': {
        const r = command.data;
        if (state.models[r.routeId]) throw new PalisadeError('conflict', 'routeId: a model has this name');
        if (new Set(r.candidates).size !== r.candidates.length) throw new PalisadeError('validation', 'candidates: each model at most once');
        const unknown = r.candidates.find((c) => !state.models[c]);
        if (unknown !== undefined) throw new PalisadeError('validation', `candidates: no such model ${unknown}`);
        if (same(r, state.routes[r.routeId])) return [];
        if (!state.routes[r.routeId] && Object.keys(state.routes).length >= MAX_ROUTES) throw new PalisadeError('validation', `routeId: at most ${MAX_ROUTES} routes per tenant`);
        return [{ type: 'llm-router.route.configured', data: r }];
      }
      case 'remove-route':
        if (!state.routes[command.data.routeId]) throw new PalisadeError('not_found', 'route not found');
        return [{ type: 'llm-router.route.removed', data: { routeId: command.data.routeId } }];
      case 'configure-settings':
        if (same(command.data, state.settings ?? { zeroRetention: false })) return [];
        return [{ type: 'llm-router.settings.configured', data: command.data }];
    }
  },

  evolve(state, event) {
    switch (event.type) {
      case 'llm-router.provider.registered':
        return { ...state, providers: { ...state.providers, [event.data.providerId]: event.data } };
      case 'llm-router.provider.removed':
        return { ...state, providers: without(state.providers, event.data.providerId) };
      case 'llm-router.model.registered':
        return { ...state, models: { ...state.models, [event.data.modelId]: event.data } };
      case 'llm-router.model.removed':
        return { ...state, models: without(state.models, event.data.modelId) };
      case 'llm-router.route.configured':
        return { ...state, routes: { ...state.routes, [event.data.routeId]: event.data } };
      case 'llm-router.route.removed':
        return { ...state, routes: without(state.routes, event.data.routeId) };
      case 'llm-router.settings.configured':
        return { ...state, settings: event.data };
    }
  },
};
