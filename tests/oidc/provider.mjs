// A real OpenID provider for latchkey's tests: panva's oidc-provider
// (OpenID-certified) on 127.0.0.1, with static clients, a few users and a
// signing key kept in a file. Started by tests/it/support/oidc.rs.
//
//   node provider.mjs --port PORT --key FILE [--redirect-uri URI]...
//                     [--auth-method client_secret_basic|client_secret_post]
//
// --key FILE: the private signing key (a JWK). Missing: a fresh RSA key with
//   a fresh kid is made and written there. Restarting with a new file is a
//   key rotation; two instances given the same file sign alike.
// --redirect-uri: registered for every client (repeatable).
// --auth-method: the one token-endpoint client authentication the provider
//   offers (and its clients use); both when absent.
//
// Clients: "latchkey" / "latchkey-secret" and "other-app" / "other-secret".
// Users (the login form takes the account name and any password):
//   alice  alice@example.com  verified    groups [ops, dev]
//   bob    bob@example.com    NOT verified
//   carol  carol@example.com  email_verified absent
//   dave   Dave@Elsewhere.test verified    groups []   (in no [[users]] list)
// Login and consent are oidc-provider's devInteractions: plain HTML forms
// that a cookie-keeping HTTP client can post without a browser.
// Prints "listening ISSUER" on stdout once it accepts connections.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    key: { type: 'string' },
    'redirect-uri': { type: 'string', multiple: true, default: [] },
    'auth-method': { type: 'string', multiple: true, default: [] },
  },
});
if (!values.port || !values.key) {
  console.error('usage: node provider.mjs --port PORT --key FILE [--redirect-uri URI]... [--auth-method M]');
  process.exit(2);
}

function signingKey(path) {
  if (existsSync(path)) {
    return JSON.parse(readFileSync(path, 'utf8'));
  }
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: randomBytes(8).toString('hex'), alg: 'RS256', use: 'sig' };
  writeFileSync(path, JSON.stringify(jwk), { mode: 0o600 });
  return jwk;
}

const USERS = {
  alice: { email: 'alice@example.com', email_verified: true, name: 'Alice', groups: ['ops', 'dev'] },
  bob: { email: 'bob@example.com', email_verified: false, name: 'Bob', groups: ['dev'] },
  carol: { email: 'carol@example.com', name: 'Carol', groups: [] },
  dave: { email: 'Dave@Elsewhere.test', email_verified: true, name: 'Dave', groups: [] },
};

const methods = values['auth-method'].length > 0
  ? values['auth-method']
  : ['client_secret_basic', 'client_secret_post'];
const redirectUris = values['redirect-uri'].length > 0
  ? values['redirect-uri']
  : ['http://127.0.0.1/callback'];
const client = (id, secret) => ({
  client_id: id,
  client_secret: secret,
  redirect_uris: redirectUris,
  post_logout_redirect_uris: redirectUris,
  response_types: ['code'],
  grant_types: ['authorization_code'],
  token_endpoint_auth_method: methods[0],
});

const issuer = `http://127.0.0.1:${values.port}`;
const provider = new Provider(issuer, {
  clients: [client('latchkey', 'latchkey-secret'), client('other-app', 'other-secret')],
  clientAuthMethods: methods,
  jwks: { keys: [signingKey(values.key)] },
  cookies: { keys: ['latchkey-tests-cookie-key'] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, id) {
    const user = USERS[id];
    if (!user) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, ...user };
      },
    };
  },
});
// oidc-provider's dev-only warnings go to stderr; keep stdout for "listening".
provider.listen(Number(values.port), '127.0.0.1', () => {
  console.log(`listening ${issuer}`);
});
