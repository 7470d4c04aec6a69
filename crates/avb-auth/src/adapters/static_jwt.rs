//! Static-key JWT identity for development and embedded use: tokens signed with an HS256 secret or a local RSA
//! key pair, in the same claim shape as Keycloak so nothing downstream can tell the difference.

use crate::claims::{AccessClaims, Audience, RoleBlock, TimeRules};
use crate::identity::{IdentityProvider, MAX_TOKEN_BYTES, VerifiedToken};
use crate::{Error, Result};
use async_trait::async_trait;
use avb_core::{Clock, Ctx, IdGen, Role, SystemClock, TenantId, UuidV7Ids};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use std::sync::Arc;

/// Configuration of [`StaticJwtIdentity`]. `Debug` never shows key material.
#[derive(Clone)]
#[non_exhaustive]
pub struct StaticJwtConfig {
    /// `iss` minted and required.
    pub issuer: String,
    /// `aud` minted and required.
    pub audience: String,
    /// Client id whose `resource_access` roles count.
    pub client_id: String,
    /// Clock-skew tolerance in seconds.
    pub leeway_secs: i64,
    key: StaticKey,
}

#[derive(Clone)]
enum StaticKey {
    Hs256(Vec<u8>),
    Rs256 {
        private_pem: Vec<u8>,
        public_pem: Vec<u8>,
    },
}

impl std::fmt::Debug for StaticJwtConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let key = match self.key {
            StaticKey::Hs256(_) => "HS256(<redacted>)",
            StaticKey::Rs256 { .. } => "RS256(<redacted>)",
        };
        f.debug_struct("StaticJwtConfig")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("client_id", &self.client_id)
            .field("leeway_secs", &self.leeway_secs)
            .field("key", &key)
            .finish()
    }
}

/// Builds a [`StaticJwtIdentity`].
#[derive(Debug, Clone)]
pub struct StaticJwtBuilder {
    config: StaticJwtConfig,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGen>,
}

impl StaticJwtBuilder {
    /// HS256 with `secret` (at least 32 bytes: shorter secrets are brute-forceable).
    pub fn hs256(secret: impl Into<Vec<u8>>) -> Self {
        Self::with_key(StaticKey::Hs256(secret.into()))
    }

    /// RS256 with a PEM private key (PKCS#1 or PKCS#8) and its PEM public key.
    pub fn rs256(private_pem: impl Into<Vec<u8>>, public_pem: impl Into<Vec<u8>>) -> Self {
        Self::with_key(StaticKey::Rs256 {
            private_pem: private_pem.into(),
            public_pem: public_pem.into(),
        })
    }

    fn with_key(key: StaticKey) -> Self {
        Self {
            config: StaticJwtConfig {
                issuer: "agentvoicebox-dev".into(),
                audience: "avb-api".into(),
                client_id: "avb-api".into(),
                leeway_secs: 10,
                key,
            },
            clock: Arc::new(SystemClock),
            ids: Arc::new(UuidV7Ids),
        }
    }

    /// Sets the issuer.
    #[must_use]
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.config.issuer = issuer.into();
        self
    }

    /// Sets the audience.
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.config.audience = audience.into();
        self
    }

    /// Sets the clock (tests).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sets the id generator (token ids).
    #[must_use]
    pub fn ids(mut self, ids: Arc<dyn IdGen>) -> Self {
        self.ids = ids;
        self
    }

    /// Validates the key material.
    pub fn build(self) -> Result<StaticJwtIdentity> {
        let (algorithm, encoding, decoding) = match &self.config.key {
            StaticKey::Hs256(secret) => {
                if secret.len() < 32 {
                    return Err(Error::Config("HS256 secret must be at least 32 bytes".into()));
                }
                (
                    Algorithm::HS256,
                    EncodingKey::from_secret(secret),
                    DecodingKey::from_secret(secret),
                )
            }
            StaticKey::Rs256 {
                private_pem,
                public_pem,
            } => (
                Algorithm::RS256,
                EncodingKey::from_rsa_pem(private_pem)
                    .map_err(|e| Error::Config(format!("private key: {e}")))?,
                DecodingKey::from_rsa_pem(public_pem)
                    .map_err(|e| Error::Config(format!("public key: {e}")))?,
            ),
        };
        let mut validation = Validation::new(algorithm);
        // Time claims are checked against our Clock port in `AccessClaims::verify`, issuer/audience there too.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        Ok(StaticJwtIdentity {
            inner: Arc::new(Inner {
                config: self.config,
                algorithm,
                encoding,
                decoding,
                validation,
                clock: self.clock,
                ids: self.ids,
            }),
        })
    }
}

/// What a dev token says (`mint-dev-token`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevTokenRequest {
    /// Subject (becomes the user's `keycloak_id`).
    pub subject: String,
    /// E-mail.
    pub email: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Roles.
    pub roles: Vec<Role>,
    /// Tenant claim.
    pub tenant_id: Option<TenantId>,
    /// Lifetime in seconds.
    pub ttl_secs: i64,
}

/// Verifies (and mints) tokens signed with a static key.
#[derive(Debug, Clone)]
pub struct StaticJwtIdentity {
    inner: Arc<Inner>,
}

struct Inner {
    config: StaticJwtConfig,
    algorithm: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGen>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticJwtIdentity")
            .field("config", &self.config)
            .field("algorithm", &self.algorithm)
            .finish()
    }
}

impl StaticJwtIdentity {
    /// Mints a token for `req`, valid from now for `ttl_secs`.
    pub fn mint(&self, req: &DevTokenRequest) -> Result<String> {
        let now = self.inner.clock.now().timestamp();
        let claims = AccessClaims {
            sub: req.subject.clone(),
            iss: self.inner.config.issuer.clone(),
            aud: Some(Audience::One(self.inner.config.audience.clone())),
            exp: Some(now.saturating_add(req.ttl_secs)),
            nbf: None,
            iat: Some(now),
            jti: Some(self.inner.ids.new_uuid().to_string()),
            azp: Some(self.inner.config.client_id.clone()),
            typ: Some("Bearer".into()),
            email: req.email.clone(),
            given_name: req.first_name.clone(),
            family_name: req.last_name.clone(),
            preferred_username: req.email.clone(),
            realm_access: RoleBlock {
                roles: req.roles.iter().map(|r| r.as_str().to_owned()).collect(),
            },
            resource_access: Default::default(),
            tenant_id: req.tenant_id.map(|t| t.to_string()),
        };
        let mut header = Header::new(self.inner.algorithm);
        header.typ = Some("JWT".into());
        jsonwebtoken::encode(&header, &claims, &self.inner.encoding)
            .map_err(|e| Error::Config(format!("cannot sign token: {e}")))
    }

    /// The configuration.
    pub fn config(&self) -> &StaticJwtConfig {
        &self.inner.config
    }
}

#[async_trait]
impl IdentityProvider for StaticJwtIdentity {
    async fn verify(&self, _ctx: &Ctx, token: &str) -> Result<VerifiedToken> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Error::InvalidToken("token too large".into()));
        }
        let data = jsonwebtoken::decode::<AccessClaims>(token, &self.inner.decoding, &self.inner.validation)
            .map_err(|e| Error::InvalidToken(crate::claims::jwt_error_reason(&e)))?;
        let config = &self.inner.config;
        let time = TimeRules {
            now: self.inner.clock.now(),
            leeway: config.leeway_secs,
            max_lifetime: 86_400 * 30,
        };
        data.claims
            .verify(&config.issuer, &config.audience, &config.client_id, &time)
    }
}
