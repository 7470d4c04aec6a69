#!/usr/bin/env node
// Test peer: a real OpenID provider (npm `oidc-provider` 9.x) serving Keycloak 24's realm layout and token shape
// on 127.0.0.1. Test support only; never deploy it.
//
//   node server.mjs [--port N] [--realm NAME] [--config FILE]
//   env: AVB_KEYCLOAK_PORT, AVB_KEYCLOAK_REALM, AVB_KEYCLOAK_CONFIG (JSON text), AVB_KEYCLOAK_NODE_MODULES
//
// Port 0 (the default) lets the OS choose. After listening it prints exactly one line on stdout:
//   {"ready": true, "port": N, "base_url": "http://127.0.0.1:N", "realms": [...]}
// Everything else (oidc-provider's notices included) goes to stderr.
//
// Per realm R (issuer `http://127.0.0.1:N/realms/R`, byte-exact):
//   GET  /realms/R                                        realm info with `public_key` (base64 SPKI DER)
//   GET  /realms/R/.well-known/openid-configuration       discovery (served by oidc-provider)
//   GET  /realms/R/protocol/openid-connect/certs          JWKS: `enc` RSA-OAEP key, active + passive RS256 keys
//   POST /realms/R/protocol/openid-connect/token          grant_type=password | client_credentials
//
// Test-only control API (this stand-in only; `?realm=R` selects the realm, default the first one):
//   GET  /_test/health                  {ok, realms}
//   POST /_test/realms                  create a realm from a realm config object (fresh keys)
//   GET  /_test/users                   list users (passwords omitted)
//   POST /_test/users                   create or update a user (matched by id, else username)
//   POST /_test/config                  {access_token_lifespan, audience, jwks_delay_ms, extra_jwks_keys}
//   GET  /_test/keys                    {active_kid, passive_kids, retired_kids, enc_kid}
//   POST /_test/rotate-key              new active signing key; the old one stays published as passive
//   POST /_test/retire-key              {kid?}: unpublish that passive key (default: every passive key)
//   POST /_test/mint                    a token with arbitrary overrides (see `mintToken`)
//   GET  /_test/jwks-fetches            {count}: GETs of the JWKS endpoint since start or the last reset
//   POST /_test/jwks-fetches/reset      sets that count to 0

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { pathToFileURL } from 'node:url';

// stdout carries the ready line only: oidc-provider prints notices with console.info.
console.log = (...args) => console.error(...args);
console.info = (...args) => console.error(...args);
// Two of oidc-provider's warnings are expected here (Node 20; the in-memory adapter, rebuilt on every rotation).
const QUIET = [/Unsupported runtime/, /in-memory adapter is used/];
const warn = console.warn.bind(console);
console.warn = (...args) => {
  if (process.env.AVB_KEYCLOAK_VERBOSE || !QUIET.some((re) => re.test(String(args[0])))) warn(...args);
};

// RSA 2048 key generation (~0.4 s of CPU each) dominates startup: the first two keys are generated on the thread
// pool while oidc-provider loads, and one spare is kept ready afterwards so that a rotation does not wait.
const generateKeyPair = promisify(crypto.generateKeyPair);
const rsaKeyPair = () => generateKeyPair('rsa', { modulusLength: 2048 });
const spareKeyPairs = [rsaKeyPair(), rsaKeyPair()];
let keepSpare = false;
function takeKeyPair() {
  const next = spareKeyPairs.shift() ?? rsaKeyPair();
  if (keepSpare && spareKeyPairs.length === 0) spareKeyPairs.push(rsaKeyPair());
  return next;
}

// ---------------------------------------------------------------------------------------------------------------
// Loading oidc-provider, first found of: $AVB_KEYCLOAK_NODE_MODULES, $AVB_PEERS_DIR/keycloak/node_modules,
// <repo>/.peers/keycloak/node_modules (where scripts/install-peers.sh puts it), then a plain import (a node_modules
// next to this file, after `npm ci` here). ESM ignores NODE_PATH, hence the explicit resolution.

function nodeModulesCandidates() {
  const here = path.dirname(new URL(import.meta.url).pathname);
  return [
    process.env.AVB_KEYCLOAK_NODE_MODULES,
    process.env.AVB_PEERS_DIR && path.join(process.env.AVB_PEERS_DIR, 'keycloak', 'node_modules'),
    path.join(here, '..', '..', '.peers', 'keycloak', 'node_modules'),
  ].filter(Boolean);
}

async function loadOidcProvider() {
  for (const dir of nodeModulesCandidates()) {
    const pkgDir = path.join(dir, 'oidc-provider');
    if (!fs.existsSync(path.join(pkgDir, 'package.json'))) continue;
    const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
    let entry = pkg.main || 'index.js';
    const exp = pkg.exports;
    if (typeof exp === 'string') entry = exp;
    else if (exp && typeof exp === 'object') {
      const dot = exp['.'] ?? exp;
      entry = typeof dot === 'string' ? dot : (dot.import ?? dot.default ?? entry);
    }
    return import(pathToFileURL(path.join(pkgDir, entry)).href);
  }
  try {
    return await import('oidc-provider');
  } catch (err) {
    console.error(`oidc-provider not found (looked in ${nodeModulesCandidates().join(', ')} and next to this file): `
      + 'run scripts/install-peers.sh keycloak');
    throw err;
  }
}

const { default: Provider, errors } = await loadOidcProvider();

// ---------------------------------------------------------------------------------------------------------------
// Arguments and configuration

function argValue(name) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const portArg = Number(argValue('--port') ?? process.env.AVB_KEYCLOAK_PORT ?? 0);
if (!Number.isInteger(portArg) || portArg < 0 || portArg > 65535) {
  console.error(`invalid port ${portArg}`);
  process.exit(2);
}

function loadConfig() {
  const file = argValue('--config');
  if (file) return JSON.parse(fs.readFileSync(file, 'utf8'));
  if (process.env.AVB_KEYCLOAK_CONFIG) return JSON.parse(process.env.AVB_KEYCLOAK_CONFIG);
  return {};
}

const DEFAULT_CLIENTS = [
  // Confidential client with a service account and direct access grants.
  {
    client_id: 'avb-api',
    secret: 'avb-api-secret',
    service_account_roles: [],
    client_roles: ['api-user'],
  },
  // Public client (direct access grants only).
  { client_id: 'avb-web', public: true },
];

const DEFAULT_USERS = [
  {
    id: '5f1f7b55-7a1c-4d2e-9a4b-3d0c9e1a0a01',
    username: 'alice',
    password: 'alice-password',
    email: 'alice@example.com',
    first_name: 'Alice',
    last_name: 'Anders',
    realm_roles: ['user'],
    client_roles: { 'avb-api': ['api-user'] },
    tenant_id: '0b9a6f3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b',
  },
];

// ---------------------------------------------------------------------------------------------------------------
// Keys: RSA 2048, kid = base64url(SHA-256(SPKI DER)) as Keycloak computes it (43 characters).

async function newRsaKey(use) {
  const { privateKey, publicKey } = await takeKeyPair();
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const kid = crypto.createHash('sha256').update(spki).digest('base64url');
  const alg = use === 'sig' ? 'RS256' : 'RSA-OAEP';
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid, use, alg };
  return {
    kid, use, alg, jwk, privateKey, publicKey, spkiBase64: spki.toString('base64'),
  };
}

function publicPem(key) {
  return key.publicKey.export({ type: 'spki', format: 'pem' });
}

// ---------------------------------------------------------------------------------------------------------------
// Realms

class HttpError extends Error {
  constructor(status, error, description) {
    super(description);
    this.status = status;
    this.body = { error, error_description: description };
  }
}

function asStringArray(value, what) {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    throw new HttpError(400, 'invalid_request', `${what} must be an array of strings`);
  }
  return [...value];
}

function normalizeUser(input, existing) {
  if (typeof input !== 'object' || input === null) throw new HttpError(400, 'invalid_request', 'user must be an object');
  const pick = (key, fallback) => (input[key] !== undefined ? input[key] : fallback);
  const user = {
    id: pick('id', existing?.id ?? crypto.randomUUID()),
    username: pick('username', existing?.username),
    password: pick('password', existing?.password),
    email: pick('email', existing?.email),
    first_name: pick('first_name', existing?.first_name),
    last_name: pick('last_name', existing?.last_name),
    email_verified: pick('email_verified', existing?.email_verified ?? true),
    enabled: pick('enabled', existing?.enabled ?? true),
    realm_roles: asStringArray(pick('realm_roles', existing?.realm_roles), 'realm_roles'),
    client_roles: pick('client_roles', existing?.client_roles ?? {}),
    tenant_id: pick('tenant_id', existing?.tenant_id),
    attributes: pick('attributes', existing?.attributes ?? {}),
  };
  if (typeof user.username !== 'string' || !user.username) {
    throw new HttpError(400, 'invalid_request', 'username is required');
  }
  if (typeof user.id !== 'string' || !user.id) throw new HttpError(400, 'invalid_request', 'id must be a string');
  if (typeof user.client_roles !== 'object' || user.client_roles === null || Array.isArray(user.client_roles)) {
    throw new HttpError(400, 'invalid_request', 'client_roles must be an object of client id to role list');
  }
  for (const [client, roles] of Object.entries(user.client_roles)) asStringArray(roles, `client_roles.${client}`);
  // Keycloak lower-cases usernames.
  user.username = user.username.toLowerCase();
  return user;
}

function publicUser(user) {
  const { password, ...rest } = user;
  return rest;
}

function normalizeClient(input) {
  if (typeof input?.client_id !== 'string' || !input.client_id) {
    throw new HttpError(400, 'invalid_request', 'client_id is required');
  }
  return {
    client_id: input.client_id,
    secret: input.public ? undefined : (input.secret ?? `${input.client_id}-secret`),
    public: Boolean(input.public),
    service_account: input.public ? false : input.service_account !== false,
    service_account_id: input.service_account_id ?? crypto.randomUUID(),
    service_account_roles: asStringArray(input.service_account_roles, 'service_account_roles'),
    service_account_client_roles: input.service_account_client_roles ?? {},
    service_account_tenant_id: input.service_account_tenant_id,
    client_roles: asStringArray(input.client_roles, 'client_roles'),
    web_origins: asStringArray(input.web_origins ?? ['/*'], 'web_origins'),
  };
}

function audienceValue(value) {
  if (value === undefined) return ['avb-api', 'account'];
  if (typeof value === 'string' && value) return value;
  if (Array.isArray(value) && value.length && value.every((v) => typeof v === 'string')) return [...value];
  throw new HttpError(400, 'invalid_request', 'audience must be a non-empty string or array of strings');
}

function lifespanValue(value) {
  if (value === undefined) return 300;
  if (!Number.isInteger(value) || value <= 0) {
    throw new HttpError(400, 'invalid_request', 'access_token_lifespan must be a positive integer');
  }
  return value;
}

class Realm {
  constructor(name, cfg, baseUrl, sigKey, encKey) {
    if (typeof name !== 'string' || !/^[A-Za-z0-9._-]+$/.test(name)) {
      throw new HttpError(400, 'invalid_request', 'realm name must match [A-Za-z0-9._-]+');
    }
    this.name = name;
    this.issuer = `${baseUrl}/realms/${name}`;
    this.resourceUri = `${this.issuer}/api`;
    this.audience = audienceValue(cfg.audience);
    this.lifespan = lifespanValue(cfg.access_token_lifespan);
    this.jwksDelayMs = 0;
    this.extraJwksKeys = [];
    this.jwksFetches = 0;
    this.clients = new Map();
    for (const c of cfg.clients ?? DEFAULT_CLIENTS) {
      const client = normalizeClient(c);
      this.clients.set(client.client_id, client);
    }
    this.users = new Map();
    for (const u of cfg.users ?? DEFAULT_USERS) this.upsertUser(u);
    this.encKey = encKey;
    this.active = sigKey;
    this.passive = []; // newest first
    this.retired = [];
    this.foreign = undefined; // a key never published, for forged-signature tokens
    this.buildProvider();
  }

  upsertUser(input) {
    const byId = input?.id !== undefined ? this.users.get(input.id) : undefined;
    const byName = typeof input?.username === 'string'
      ? [...this.users.values()].find((u) => u.username === input.username.toLowerCase())
      : undefined;
    const existing = byId ?? byName;
    const user = normalizeUser(input, existing);
    const clash = [...this.users.values()].find((u) => u.username === user.username && u.id !== user.id);
    if (clash) throw new HttpError(409, 'conflict', `username ${user.username} belongs to user ${clash.id}`);
    if (existing && existing.id !== user.id) this.users.delete(existing.id);
    this.users.set(user.id, user);
    return user;
  }

  findUserByName(username) {
    const lower = String(username).toLowerCase();
    return [...this.users.values()].find((u) => u.username === lower);
  }

  publishedSigKeys() {
    return [this.active, ...this.passive];
  }

  allKeys() {
    return [this.active, ...this.passive, ...this.retired, this.encKey];
  }

  // oidc-provider reads its key set once: every key change builds a new Provider (users and clients live here).
  buildProvider() {
    this.provider = buildProvider(this);
    this.callback = this.provider.callback();
  }

  // ------------------------------------------------------------- Keycloak 24 claim sets

  userClaims(user, client, scopeParam, sessionId) {
    const realmRoles = [...new Set([`default-roles-${this.name}`, 'offline_access', 'uma_authorization',
      ...user.realm_roles])];
    const resourceAccess = {};
    for (const [clientId, roles] of Object.entries(user.client_roles)) {
      if (roles.length) resourceAccess[clientId] = { roles: [...roles] };
    }
    resourceAccess.account ??= { roles: ['manage-account', 'manage-account-links', 'view-profile'] };
    const scopes = String(scopeParam ?? '').split(' ').filter(Boolean);
    const scope = [...new Set([...(scopes.includes('openid') ? ['openid'] : []), 'email', 'profile'])].join(' ');
    const name = [user.first_name, user.last_name].filter(Boolean).join(' ');
    const claims = {
      aud: this.audience,
      sub: user.id,
      typ: 'Bearer',
      azp: client.client_id,
      session_state: sessionId,
      acr: '1',
      'allowed-origins': client.web_origins,
      realm_access: { roles: realmRoles },
      resource_access: resourceAccess,
      scope,
      sid: sessionId,
      email_verified: Boolean(user.email_verified),
      name: name || undefined,
      preferred_username: user.username,
      given_name: user.first_name,
      family_name: user.last_name,
      email: user.email,
      tenant_id: user.tenant_id ?? user.attributes?.tenant_id,
    };
    return dropUndefined(claims);
  }

  serviceAccountClaims(client) {
    const resourceAccess = {};
    for (const [clientId, roles] of Object.entries(client.service_account_client_roles)) {
      if (Array.isArray(roles) && roles.length) resourceAccess[clientId] = { roles: [...roles] };
    }
    resourceAccess.account ??= { roles: ['manage-account', 'manage-account-links', 'view-profile'] };
    return dropUndefined({
      aud: this.audience,
      sub: client.service_account_id,
      typ: 'Bearer',
      azp: client.client_id,
      acr: '1',
      'allowed-origins': client.web_origins,
      realm_access: {
        roles: [...new Set([`default-roles-${this.name}`, 'offline_access', 'uma_authorization',
          ...client.service_account_roles])],
      },
      resource_access: resourceAccess,
      scope: 'email profile',
      clientHost: '127.0.0.1',
      email_verified: false,
      preferred_username: `service-account-${client.client_id}`,
      clientAddress: '127.0.0.1',
      client_id: client.client_id,
      tenant_id: client.service_account_tenant_id,
    });
  }

  // exp, iat, jti, iss first, then the rest in Keycloak's order.
  frame(claims, iat, exp) {
    return {
      exp, iat, jti: crypto.randomUUID(), iss: this.issuer, ...claims,
    };
  }
}

function dropUndefined(obj) {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined));
}

// ---------------------------------------------------------------------------------------------------------------
// oidc-provider for one realm

function resourceServerInfo(realm) {
  return {
    scope: 'openid email profile',
    audience: realm.resourceUri,
    accessTokenTTL: realm.lifespan,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: 'RS256', kid: realm.active.kid } },
  };
}

function buildProvider(realm) {
  const clients = [...realm.clients.values()].map((c) => {
    const grantTypes = c.public ? ['password'] : ['password', 'client_credentials'];
    return {
      client_id: c.client_id,
      ...(c.public
        ? { token_endpoint_auth_method: 'none' }
        : { client_secret: c.secret, token_endpoint_auth_method: 'client_secret_basic' }),
      grant_types: grantTypes,
      response_types: [],
      redirect_uris: [],
      scope: 'openid email profile offline_access roles web-origins acr',
    };
  });
  const oidcRoute = '/protocol/openid-connect';
  const provider = new Provider(realm.issuer, {
    clients,
    jwks: { keys: [realm.encKey.jwk, realm.active.jwk, ...realm.passive.map((k) => k.jwk)] },
    cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
    scopes: ['openid', 'offline_access', 'email', 'profile', 'roles', 'web-origins', 'acr'],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'given_name', 'family_name', 'preferred_username'],
    },
    findAccount: async (_ctx, id) => {
      const user = realm.users.get(id);
      if (!user) return undefined;
      return {
        accountId: id,
        claims: async () => dropUndefined({
          sub: id,
          email: user.email,
          email_verified: Boolean(user.email_verified),
          name: [user.first_name, user.last_name].filter(Boolean).join(' ') || undefined,
          given_name: user.first_name,
          family_name: user.last_name,
          preferred_username: user.username,
        }),
      };
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      encryption: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (_ctx, _client, oneOf) => oneOf ?? realm.resourceUri,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, resourceIndicator) => {
          if (resourceIndicator !== realm.resourceUri) throw new errors.InvalidTarget();
          return resourceServerInfo(realm);
        },
      },
    },
    // Keeps the Keycloak claim set the password grant computed (the default would drop `extra`).
    extraTokenClaims: async (_ctx, token) => token.extra,
    ttl: {
      AccessToken: () => realm.lifespan,
      ClientCredentials: () => realm.lifespan,
    },
    formats: {
      customizers: {
        // Reshape oidc-provider's JWT access token into Keycloak 24's: header typ JWT, Keycloak's claim set.
        jwt: async (_ctx, token, jwt) => {
          const { iat, exp } = jwt.payload;
          let claims = token.extra?.kc;
          if (!claims) {
            const client = realm.clients.get(token.clientId);
            if (!client) throw new Error(`unknown client ${token.clientId}`);
            claims = realm.serviceAccountClaims(client);
          }
          jwt.header = { typ: 'JWT' };
          jwt.payload = realm.frame(claims, iat, exp);
        },
      },
    },
    routes: {
      authorization: `${oidcRoute}/auth`,
      token: `${oidcRoute}/token`,
      userinfo: `${oidcRoute}/userinfo`,
      jwks: `${oidcRoute}/certs`,
      end_session: `${oidcRoute}/logout`,
      introspection: `${oidcRoute}/token/introspect`,
      revocation: `${oidcRoute}/revoke`,
      device_authorization: `${oidcRoute}/auth/device`,
      backchannel_authentication: `${oidcRoute}/ext/ciba/auth`,
      pushed_authorization_request: `${oidcRoute}/ext/par/request`,
    },
  });

  // Keycloak's direct access grant (oidc-provider has no password grant).
  provider.registerGrantType('password', async (ctx) => {
    const { client, params } = ctx.oidc;
    const kcClient = realm.clients.get(client.clientId);
    const user = params.username ? realm.findUserByName(params.username) : undefined;
    if (!kcClient || !user || !user.enabled || user.password === undefined || params.password !== user.password) {
      // Keycloak's answer to bad credentials.
      ctx.status = 401;
      ctx.body = { error: 'invalid_grant', error_description: 'Invalid user credentials' };
      return;
    }
    const sessionId = crypto.randomUUID();
    const claims = realm.userClaims(user, kcClient, params.scope, sessionId);
    const token = new provider.AccessToken({
      accountId: user.id,
      client,
      gty: 'password',
      scope: claims.scope,
      extra: { kc: claims },
    });
    token.resourceServer = new provider.ResourceServer(realm.resourceUri, resourceServerInfo(realm));
    ctx.oidc.entity('AccessToken', token);
    const accessToken = await token.save();
    ctx.body = {
      access_token: accessToken,
      expires_in: token.expiration,
      refresh_expires_in: 0,
      token_type: 'Bearer',
      'not-before-policy': 0,
      session_state: sessionId,
      scope: claims.scope,
    };
  }, ['username', 'password', 'scope', 'resource'], ['resource']);

  provider.use(async (ctx, next) => {
    const isJwks = ctx.method === 'GET' && ctx.path === `${oidcRoute}/certs`;
    if (isJwks) {
      realm.jwksFetches += 1;
      if (realm.jwksDelayMs > 0) await new Promise((r) => { setTimeout(r, realm.jwksDelayMs); });
    }
    await next();
    if (isJwks && ctx.status === 200 && ctx.body?.keys) {
      // Keycloak answers application/json; extra keys let tests check that an odd key does not spoil the set.
      ctx.body = { keys: [...ctx.body.keys, ...realm.extraJwksKeys] };
      ctx.type = 'application/json';
    }
    if (ctx.method === 'POST' && ctx.path === `${oidcRoute}/token` && ctx.status === 200 && ctx.body?.access_token
        && ctx.body['not-before-policy'] === undefined) {
      // client_credentials response, made Keycloak-like.
      const payload = decodePart(ctx.body.access_token.split('.')[1]);
      ctx.body = {
        access_token: ctx.body.access_token,
        expires_in: ctx.body.expires_in,
        refresh_expires_in: 0,
        token_type: 'Bearer',
        'not-before-policy': 0,
        scope: payload?.scope ?? ctx.body.scope,
      };
    }
  });
  return provider;
}

function decodePart(part) {
  try {
    return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Minting tokens with overrides (the attack catalogue's raw material)
//
// Body fields, all optional:
//   username        base claims of this user's password login (default: the realm's first user)
//   client_id       the client: azp/allowed-origins, or with `service_account: true` the service account's claims
//   service_account true: base claims are client_id's service-account token
//   scope           as the password grant's scope parameter
//   claims          merged into the payload; a null value removes the claim
//   exp_in, nbf_in, iat_in   seconds relative to now (set exp/nbf/iat); absolute values go in `claims`
//   header          merged into the header; a null value removes the field
//   alg             RS256 (default), RS384, RS512, PS256, PS384, PS512, HS256, HS384, HS512, none
//   kid             header kid (null removes it); default: the signing key's kid
//   sign_kid        sign with this key (active, passive, retired or the enc key); default: the active key
//   sign_with       "foreign": sign with a key that was never published (kid stays the active one unless `kid`)
//   hs_secret       HS* secret as text; default: the active key's public PEM (the RSA/HMAC confusion attack)

const HASHES = { 256: 'sha256', 384: 'sha384', 512: 'sha512' };

async function mintToken(realm, body) {
  const now = Math.floor(Date.now() / 1000);
  const clientId = body.client_id ?? 'avb-api';
  const client = realm.clients.get(clientId);
  if (!client) throw new HttpError(400, 'invalid_request', `unknown client ${clientId}`);
  let claims;
  if (body.service_account) {
    claims = realm.serviceAccountClaims(client);
  } else {
    const user = body.username !== undefined ? realm.findUserByName(body.username) : [...realm.users.values()][0];
    if (!user) throw new HttpError(400, 'invalid_request', `unknown user ${body.username}`);
    claims = realm.userClaims(user, client, body.scope, crypto.randomUUID());
  }
  const payload = realm.frame(claims, now, now + realm.lifespan);
  for (const [field, key] of [['exp_in', 'exp'], ['nbf_in', 'nbf'], ['iat_in', 'iat']]) {
    if (body[field] !== undefined) {
      if (!Number.isInteger(body[field])) throw new HttpError(400, 'invalid_request', `${field} must be an integer`);
      payload[key] = now + body[field];
    }
  }
  mergeNullable(payload, body.claims, 'claims');

  const alg = body.alg ?? 'RS256';
  let signer;
  if (body.sign_with === 'foreign') {
    realm.foreign ??= await newRsaKey('sig');
    signer = realm.foreign;
  } else if (body.sign_with !== undefined) {
    throw new HttpError(400, 'invalid_request', 'sign_with must be "foreign"');
  } else if (body.sign_kid !== undefined) {
    signer = realm.allKeys().find((k) => k.kid === body.sign_kid);
    if (!signer) throw new HttpError(400, 'invalid_request', `no key ${body.sign_kid}`);
  } else {
    signer = realm.active;
  }
  const header = { alg, typ: 'JWT' };
  const kid = body.kid !== undefined ? body.kid : (body.sign_with === 'foreign' ? realm.active.kid : signer.kid);
  if (kid !== null && alg !== 'none') header.kid = kid;
  if (kid !== null && alg === 'none' && body.kid !== undefined) header.kid = kid;
  mergeNullable(header, body.header, 'header');

  const signingInput = `${b64json(header)}.${b64json(payload)}`;
  let signature;
  const bits = alg.slice(2);
  if (alg === 'none') {
    signature = '';
  } else if (/^HS(256|384|512)$/.test(alg)) {
    const secret = body.hs_secret ?? publicPem(realm.active);
    signature = crypto.createHmac(HASHES[bits], secret).update(signingInput).digest('base64url');
  } else if (/^RS(256|384|512)$/.test(alg)) {
    signature = crypto.sign(HASHES[bits], Buffer.from(signingInput), signer.privateKey).toString('base64url');
  } else if (/^PS(256|384|512)$/.test(alg)) {
    signature = crypto.sign(HASHES[bits], Buffer.from(signingInput), {
      key: signer.privateKey,
      padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
      saltLength: Number(bits) / 8,
    }).toString('base64url');
  } else {
    throw new HttpError(400, 'invalid_request', `unsupported alg ${alg}`);
  }
  return {
    token: `${signingInput}.${signature}`, header, payload, signed_with: alg === 'none' ? null : signer.kid,
  };
}

function b64json(value) {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function mergeNullable(target, overrides, what) {
  if (overrides === undefined) return;
  if (typeof overrides !== 'object' || overrides === null || Array.isArray(overrides)) {
    throw new HttpError(400, 'invalid_request', `${what} must be an object`);
  }
  for (const [k, v] of Object.entries(overrides)) {
    if (v === null) delete target[k];
    else target[k] = v;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP

const realms = new Map();
let baseUrl;

async function createRealm(cfg) {
  const name = cfg.name ?? 'avb';
  if (realms.has(name)) throw new HttpError(409, 'conflict', `realm ${name} exists`);
  const [sig, enc] = await Promise.all([newRsaKey('sig'), newRsaKey('enc')]);
  const realm = new Realm(name, cfg, baseUrl, sig, enc);
  realms.set(name, realm);
  return realm;
}

function sendJson(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readJson(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 1 << 20) throw new HttpError(413, 'invalid_request', 'body too large');
    chunks.push(chunk);
  }
  if (!size) return {};
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'invalid_request', 'body is not JSON');
  }
}

function keysView(realm) {
  return {
    active_kid: realm.active.kid,
    passive_kids: realm.passive.map((k) => k.kid),
    retired_kids: realm.retired.map((k) => k.kid),
    enc_kid: realm.encKey.kid,
    public_key: realm.active.spkiBase64,
  };
}

async function control(req, res, url) {
  const route = `${req.method} ${url.pathname}`;
  if (route === 'GET /_test/health') return sendJson(res, 200, { ok: true, realms: [...realms.keys()] });
  if (route === 'POST /_test/realms') {
    const realm = await createRealm(await readJson(req));
    return sendJson(res, 201, { realm: realm.name, issuer: realm.issuer });
  }
  const realmName = url.searchParams.get('realm') ?? realms.keys().next().value;
  const realm = realms.get(realmName);
  if (!realm) throw new HttpError(404, 'not_found', `Realm does not exist: ${realmName}`);
  switch (route) {
    case 'GET /_test/users':
      return sendJson(res, 200, [...realm.users.values()].map(publicUser));
    case 'POST /_test/users':
      return sendJson(res, 200, publicUser(realm.upsertUser(await readJson(req))));
    case 'POST /_test/config': {
      const body = await readJson(req);
      const next = {
        lifespan: body.access_token_lifespan !== undefined ? lifespanValue(body.access_token_lifespan) : realm.lifespan,
        audience: body.audience !== undefined ? audienceValue(body.audience) : realm.audience,
        delay: body.jwks_delay_ms ?? realm.jwksDelayMs,
        extra: body.extra_jwks_keys ?? realm.extraJwksKeys,
      };
      if (!Number.isInteger(next.delay) || next.delay < 0) {
        throw new HttpError(400, 'invalid_request', 'jwks_delay_ms must be a non-negative integer');
      }
      if (!Array.isArray(next.extra)) throw new HttpError(400, 'invalid_request', 'extra_jwks_keys must be an array');
      realm.lifespan = next.lifespan;
      realm.audience = next.audience;
      realm.jwksDelayMs = next.delay;
      realm.extraJwksKeys = next.extra;
      return sendJson(res, 200, {
        access_token_lifespan: realm.lifespan,
        audience: realm.audience,
        jwks_delay_ms: realm.jwksDelayMs,
        extra_jwks_keys: realm.extraJwksKeys,
      });
    }
    case 'GET /_test/keys':
      return sendJson(res, 200, keysView(realm));
    case 'POST /_test/rotate-key': {
      const previous = realm.active;
      realm.active = await newRsaKey('sig');
      realm.passive.unshift(previous);
      realm.buildProvider();
      return sendJson(res, 200, { ...keysView(realm), previous_kid: previous.kid });
    }
    case 'POST /_test/retire-key': {
      const body = await readJson(req);
      let retiring;
      if (body.kid !== undefined) {
        if (body.kid === realm.active.kid) throw new HttpError(409, 'conflict', 'the active key cannot be retired');
        retiring = realm.passive.filter((k) => k.kid === body.kid);
        if (!retiring.length) throw new HttpError(404, 'not_found', `no passive key ${body.kid}`);
      } else {
        retiring = [...realm.passive];
      }
      realm.passive = realm.passive.filter((k) => !retiring.includes(k));
      realm.retired.push(...retiring);
      realm.buildProvider();
      return sendJson(res, 200, { ...keysView(realm), retired: retiring.map((k) => k.kid) });
    }
    case 'POST /_test/mint':
      return sendJson(res, 200, await mintToken(realm, await readJson(req)));
    case 'GET /_test/jwks-fetches':
      return sendJson(res, 200, { count: realm.jwksFetches });
    case 'POST /_test/jwks-fetches/reset':
      realm.jwksFetches = 0;
      return sendJson(res, 200, { count: 0 });
    default:
      throw new HttpError(404, 'not_found', `no control route ${route}`);
  }
}

function realmInfo(realm) {
  return {
    realm: realm.name,
    public_key: realm.active.spkiBase64,
    'token-service': `${realm.issuer}/protocol/openid-connect`,
    'account-service': `${realm.issuer}/account`,
    'tokens-not-before': 0,
  };
}

async function handle(req, res) {
  const url = new URL(req.url, baseUrl);
  if (url.pathname.startsWith('/_test/')) return control(req, res, url);
  const match = /^\/realms\/([^/]+)(\/.*)?$/.exec(url.pathname);
  if (!match) throw new HttpError(404, 'not_found', 'Not Found');
  const realm = realms.get(decodeURIComponent(match[1]));
  if (!realm) throw new HttpError(404, 'not_found', 'Realm does not exist');
  if (!match[2] || match[2] === '/') {
    if (req.method !== 'GET') throw new HttpError(405, 'invalid_request', 'Method Not Allowed');
    return sendJson(res, 200, realmInfo(realm));
  }
  // Mount: oidc-provider sees the path below /realms/<realm>; it derives its mount path from originalUrl.
  const prefix = `/realms/${match[1]}`;
  req.originalUrl = req.url;
  req.url = req.url.slice(prefix.length);
  return realm.callback(req, res);
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((err) => {
    if (err instanceof HttpError) {
      if (!res.headersSent) sendJson(res, err.status, err.body);
      else res.destroy();
      return;
    }
    console.error(err);
    if (!res.headersSent) sendJson(res, 500, { error: 'server_error', error_description: String(err?.message ?? err) });
    else res.destroy();
  });
});

server.listen(portArg, '127.0.0.1', async () => {
  try {
    const { port } = server.address();
    baseUrl = `http://127.0.0.1:${port}`;
    const config = loadConfig();
    const realmConfigs = config.realms ?? [{ name: argValue('--realm') ?? process.env.AVB_KEYCLOAK_REALM ?? 'avb' }];
    for (const cfg of realmConfigs) await createRealm(cfg);
    keepSpare = true;
    if (spareKeyPairs.length === 0) spareKeyPairs.push(rsaKeyPair());
    process.stdout.write(`${JSON.stringify({
      ready: true, port, base_url: baseUrl, realms: [...realms.keys()],
    })}\n`);
  } catch (err) {
    console.error(err);
    process.exit(1);
  }
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    process.exit(0);
  });
}
