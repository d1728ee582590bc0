import { describe, expect, it } from 'vitest';
import { MethodNotAllowedError, NotFoundError } from '../../functions/core/errors.js';
import { matchRoute } from '../../functions/transport/routes.js';

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

  it('refuses broken percent-encoding with 400', () => {
    expect(() => matchRoute('GET', '/v2/models/%E0%A4%A')).toThrow('not valid percent-encoding');
  });
});
