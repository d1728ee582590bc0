/**
 * The route table (`functions/core/api-routes.ts`) as API Gateway resources and methods: the control function's
 * routes and each model function's come from the same list that the local router matches and the OpenAPI
 * document lists, so the deployed API cannot gain or lose a route the others do not.
 */
import type * as apigw from 'aws-cdk-lib/aws-apigateway';
import { DEPLOYED_ROUTES, pathParameters, type RouteFunction } from '../functions/core/api-routes.js';

/**
 * Path parameters as the deployed resources name them: `{version}` stays `{v}`, the name it was deployed with
 * (renaming a resource replaces it).
 */
const DEPLOYED_PARAMETER_NAMES: Readonly<Record<string, string>> = { version: 'v' };

/** A table path with its parameters as the deployed resources and routes name them. */
export function deployedPath(path: string): string {
  let deployed = path;
  for (const [name, renamed] of Object.entries(DEPLOYED_PARAMETER_NAMES))
    deployed = deployed.replace(`{${name}}`, `{${renamed}}`);
  return deployed;
}

const MODEL_PREFIX = '/v2/models/{model}';

/** Where {@link addTableRoutes} adds routes. */
export type RouteTarget =
  /** The control function's routes, from the API's root. */
  | { readonly function: 'control'; readonly root: apigw.IResource }
  /**
   * A model function's routes, under `/v2/models/<model>`: `model` is a model's name (its own function) or
   * `{model}` (the shared function, for every model without one).
   */
  | { readonly function: 'model'; readonly models: apigw.IResource; readonly model: string };

/**
 * Adds every route of the table that `target.function` serves, integrated with `integration`; each method requires
 * its path parameters (validated by the API's request validator in `options`). Returns the resource the routes hang
 * from (the API's root, or the model's resource).
 */
export function addTableRoutes(
  target: RouteTarget,
  integration: apigw.Integration,
  options: apigw.MethodOptions,
): apigw.IResource {
  const fn: RouteFunction = target.function;
  const base = target.function === 'control' ? target.root : target.models.resourceForPath(target.model);
  for (const route of DEPLOYED_ROUTES.filter((r) => r.function === fn)) {
    let path = deployedPath(route.path);
    if (target.function === 'model') path = path.slice(MODEL_PREFIX.length);
    const required = pathParameters(path).filter((name) => target.function !== 'model' || name !== 'model');
    if (target.function === 'model' && target.model === '{model}') required.unshift('model');
    const resource = path === '' || path === '/' ? base : base.resourceForPath(path.replace(/^\//, ''));
    resource.addMethod(route.method, integration, {
      ...options,
      ...(required.length === 0
        ? {}
        : {
            requestParameters: {
              ...options.requestParameters,
              ...Object.fromEntries(required.map((name) => [`method.request.path.${name}`, true])),
            },
          }),
    });
  }
  return base;
}
