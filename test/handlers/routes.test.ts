import { describe, expect, it } from 'vitest';
import { API_ROUTES } from '../../functions/core/api-routes.js';
import { MethodNotAllowedError, NotFoundError } from '../../functions/core/errors.js';
import { MODEL_ROUTES, matchRoute } from '../../functions/transport/routes.js';

describe('matchRoute', () => {
  it.each([
    ['GET', '/v2', { kind: 'server-metadata' }],
    ['GET', '/v2/health/live', { kind: 'health-live' }],
    ['GET', '/v2/health/ready', { kind: 'health-ready' }],
    ['POST', '/v2/repository/index', { kind: 'repository-index' }],
    ['GET', '/v2/models/iris', { kind: 'model-metadata', model: 'iris' }],
    ['GET', '/v2/models/iris/versions/3', { kind: 'model-metadata', model: 'iris', version: '3' }],
    ['GET', '/v2/models/iris/ready', { kind: 'model-ready', model: 'iris' }],
    ['GET', '/v2/models/iris/versions/stable/ready', { kind: 'model-ready', model: 'iris', version: 'stable' }],
    ['POST', '/v2/models/iris/infer', { kind: 'model-infer', model: 'iris' }],
    [
      'POST',
      '/v2/models/my.model-2_b/versions/12/infer',
      { kind: 'model-infer', model: 'my.model-2_b', version: '12' },
    ],
    ['POST', '/prod/v2/models/iris/infer', { kind: 'model-infer', model: 'iris' }],
    ['HEAD', '/v2/health/live', { kind: 'health-live' }],
    ['GET', '/', { kind: 'console' }],
    ['GET', '/v2/openapi.json', { kind: 'server-openapi' }],
    ['GET', '/v2/models/iris/openapi.json', { kind: 'model-openapi', model: 'iris' }],
    ['GET', '/v2/models/iris/versions/2/openapi.json', { kind: 'model-openapi', model: 'iris', version: '2' }],
  ])('%s %s', (method, path, expected) => {
    expect(matchRoute(method, path)).toEqual(expected);
  });

  it.each([
    '/v2/models/..',
    '/v2/models/%2e%2e/infer',
    '/v2/models/a..b/infer',
    '/v2/models/.hidden/infer',
    '/v2/models/%E2%9C%93/infer',
    `/v2/models/${'a'.repeat(1000)}/infer`,
    '/v2/models/iris/versions/../infer',
    '/v2/models/iris/versions/%2e%2e/infer',
    '/v2/models/iris/predict',
    '/v2/models/iris/infer/more',
    '/v1/models/iris:predict',
    '/v2/nothing',
  ])('404 for %s', (path) => {
    expect(() => matchRoute('POST', path)).toThrow(NotFoundError);
  });

  it('answers 405 with the allowed method', () => {
    expect(() => matchRoute('GET', '/v2/models/iris/infer')).toThrow(MethodNotAllowedError);
    try {
      matchRoute('DELETE', '/v2/health/live');
    } catch (error) {
      expect((error as MethodNotAllowedError).allowed).toEqual(['GET']);
    }
  });

  it('matches every route of the route table to its kind, and no other method', () => {
    for (const route of API_ROUTES) {
      const concrete = route.path.replace('{model}', 'iris').replace('{version}', '2');
      expect(matchRoute(route.method, concrete).kind, `${route.method} ${route.path}`).toBe(route.kind);
      const other = route.method === 'GET' ? 'POST' : 'GET';
      expect(() => matchRoute(other, concrete), `${other} ${route.path}`).toThrow(MethodNotAllowedError);
      expect(MODEL_ROUTES.has(route.kind)).toBe(route.function === 'model');
    }
  });

  it('refuses broken percent-encoding with 400', () => {
    expect(() => matchRoute('GET', '/v2/models/%E0%A4%A')).toThrow('not valid percent-encoding');
  });
});
