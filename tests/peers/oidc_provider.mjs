// A real OpenID Connect provider for the sign-on tests: the npm package `oidc-provider`
// (panva/node-oidc-provider), configured with one confidential client, on 127.0.0.1.
//
// usage: node tests/oidc_provider.mjs  (settings in the environment)
//   OIDC_PROVIDER_DIR  where `npm install oidc-provider` was run (tests/oidc.py does it, cached)
//   OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_REDIRECT_URI  the relying party (unioncat)
//   OIDC_POST_LOGOUT_REDIRECT_URI  where RP-initiated logout (end_session_endpoint) may send the reader back
// Prints one JSON line {"issuer": ...} once it listens; stops on SIGTERM.
// Any login/password is accepted by the provider's development interactions; the
// account's display name is the login with "Reader " in front.
import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const dir = process.env.OIDC_PROVIDER_DIR;
const { default: Provider } = await import(
  pathToFileURL(path.join(dir, 'node_modules', 'oidc-provider', 'lib', 'index.js')).href);

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: process.env.OIDC_CLIENT_ID,
      client_secret: process.env.OIDC_CLIENT_SECRET,
      redirect_uris: [process.env.OIDC_REDIRECT_URI],
      post_logout_redirect_uris: process.env.OIDC_POST_LOGOUT_REDIRECT_URI
        ? [process.env.OIDC_POST_LOGOUT_REDIRECT_URI] : [],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    claims: { openid: ['sub'], profile: ['name', 'preferred_username'] },
    findAccount: async (ctx, id) => ({
      accountId: id,
      claims: async () => ({ sub: id, name: `Reader ${id}`, preferred_username: id }),
    }),
    conformIdTokenClaims: false, // put profile claims in the ID token, where authlib reads them
    features: { devInteractions: { enabled: true } },
    cookies: { keys: ['unioncat-test-cookie-key'] },
  });
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  server.on('request', provider.callback());
  console.log(JSON.stringify({ issuer }));
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
