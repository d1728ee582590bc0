/**
 * `npm start`'s front settings (`FRONT`, `FRONT_AUTH`, `FRONT_API_KEY`, `FRONT_JWT_*`): the local default stays open
 * REST, each front's authentication is taken as given, and a combination the deployed front refuses is refused
 * locally too, with the same reason (both read `resolveFrontAuth`).
 */
import { describe, expect, it } from 'vitest';
import { FrontChoiceError } from '../../functions/core/fronts.js';
import { frontOptionsFromEnv } from '../../functions/local/front.js';

describe('npm start: the front from the environment', () => {
  it('is open REST by default, as before', () => {
    expect(frontOptionsFromEnv({})).toEqual({ api: 'rest', authorization: 'none' });
  });

  it('takes the front, its authentication and its settings', () => {
    expect(
      frontOptionsFromEnv({
        FRONT: 'http',
        FRONT_AUTH: 'jwt',
        FRONT_JWT_ISSUER: 'https://issuer.example',
        FRONT_JWT_AUDIENCE: 'app',
      }),
    ).toEqual({ api: 'http', authorization: 'jwt', jwtIssuer: 'https://issuer.example', jwtAudience: 'app' });
    expect(frontOptionsFromEnv({ FRONT_AUTH: 'api-key', FRONT_API_KEY: 'k' })).toEqual({
      api: 'rest',
      authorization: 'api-key',
      apiKey: 'k',
    });
  });

  it.each([
    [{ FRONT: 'url', FRONT_AUTH: 'jwt' }, /api=url cannot use authorization=jwt: function URLs authenticate with IAM/],
    [{ FRONT: 'http', FRONT_AUTH: 'api-key' }, /api=http cannot use authorization=api-key: HTTP APIs have no API keys/],
    [{ FRONT: 'lambda' }, /api "lambda" is not a front: use rest, http, url/],
    [{ FRONT_AUTH: 'basic' }, /authorization "basic" is not known/],
  ])('refuses %o as the deployed front would', (env, reason) => {
    expect(() => frontOptionsFromEnv(env)).toThrow(FrontChoiceError);
    expect(() => frontOptionsFromEnv(env)).toThrow(reason);
  });
});
