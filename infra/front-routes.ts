/**
 * The route table (`functions/core/api-routes.ts`) as lists, for the fronts that take routes as a list (the HTTP
 * API) or as path patterns (the CloudFront distribution before function URLs). The REST API builds the same routes
 * resource by resource (`api-routes.ts`); a test compares the two.
 */
import { DEPLOYED_ROUTES, type ApiRoute } from '../functions/core/api-routes.js';
import { deployedPath } from './api-routes.js';

/** One route: an HTTP method and a path with `{param}` placeholders. */
export interface RouteSpec {
  readonly method: ApiRoute['method'];
  readonly path: string;
}

/** The control function's routes: the console, health, server metadata, the OpenAPI document, the index, load/unload. */
export const CONTROL_ROUTES: readonly RouteSpec[] = DEPLOYED_ROUTES.filter((route) => route.function === 'control').map(
  (route) => ({ method: route.method, path: deployedPath(route.path) }),
);

/**
 * The routes of one model (`segment` is its name) or of every model without a catalog entry (`segment` =
 * `{model}`): the fronts prefer a literal segment to a parameter, so a catalog model's routes win.
 */
export function modelRoutes(segment: string): RouteSpec[] {
  return DEPLOYED_ROUTES.filter((route) => route.function === 'model').map((route) => ({
    method: route.method,
    path: deployedPath(route.path).replace('{model}', segment),
  }));
}
