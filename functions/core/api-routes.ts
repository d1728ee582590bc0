/**
 * The route table of the HTTP contract (DESIGN.md): every route the API answers, once. The router
 * (`transport/routes.ts`) reads which function serves each kind from it, the CDK app (`infra/api-routes.ts`) adds
 * exactly these routes to API Gateway, and the OpenAPI document (`openapi.ts`) lists exactly these paths: a route
 * added here appears everywhere, and one missing here appears nowhere.
 */

/** What a matched route does; the router's `Route` carries one of these. */
export type RouteKind =
  | 'console'
  | 'server-metadata'
  | 'server-openapi'
  | 'health-live'
  | 'health-ready'
  | 'repository-index'
  | 'repository-control'
  | 'model-metadata'
  | 'model-ready'
  | 'model-infer'
  | 'model-config'
  | 'model-openapi'
  | 'model-job'
  | 'batch-start'
  | 'batch-status';

/**
 * Which function serves a route, as API Gateway routes it: `control` (health, metadata, the repository index, the
 * console) or the model's own `infer` function (or the shared one, for models without a catalog entry).
 */
export type RouteFunction = 'control' | 'model';

/** One route: a method and a path template whose `{model}` and `{version}` segments are parameters. */
export interface ApiRoute {
  readonly method: 'GET' | 'POST';
  /** The path from the API's root, e.g. `/v2/models/{model}/versions/{version}/infer`. */
  readonly path: string;
  readonly kind: RouteKind;
  readonly function: RouteFunction;
  /** One line for the OpenAPI document's `summary`. */
  readonly summary: string;
  /**
   * Served by `npm start` only: deployed, batch jobs are Step Functions executions (docs/batch.md), so the fronts
   * leave these routes out.
   */
  readonly localOnly?: true;
}

/** The OpenAPI `operationId` of a route: its method and path, as the Open Inference Protocol's document names them. */
export function operationId(route: ApiRoute): string {
  const words = route.path
    .split('/')
    .filter(Boolean)
    .map((part) => part.replace(/[{}]/g, '').replace(/[^A-Za-z0-9]+/g, '-'));
  return [route.method.toLowerCase(), ...words].join('-') || route.method.toLowerCase();
}

/** The path parameters of a template, in order (`{model}`, `{version}`). */
export function pathParameters(path: string): string[] {
  return [...path.matchAll(/\{([A-Za-z]+)\}/g)].map((match) => match[1] ?? '');
}

const MODEL = '/v2/models/{model}';
const VERSION = `${MODEL}/versions/{version}`;

/** A model route, with and without `/versions/{version}`: every model route takes an optional version. */
function modelRoutes(method: 'GET' | 'POST', suffix: string, kind: RouteKind, summary: string): ApiRoute[] {
  return [
    { method, path: `${MODEL}${suffix}`, kind, function: 'model', summary },
    { method, path: `${VERSION}${suffix}`, kind, function: 'model', summary: `${summary} (a version or label)` },
  ];
}

/** A route of the control function. */
function control(method: 'GET' | 'POST', path: string, kind: RouteKind, summary: string): ApiRoute {
  return { method, path, kind, function: 'control', summary };
}

/** Every route of the API, in the order the OpenAPI document lists them. */
export const API_ROUTES: readonly ApiRoute[] = [
  control('GET', '/', 'console', 'The console page (HTML)'),
  control('GET', '/v2', 'server-metadata', 'Server metadata'),
  control('GET', '/v2/openapi.json', 'server-openapi', "This document: the deployment's API as OpenAPI 3.1"),
  control('GET', '/v2/health/live', 'health-live', 'Server live'),
  control('GET', '/v2/health/ready', 'health-ready', 'Server ready'),
  control('POST', '/v2/repository/index', 'repository-index', 'Repository index: every version and refused upload'),
  // Triton's load and unload, answered with why models are not loaded on request here.
  control('POST', '/v2/repository/models/{model}/load', 'repository-control', "Triton's model load: a 400 saying why"),
  control(
    'POST',
    '/v2/repository/models/{model}/unload',
    'repository-control',
    "Triton's model unload: a 400 saying why",
  ),
  ...modelRoutes('GET', '', 'model-metadata', 'Model metadata'),
  ...modelRoutes('GET', '/ready', 'model-ready', 'Model ready'),
  ...modelRoutes('POST', '/infer', 'model-infer', 'Inference'),
  ...modelRoutes('GET', '/config', 'model-config', "Triton's model configuration"),
  ...modelRoutes('GET', '/openapi.json', 'model-openapi', "The model's own API as OpenAPI 3.1, with an example"),
  {
    method: 'GET',
    path: `${MODEL}/jobs/{id}`,
    kind: 'model-job',
    function: 'model',
    summary: 'Status of an async request',
  },
  ...modelRoutes(
    'POST',
    '/batch',
    'batch-start',
    'Start a batch job (npm start; deployed, a Step Functions execution)',
  ).map((route): ApiRoute => ({ ...route, localOnly: true })),
  {
    method: 'GET',
    path: `${MODEL}/batch/{jobId}`,
    kind: 'batch-status',
    function: 'model',
    summary: "A batch job's record (npm start)",
    localOnly: true,
  },
];

/** The routes the deployed fronts serve: every route but the ones `npm start` alone serves. */
export const DEPLOYED_ROUTES: readonly ApiRoute[] = API_ROUTES.filter((route) => route.localOnly !== true);
