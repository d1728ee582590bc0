/**
 * The routes of the HTTP contract (DESIGN.md), matched from a path. Model names and versions are decoded and
 * validated here, before anything else sees them.
 */
import { API_ROUTES, type RouteKind } from '../core/api-routes.js';
import { isValidModelName } from '../core/catalog.js';
import { BadRequestError, MethodNotAllowedError, NotFoundError } from '../core/errors.js';

/** A matched route; its kind is one of the route table's (`core/api-routes.ts`). */
export type Route =
  | { readonly kind: Extract<RouteKind, 'console' | 'server-metadata' | 'server-openapi'> }
  | { readonly kind: 'health-live' }
  | { readonly kind: 'health-ready' }
  | { readonly kind: 'repository-index' }
  /** Triton's `POST /v2/repository/models/<m>/load|unload`: answered with why models are not loaded on request. */
  | { readonly kind: 'repository-control'; readonly model: string; readonly action: 'load' | 'unload' }
  | {
      readonly kind: 'model-metadata' | 'model-ready' | 'model-infer' | 'model-config' | 'model-openapi';
      readonly model: string;
      readonly version?: string;
    }
  /** `GET /v2/models/<m>/jobs/<id>`: the status of an async request (docs/async.md). */
  | { readonly kind: 'model-job'; readonly model: string; readonly id: string }
  /** `POST /v2/models/<m>[/versions/<v>]/batch`: starts a batch job (docs/batch.md). */
  | { readonly kind: 'batch-start'; readonly model: string; readonly version?: string }
  /** `GET /v2/models/<m>/batch/<job-id>`: a batch job's record. */
  | { readonly kind: 'batch-status'; readonly model: string; readonly jobId: string };

/** The route kinds served by the per-model `infer` function; the `control` function serves the others. */
export const MODEL_ROUTES: ReadonlySet<Route['kind']> = new Set(
  API_ROUTES.filter((route) => route.function === 'model').map((route) => route.kind),
);

const VERSION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new BadRequestError('the path is not valid percent-encoding');
  }
}

/** A model name from a path segment, decoded and checked before anything else sees it. */
function modelName(segment: string): string {
  const model = decodeSegment(segment);
  if (!isValidModelName(model)) {
    throw new NotFoundError(
      `unknown model: model names are 1 to 128 letters, digits, "_", "." or "-", starting with a letter or digit`,
    );
  }
  return model;
}

function only(method: string, allowed: string, route: Route): Route {
  if (method === allowed || (allowed === 'GET' && method === 'HEAD')) return route;
  throw new MethodNotAllowedError(`${method} is not allowed here; use ${allowed}`, [allowed]);
}

/**
 * The segments of `path` from `v2` on, or `undefined` when it is not an API path. One rule for the route matcher
 * and the local gateway's choice of handler, so that they never disagree: `/v2/...`, or one stage segment before
 * it (`/prod/v2/...`, as an HTTP API's `rawPath` carries it); no empty segment (`//v2//models`), one trailing
 * slash tolerated.
 */
export function apiSegments(path: string): string[] | undefined {
  if (!path.startsWith('/')) return undefined;
  const segments = path.slice(1).split('/');
  if (segments.length > 1 && segments[segments.length - 1] === '') segments.pop();
  if (segments.some((s) => s.length === 0)) return undefined;
  if (segments[0] === 'v2') return segments;
  if (segments[1] === 'v2') return segments.slice(1);
  return undefined;
}

/** True when `path` names a model route (`/v2/models/...`): what the deployed API sends to a model's function. */
export function isModelPath(path: string): boolean {
  return apiSegments(path)?.[1] === 'models';
}

/**
 * Matches `path` (with or without a stage prefix before `/v2`, see {@link apiSegments}) and checks `method`.
 * @throws NotFoundError for an unknown route or an invalid model name, MethodNotAllowedError for a wrong method.
 */
export function matchRoute(method: string, path: string): Route {
  // The console lives at the API's root, outside /v2 (REST API events carry the path without the stage).
  if (path === '/') return only(method, 'GET', { kind: 'console' });
  const segments = apiSegments(path);
  if (segments === undefined) throw new NotFoundError(`no route ${path.slice(0, 200)}; the API lives under /v2`);
  const [, first, second, third, fourth, fifth, ...rest] = segments;
  if (first === undefined) return only(method, 'GET', { kind: 'server-metadata' });
  if (first === 'openapi.json' && second === undefined) return only(method, 'GET', { kind: 'server-openapi' });
  if (first === 'health' && second === 'live' && third === undefined)
    return only(method, 'GET', { kind: 'health-live' });
  if (first === 'health' && second === 'ready' && third === undefined)
    return only(method, 'GET', { kind: 'health-ready' });
  if (first === 'repository' && second === 'index' && third === undefined) {
    return only(method, 'POST', { kind: 'repository-index' });
  }
  if (
    first === 'repository' &&
    second === 'models' &&
    third !== undefined &&
    (fourth === 'load' || fourth === 'unload') &&
    fifth === undefined
  ) {
    return only(method, 'POST', { kind: 'repository-control', model: modelName(third), action: fourth });
  }
  if (first === 'models' && second !== undefined && third === 'batch' && fourth !== undefined && fifth === undefined) {
    return only(method, 'GET', { kind: 'batch-status', model: modelName(second), jobId: decodeSegment(fourth) });
  }
  if (first === 'models' && second !== undefined && rest.length === 0) {
    const model = modelName(second);
    let version: string | undefined;
    let action: string | undefined = third;
    if (third === 'jobs') {
      if (fourth === undefined || fifth !== undefined) throw new NotFoundError(`no route ${path.slice(0, 200)}`);
      return only(method, 'GET', { kind: 'model-job', model, id: decodeSegment(fourth) });
    }
    if (third === 'versions') {
      if (fourth === undefined) throw new NotFoundError('missing version after /versions/');
      version = decodeSegment(fourth);
      if (!VERSION_PATTERN.test(version) || version.includes('..')) {
        throw new NotFoundError(`unknown version of model "${model}"`);
      }
      action = fifth;
    } else if (fourth !== undefined) {
      // Only /versions/<v>/... has a fourth segment (and so a fifth).
      throw new NotFoundError(`no route ${path.slice(0, 200)}`);
    }
    const target = { model, ...(version === undefined ? {} : { version }) };
    if (action === undefined) return only(method, 'GET', { kind: 'model-metadata', ...target });
    if (action === 'ready') return only(method, 'GET', { kind: 'model-ready', ...target });
    if (action === 'infer') return only(method, 'POST', { kind: 'model-infer', ...target });
    if (action === 'config') return only(method, 'GET', { kind: 'model-config', ...target });
    if (action === 'openapi.json') return only(method, 'GET', { kind: 'model-openapi', ...target });
    if (action === 'batch') return only(method, 'POST', { kind: 'batch-start', ...target });
  }
  throw new NotFoundError(`no route ${path.slice(0, 200)}`);
}
