// An OpenID Connect relying party on openid-client (npm), driven by tests/tests/oidc_op.rs.
// openid-client does the client's half independently of Varco: discovery, the authorization
// URL with PKCE (S256), state and nonce, the code exchange with client_secret_basic, the ID
// token checks (signature against the JWKS, iss, aud, exp, nonce, the RFC 9207 `iss` of the
// authorization response), and UserInfo. The Back-Channel Logout token is checked with
// `jose`, the JOSE library openid-client itself is built on.
//
//   node client.mjs start  ISSUER CLIENT_ID SECRET REDIRECT_URI STATEFILE   -> authorization URL
//   node client.mjs finish ISSUER CLIENT_ID SECRET STATEFILE CALLBACK_URL   -> JSON
//   node client.mjs logout ISSUER CLIENT_ID LOGOUT_TOKEN EXPECTED_SID        -> the claims

import * as client from 'openid-client';
import * as jose from 'jose';
import { readFileSync, writeFileSync } from 'node:fs';

const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

async function configure(issuer, clientId, secret) {
  // Loopback http in the tests: openid-client refuses it unless told.
  return client.discovery(new URL(issuer), clientId, secret, client.ClientSecretBasic(secret), {
    execute: [client.allowInsecureRequests],
  });
}

async function start(issuer, clientId, secret, redirectUri, statefile) {
  const config = await configure(issuer, clientId, secret);
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid profile email',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  writeFileSync(statefile, JSON.stringify({ verifier, state, nonce, redirectUri }));
  console.log(url.href);
}

async function finish(issuer, clientId, secret, statefile, callback) {
  const config = await configure(issuer, clientId, secret);
  const saved = JSON.parse(readFileSync(statefile, 'utf8'));
  const tokens = await client.authorizationCodeGrant(config, new URL(callback), {
    pkceCodeVerifier: saved.verifier,
    expectedState: saved.state,
    expectedNonce: saved.nonce,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  console.log(JSON.stringify({ id_token: claims, userinfo, access_token: tokens.access_token }));
}

async function logout(issuer, clientId, token, expectedSid) {
  // Back-Channel Logout 1.0 §2.6.
  const meta = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
  const keys = jose.createRemoteJWKSet(new URL(meta.jwks_uri));
  const { payload, protectedHeader } = await jose.jwtVerify(token, keys, {
    issuer,
    audience: clientId,
    typ: 'logout+jwt',
    requiredClaims: ['iat', 'exp', 'jti'],
  });
  if (protectedHeader.typ !== 'logout+jwt') throw new Error(`typ ${protectedHeader.typ}`);
  const events = payload.events || {};
  if (typeof events[BACKCHANNEL_EVENT] !== 'object') throw new Error('no back-channel event');
  if ('nonce' in payload) throw new Error('a logout token carries no nonce');
  if (payload.sid !== expectedSid) throw new Error(`sid ${payload.sid} != ${expectedSid}`);
  console.log(JSON.stringify(payload));
}

const [cmd, ...args] = process.argv.slice(2);
const commands = { start, finish, logout };
commands[cmd](...args).catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  if (e && e.cause) console.error('cause:', JSON.stringify(e.cause));
  process.exit(1);
});
