//! Keycloak's admin API as a port (spec §6.1): find and create users, one group per tenant (its id is the
//! tenant's `keycloak_group_id`), and group membership.
//!
//! The HTTP adapter is [`crate::adapters::keycloak_admin::KeycloakAdminClient`] (feature `keycloak`).

use crate::Result;
use async_trait::async_trait;
use avb_core::Ctx;
use std::collections::BTreeMap;

/// The user attribute that carries the tenant id (a Keycloak protocol mapper turns it into the `tenant_id` claim).
pub const TENANT_ID_ATTRIBUTE: &str = "tenant_id";

/// A Keycloak user id (a UUID chosen by Keycloak).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct KeycloakUserId(pub String);

impl std::fmt::Display for KeycloakUserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Keycloak group id; stored on the tenant as `keycloak_group_id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct KeycloakGroupId(pub String);

impl std::fmt::Display for KeycloakGroupId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A user as Keycloak reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeycloakUser {
    /// Keycloak's id.
    pub id: KeycloakUserId,
    /// Login name (we create users with the e-mail address as username).
    pub username: String,
    /// E-mail address, if set.
    pub email: Option<String>,
    /// Given name, if set.
    pub first_name: Option<String>,
    /// Family name, if set.
    pub last_name: Option<String>,
    /// Whether the account may log in.
    pub enabled: bool,
    /// Custom attributes (each a list of values, as in Keycloak).
    pub attributes: BTreeMap<String, Vec<String>>,
}

impl KeycloakUser {
    /// The user's tenant id attribute, if any (the first value of [`TENANT_ID_ATTRIBUTE`]).
    pub fn tenant_id(&self) -> Option<&str> {
        self.attributes
            .get(TENANT_ID_ATTRIBUTE)
            .and_then(|values| values.first())
            .map(String::as_str)
    }
}

/// A user to create.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewKeycloakUser {
    /// E-mail address; also the username.
    pub email: String,
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// Whether the account may log in.
    pub enabled: bool,
    /// Custom attributes, including [`TENANT_ID_ATTRIBUTE`].
    pub attributes: BTreeMap<String, Vec<String>>,
}

impl NewKeycloakUser {
    /// An enabled user of `tenant_id` with the given e-mail address and no names.
    pub fn new(email: impl Into<String>, tenant_id: impl ToString) -> Self {
        let mut attributes = BTreeMap::new();
        attributes.insert(TENANT_ID_ATTRIBUTE.to_owned(), vec![tenant_id.to_string()]);
        Self {
            email: email.into(),
            first_name: None,
            last_name: None,
            enabled: true,
            attributes,
        }
    }

    /// Sets given and family name.
    #[must_use]
    pub fn names(mut self, first_name: impl Into<String>, last_name: impl Into<String>) -> Self {
        self.first_name = Some(first_name.into());
        self.last_name = Some(last_name.into());
        self
    }

    /// Sets whether the account may log in.
    #[must_use]
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Adds one value to a custom attribute.
    #[must_use]
    pub fn attribute(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.entry(name.into()).or_default().push(value.into());
        self
    }
}

/// Keycloak's admin API, as far as user and tenant-group sync needs it.
///
/// # Contract
/// - Every call takes the caller's [`Ctx`]; an expired deadline fails with `deadline_exceeded` before any request.
/// - [`find_user_by_email`](Self::find_user_by_email) matches the whole address, case-insensitively; `Ok(None)` when
///   no user has it.
/// - [`create_user`](Self::create_user) fails with `conflict` when Keycloak already has a user with that username or
///   e-mail (HTTP 409), and never returns an id it did not get from Keycloak.
/// - [`create_group`](Self::create_group) is idempotent: it looks the top-level group up by exact name first and
///   returns the existing id; a concurrent creation (409) is resolved by looking it up again.
/// - [`add_user_to_group`](Self::add_user_to_group) and [`remove_user_from_group`](Self::remove_user_from_group) are
///   idempotent; an unknown user or group is `not_found`.
/// - Errors: rejected service-account credentials or missing admin rights (401/403) are a configuration error
///   (`internal_error`); 404 `not_found`; 409 `conflict`; 5xx and transport failures `service_unavailable`
///   (temporary).
#[async_trait]
pub trait KeycloakAdmin: Send + Sync + std::fmt::Debug + 'static {
    /// The user with exactly this e-mail address, if any.
    async fn find_user_by_email(&self, ctx: &Ctx, email: &str) -> Result<Option<KeycloakUser>>;

    /// Creates a user and returns the id Keycloak assigned.
    async fn create_user(&self, ctx: &Ctx, user: &NewKeycloakUser) -> Result<KeycloakUserId>;

    /// Returns the id of the top-level group named `name`, creating it if needed.
    async fn create_group(&self, ctx: &Ctx, name: &str) -> Result<KeycloakGroupId>;

    /// Makes the user a member of the group.
    async fn add_user_to_group(
        &self,
        ctx: &Ctx,
        user: &KeycloakUserId,
        group: &KeycloakGroupId,
    ) -> Result<()>;

    /// Removes the user from the group.
    async fn remove_user_from_group(
        &self,
        ctx: &Ctx,
        user: &KeycloakUserId,
        group: &KeycloakGroupId,
    ) -> Result<()>;
}
