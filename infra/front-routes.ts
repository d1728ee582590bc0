/**
 * The KServe V2 routes as data, for the fronts that take routes as a list (the HTTP API) or as path patterns (the
 * CloudFront distribution before function URLs). The REST API builds the same tree resource by resource
 * (`inference-api.ts`, `model-endpoint.ts`, `shared-endpoint.ts`); a test compares the two.
 */

/** One route: an HTTP method and a path with `{param}` placeholders. */
export interface RouteSpec {
  readonly method: 'GET' | 'POST';
  readonly path: string;
}

/** Health, server metadata, the repository index and Triton's load/unload (answered with a 400 saying why). */
export const CONTROL_ROUTES: readonly RouteSpec[] = [
  { method: 'GET', path: '/v2' },
  { method: 'GET', path: '/v2/health/live' },
  { method: 'GET', path: '/v2/health/ready' },
  { method: 'POST', path: '/v2/repository/index' },
  { method: 'POST', path: '/v2/repository/models/{model}/load' },
  { method: 'POST', path: '/v2/repository/models/{model}/unload' },
];

/** Under `/v2/models/<model>` and `/v2/models/<model>/versions/{v}`: metadata, readiness, inference, config. */
const MODEL_SUFFIXES: readonly RouteSpec[] = [
  { method: 'GET', path: '' },
  { method: 'GET', path: '/ready' },
  { method: 'POST', path: '/infer' },
  { method: 'GET', path: '/config' },
];

/**
 * The routes of one model (`segment` is its name) or of every model without a catalog entry (`segment` =
 * `{model}`): the fronts prefer a literal segment to a parameter, so a catalog model's routes win.
 */
export function modelRoutes(segment: string): RouteSpec[] {
  const base = `/v2/models/${segment}`;
  return [
    ...MODEL_SUFFIXES.map((r) => ({ method: r.method, path: `${base}${r.path}` })),
    ...MODEL_SUFFIXES.map((r) => ({ method: r.method, path: `${base}/versions/{v}${r.path}` })),
  ];
}
