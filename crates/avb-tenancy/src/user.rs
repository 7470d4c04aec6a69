//! Users of a tenant (spec §9.1): invitations, roles, activation, profiles, and the link to the identity provider
//! (spec §6.1 `_get_or_create_user`), framework-free.
//!
//! # Scoping
//! Reads run in the context's scope as given. Operations whose rules count a tenant's users (invite, role changes,
//! deactivation, reactivation) need a tenant in the context (`tenant_required` otherwise): a sysadmin managing a
//! tenant's users narrows first with [`Ctx::scoped_to`], so "the last admin" and `max_users` are always the
//! tenant's own. These operations lock the tenant row first, which serialises concurrent role and activation
//! changes of one tenant (the last-admin rule cannot be raced).

use crate::error::{Error, Result};
use crate::model::{User, UserProfile};
use crate::quota::{self, Quota};
use crate::service::TenancyDeps;
use crate::store::{UnitOfWork, UserFilter};
use crate::tenant::{changes, check_version, json_size, merge_patch, tenant_ctx, to_json, unique_conflict};
use crate::validation;
use avb_core::audit::{AuditAction, NewAuditEntry};
use avb_core::jobs::{NewJob, kinds};
use avb_core::{Ctx, FieldErrors, Page, PageRequest, Principal, Role, TenantId, ThemeId, UserId};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

/// Longest first or last name (spec §9.1 `max_length=150`).
pub const MAX_NAME: usize = 150;

/// Most muted notification categories per user.
pub const MAX_MUTED_CATEGORIES: usize = 50;

// ---------------------------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------------------------

/// Input of [`UserService::invite`].
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteUserRequest {
    /// E-mail, unique platform-wide (stored lower-case).
    #[cfg_attr(feature = "openapi", schema(format = Email, max_length = 254))]
    pub email: String,
    /// ≤ 150 characters.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 150))]
    pub first_name: String,
    /// ≤ 150 characters.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 150))]
    pub last_name: String,
    /// At least one role name (`admin`, `developer`, `operator`, `viewer`, `billing`; `sysadmin` only when a
    /// cross-tenant principal invites).
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Vec<avb_core::Role>, min_items = 1)
    )]
    pub roles: Vec<String>,
}

/// Input of [`UserService::change_roles`]: the complete new role set.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRolesRequest {
    /// At least one role name.
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Vec<avb_core::Role>, min_items = 1)
    )]
    pub roles: Vec<String>,
}

/// Input of [`UserService::update_profile`]; `None` leaves a field unchanged.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateProfileRequest {
    /// ≤ 150 characters.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 150))]
    pub first_name: Option<String>,
    /// ≤ 150 characters.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 150))]
    pub last_name: Option<String>,
    /// Empty, or an http(s) URL.
    #[serde(default)]
    pub avatar_url: Option<String>,
    /// IANA time zone name (`Europe/Paris`), 1–50 characters.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 50))]
    pub timezone: Option<String>,
    /// Locale (`en`, `pt-BR`), 2–10 characters.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(min_length = 2, max_length = 10))]
    pub locale: Option<String>,
    /// E-mail notifications on/off.
    #[serde(default)]
    pub email_notifications: Option<bool>,
    /// Push notifications on/off.
    #[serde(default)]
    pub push_notifications: Option<bool>,
    /// Complete set of muted notification categories (≤ 50, each 1–50 of `a-z 0-9 _ . -`).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 50))]
    pub muted_categories: Option<Vec<String>>,
    /// `Some(Some(id))` sets the theme (it must exist in the user's tenant), `Some(None)` (JSON `null`) clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<avb_core::ThemeId>))]
    pub theme_id: Option<Option<ThemeId>>,
    /// JSON merge patch (RFC 7396) applied to the preferences; the result must stay within 64 KiB.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub preferences: Option<Value>,
    /// Optimistic concurrency: refuse with `conflict` unless the stored version equals this.
    #[serde(default)]
    pub expected_version: Option<u64>,
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
fn double_option<'de, D, T>(deserializer: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// What the identity provider says about a user (spec §6.1 token claims), as the auth layer hands it over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityClaims {
    /// The provider's subject (`sub`), 1–255 characters.
    pub keycloak_id: String,
    /// E-mail.
    pub email: String,
    /// `given_name`; cut to 150 characters.
    #[serde(default)]
    pub first_name: String,
    /// `family_name`; cut to 150 characters.
    #[serde(default)]
    pub last_name: String,
    /// The `tenant_id` claim.
    #[serde(default)]
    pub tenant_id: Option<TenantId>,
    /// Realm roles; used only when the user is created (later role changes go through
    /// [`UserService::change_roles`]).
    #[serde(default)]
    pub roles: BTreeSet<Role>,
}

/// A user became a member of a tenant at sign-in (created in the tenant its identity-provider claims name): the
/// payload of the [`kinds::PERMISSIONS_SYNC_USER`] job enqueued in the same unit of work as the user insert.
///
/// Tenant roles are relations of the permission graph, which lives outside the records' transaction. The job is
/// the durable record that the user's relationships are owed: it exists if and only if the insert committed,
/// and the job runner writes the relationships (idempotently) until the authorizer accepts them. The caller of
/// [`UserService::sign_in_from_identity`] also gets this value back so it can write the same relationships at
/// once, before the new user's first request is authorized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantJoin {
    /// The tenant joined.
    pub tenant_id: TenantId,
    /// The user.
    pub user_id: UserId,
    /// The user's roles when they joined (a retry writes the user's *current* roles; see the job runner).
    pub roles: BTreeSet<Role>,
}

/// What [`UserService::sign_in_from_identity`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentitySignIn {
    /// The user behind the identity.
    pub user: User,
    /// `Some` when this sign-in created the user in a tenant (and enqueued [`kinds::PERMISSIONS_SYNC_USER`]);
    /// `None` for an existing user (invited ones included) and for a user created without a tenant.
    pub joined: Option<TenantJoin>,
}

// ---------------------------------------------------------------------------------------------------------------
// Service
// ---------------------------------------------------------------------------------------------------------------

/// User operations. Authorization is the caller's job; this service keeps the domain rules (unique e-mail,
/// quotas, at least one active admin per tenant, no self-deactivation, sysadmin only from a cross-tenant
/// principal) and writes each change with its audit record atomically.
#[derive(Debug, Clone)]
pub struct UserService {
    deps: TenancyDeps,
}

impl UserService {
    /// A service over `deps`.
    pub fn new(deps: TenancyDeps) -> Self {
        Self { deps }
    }

    /// Invites a user into the context's tenant: checks `max_users` (and that the tenant is neither suspended nor
    /// deleted), stores the user without an identity link (set at first login by
    /// [`UserService::upsert_from_identity`]) and enqueues `email.invite`. A registered e-mail is `conflict`.
    pub async fn invite(&self, ctx: &Ctx, req: InviteUserRequest) -> Result<User> {
        let mut errors = FieldErrors::new();
        validation::email(&mut errors, "email", &req.email);
        validation::text(&mut errors, "first_name", &req.first_name, 0, MAX_NAME);
        validation::text(&mut errors, "last_name", &req.last_name, 0, MAX_NAME);
        let roles = parse_roles(&mut errors, &req.roles);
        errors.into_result()?;
        check_grantable(ctx, &roles)?;
        let tenant = ctx.require_tenant()?;
        let now = self.deps.clock.now();
        let user = User {
            id: UserId::generate(self.deps.ids.as_ref()),
            tenant_id: Some(tenant),
            keycloak_id: None,
            email: req.email.to_lowercase(),
            first_name: req.first_name,
            last_name: req.last_name,
            roles,
            is_active: true,
            is_staff: false,
            date_joined: now,
            last_login: None,
            preferences: Map::new(),
            profile: UserProfile::default(),
            created_at: now,
            updated_at: now,
            version: 0,
        };
        let invited_by = ctx.principal().user_id();
        self.deps
            .write(ctx, move |uow| {
                Box::pin(async move {
                    quota::reserve(uow, tenant, Quota::Users, now).await?;
                    let email = user.email.clone();
                    let user = uow.users().insert(user).await.map_err(|e| {
                        unique_conflict(e, || format!("e-mail '{email}' is already registered"))
                    })?;
                    uow.enqueue_job(NewJob::new(
                        kinds::EMAIL_INVITE,
                        Some(tenant),
                        json!({ "tenant_id": tenant, "user_id": user.id, "invited_by": invited_by }),
                    ))
                    .await?;
                    uow.append_audit(
                        user_entry(AuditAction::Create, &user)
                            .description("user invited")
                            .values(None, Some(to_json(&user))),
                    )
                    .await?;
                    Ok(user)
                })
            })
            .await
    }

    /// Reads a user visible in the context's scope.
    pub async fn get(&self, ctx: &Ctx, id: UserId) -> Result<User> {
        self.deps
            .read(ctx, move |uow| {
                Box::pin(async move { Ok(uow.users().get(id).await?) })
            })
            .await
    }

    /// Lists users visible in the context's scope, newest first, with the total.
    pub async fn list(&self, ctx: &Ctx, filter: UserFilter, page: PageRequest) -> Result<Page<User>> {
        self.deps
            .read(ctx, move |uow| {
                Box::pin(async move { Ok(uow.users().list(&filter, page).await?) })
            })
            .await
    }

    /// The calling user's own record. Only user principals have one (`permission_denied` otherwise).
    pub async fn me(&self, ctx: &Ctx) -> Result<User> {
        self.get(ctx, own_id(ctx)?).await
    }

    /// Changes the calling user's own names, profile and preferences.
    pub async fn update_me(&self, ctx: &Ctx, req: UpdateProfileRequest) -> Result<User> {
        self.update_profile(ctx, own_id(ctx)?, req).await
    }

    /// Changes a user's names, profile and preferences (spec §9.1 `UserProfile`). A request that changes nothing
    /// writes nothing.
    pub async fn update_profile(&self, ctx: &Ctx, id: UserId, req: UpdateProfileRequest) -> Result<User> {
        let patch = ValidProfilePatch::from_request(&req)?;
        let now = self.deps.clock.now();
        self.deps
            .write(ctx, move |uow| {
                Box::pin(async move {
                    let current = uow.users().lock(id).await?;
                    check_version("user", id, patch.expected_version, current.version)?;
                    if let Some(Some(theme)) = patch.theme_id
                        && let Err(err) = uow.themes().get(theme).await
                    {
                        return Err(match err {
                            avb_core::Error::NotFound { .. } => Error::Invalid(FieldErrors::single(
                                "theme_id",
                                "not_found",
                                "no such theme in this tenant",
                            )),
                            other => other.into(),
                        });
                    }
                    let mut next = current.clone();
                    patch.apply(&mut next);
                    let mut errors = FieldErrors::new();
                    json_size(
                        &mut errors,
                        "preferences",
                        &Value::Object(next.preferences.clone()),
                    );
                    errors.into_result()?;
                    if next == current {
                        return Ok(current);
                    }
                    next.updated_at = now;
                    let saved = uow.users().update(next).await?;
                    let (old, new) = changes(&to_json(&current), &to_json(&saved));
                    uow.append_audit(
                        user_entry(AuditAction::Update, &saved)
                            .description("user profile updated")
                            .values(old, new),
                    )
                    .await?;
                    Ok(saved)
                })
            })
            .await
    }

    /// Replaces a user's roles (audited as `permission_change` with the old and new sets). Taking `admin` away
    /// from the tenant's last active admin is `conflict`; granting `sysadmin` needs a cross-tenant principal.
    pub async fn change_roles(&self, ctx: &Ctx, id: UserId, req: ChangeRolesRequest) -> Result<User> {
        let mut errors = FieldErrors::new();
        let roles = parse_roles(&mut errors, &req.roles);
        errors.into_result()?;
        check_grantable(ctx, &roles)?;
        let tenant = ctx.require_tenant()?;
        let now = self.deps.clock.now();
        self.deps
            .write(ctx, move |uow| {
                Box::pin(async move {
                    uow.tenants().lock(tenant).await?;
                    let current = uow.users().get(id).await?;
                    if current.roles == roles {
                        return Ok(current);
                    }
                    if current.is_active
                        && current.roles.contains(&Role::Admin)
                        && !roles.contains(&Role::Admin)
                    {
                        ensure_other_admin(uow, "remove the admin role from").await?;
                    }
                    let mut next = current.clone();
                    next.roles.clone_from(&roles);
                    next.updated_at = now;
                    let saved = uow.users().update(next).await?;
                    uow.append_audit(
                        user_entry(AuditAction::PermissionChange, &saved)
                            .description("user roles changed")
                            .values(
                                Some(json!({ "roles": current.roles })),
                                Some(json!({ "roles": saved.roles })),
                            ),
                    )
                    .await?;
                    Ok(saved)
                })
            })
            .await
    }

    /// Deactivates a user (`is_active = false`; they can no longer authenticate). Refused with `conflict` for the
    /// caller themself and for the tenant's last active admin; an inactive user is `conflict` (invalid state).
    pub async fn deactivate(&self, ctx: &Ctx, id: UserId) -> Result<User> {
        if matches!(ctx.principal(), Principal::User(u) if u.user_id == id) {
            return Err(Error::Conflict("you cannot deactivate yourself".into()));
        }
        let tenant = ctx.require_tenant()?;
        let now = self.deps.clock.now();
        self.deps
            .write(ctx, move |uow| {
                Box::pin(async move {
                    uow.tenants().lock(tenant).await?;
                    let current = uow.users().get(id).await?;
                    if !current.is_active {
                        return Err(Error::InvalidState {
                            resource: "user",
                            state: "inactive".into(),
                            action: "deactivate",
                        });
                    }
                    if current.roles.contains(&Role::Admin) {
                        ensure_other_admin(uow, "deactivate").await?;
                    }
                    set_active(uow, current, false, now).await
                })
            })
            .await
    }

    /// Reactivates a user; they count against `max_users` again, so the quota is checked (and a suspended or
    /// deleted tenant refuses).
    pub async fn reactivate(&self, ctx: &Ctx, id: UserId) -> Result<User> {
        let tenant = ctx.require_tenant()?;
        let now = self.deps.clock.now();
        self.deps
            .write(ctx, move |uow| {
                Box::pin(async move {
                    let current = uow.users().get(id).await?;
                    if current.is_active {
                        return Err(Error::InvalidState {
                            resource: "user",
                            state: "active".into(),
                            action: "reactivate",
                        });
                    }
                    quota::reserve(uow, tenant, Quota::Users, now).await?;
                    set_active(uow, current, true, now).await
                })
            })
            .await
    }

    /// Finds or creates the user behind an identity-provider login (spec §6.1): by `keycloak_id`, else by e-mail
    /// (linking an invited user at first login), else a new user in the claimed tenant (checked against
    /// `max_users`; roles from the claims, `viewer` when there are none).
    ///
    /// Runs in the context's scope, which the auth layer makes the system scope (the user's tenant is not known
    /// before the user is). A matching user is written only when the e-mail or a non-empty name claim differs,
    /// so an ordinary request does not write. Unlike the spec, a deactivated user is *not* reactivated by
    /// logging in. A user stored in one tenant cannot appear in another by claim (`permission_denied`), and an
    /// e-mail already linked to a different subject is `conflict`.
    ///
    /// [`UserService::sign_in_from_identity`] does the same and also says whether the user joined a tenant.
    pub async fn upsert_from_identity(&self, ctx: &Ctx, claims: IdentityClaims) -> Result<User> {
        Ok(self.sign_in_from_identity(ctx, claims).await?.user)
    }

    /// [`UserService::upsert_from_identity`], reporting when the user joined a tenant, i.e. was created in the
    /// claimed tenant. That insert enqueues a [`kinds::PERMISSIONS_SYNC_USER`] job with the [`TenantJoin`] in the
    /// same unit of work, so the user's role relationships are durably owed. Existing users are never reported:
    /// invited ones had their roles granted by the users API when invited, and later role changes go through it
    /// too.
    pub async fn sign_in_from_identity(&self, ctx: &Ctx, claims: IdentityClaims) -> Result<IdentitySignIn> {
        let claims = ValidClaims::from_claims(claims)?;
        let lookup = claims.clone();
        let found = self
            .deps
            .read(ctx, move |uow| {
                Box::pin(async move { find_identity(uow, &lookup).await })
            })
            .await?;
        let now = self.deps.clock.now();
        match found {
            Some(user) => {
                let next = claims.applied_to(&user)?;
                if next == user {
                    return Ok(IdentitySignIn { user, joined: None });
                }
                self.deps
                    .write(ctx, move |uow| {
                        Box::pin(async move {
                            let current = uow.users().lock(user.id).await?;
                            let mut next = claims.applied_to(&current)?;
                            if next == current {
                                return Ok(IdentitySignIn {
                                    user: current,
                                    joined: None,
                                });
                            }
                            next.updated_at = now;
                            let email = next.email.clone();
                            let saved = uow.users().update(next).await.map_err(|e| {
                                unique_conflict(e, || format!("e-mail '{email}' is already registered"))
                            })?;
                            let (old, new) = changes(&to_json(&current), &to_json(&saved));
                            uow.append_audit(
                                user_entry(AuditAction::Update, &saved)
                                    .description("user updated from identity provider")
                                    .values(old, new),
                            )
                            .await?;
                            Ok(IdentitySignIn {
                                user: saved,
                                joined: None,
                            })
                        })
                    })
                    .await
            }
            None => {
                let id = UserId::generate(self.deps.ids.as_ref());
                // Counting against `max_users` must see only the claimed tenant's users.
                let scoped = match claims.tenant_id {
                    Some(tenant) => tenant_ctx(ctx, tenant)?,
                    None => ctx.clone(),
                };
                self.deps
                    .write(&scoped, move |uow| {
                        Box::pin(async move {
                            if let Some(tenant) = claims.tenant_id {
                                quota::reserve(uow, tenant, Quota::Users, now).await?;
                            }
                            let user = claims.new_user(id, now);
                            let user = uow.users().insert(user).await.map_err(|e| {
                                unique_conflict(e, || "this identity is already linked to a user".to_owned())
                            })?;
                            uow.append_audit(
                                user_entry(AuditAction::Create, &user)
                                    .description("user created from identity provider")
                                    .values(None, Some(to_json(&user))),
                            )
                            .await?;
                            let joined = owe_relationships(uow, &user).await?;
                            Ok(IdentitySignIn { user, joined })
                        })
                    })
                    .await
            }
        }
    }

    /// Records a successful login: `last_login = now` and a `login` audit record.
    pub async fn record_login(&self, ctx: &Ctx, id: UserId) -> Result<User> {
        let now = self.deps.clock.now();
        self.deps
            .write(ctx, move |uow| {
                Box::pin(async move {
                    let mut user = uow.users().get(id).await?;
                    let previous = user.last_login;
                    user.last_login = Some(now);
                    let saved = uow.users().update(user).await?;
                    let entry = user_entry(AuditAction::Login, &saved)
                        .description("user logged in")
                        .values(
                            Some(json!({ "last_login": previous })),
                            Some(json!({ "last_login": now })),
                        );
                    uow.append_audit(entry).await?;
                    Ok(saved)
                })
            })
            .await
    }
}

/// An audit entry about `user`, filed in the user's tenant chain even when a cross-tenant context acts.
fn user_entry(action: AuditAction, user: &User) -> NewAuditEntry {
    let entry = NewAuditEntry::new(action, "user", user.id);
    match user.tenant_id {
        Some(tenant) => entry.tenant(tenant),
        None => entry,
    }
}

fn own_id(ctx: &Ctx) -> Result<UserId> {
    match ctx.principal() {
        Principal::User(u) => Ok(u.user_id),
        Principal::ApiKey(_) | Principal::System { .. } | Principal::Anonymous => Err(
            Error::PermissionDenied("only a signed-in user has an own profile".into()),
        ),
    }
}

/// `sysadmin` is a platform role: only a cross-tenant principal (a sysadmin or the system) may grant it.
fn check_grantable(ctx: &Ctx, roles: &BTreeSet<Role>) -> Result<()> {
    if roles.contains(&Role::Sysadmin) && !ctx.principal().is_cross_tenant() {
        return Err(Error::PermissionDenied(
            "only a platform administrator can grant the sysadmin role".into(),
        ));
    }
    Ok(())
}

fn parse_roles(errors: &mut FieldErrors, names: &[String]) -> BTreeSet<Role> {
    if names.is_empty() {
        errors.push("roles", "required", "at least one role is required");
    }
    let mut roles = BTreeSet::new();
    for (i, name) in names.iter().enumerate() {
        match Role::parse(name) {
            Some(role) => {
                roles.insert(role);
            }
            None => errors.push(
                format!("roles[{i}]"),
                "choice",
                "must be one of: sysadmin, admin, developer, operator, viewer, billing",
            ),
        }
    }
    roles
}

/// Refuses when the unit of work's tenant has at most one active admin (the one being changed).
async fn ensure_other_admin(uow: &mut dyn UnitOfWork, action: &str) -> Result<()> {
    let admins = uow
        .users()
        .count(&UserFilter {
            role: Some(Role::Admin),
            is_active: Some(true),
            ..Default::default()
        })
        .await?;
    if admins <= 1 {
        return Err(Error::Conflict(format!(
            "cannot {action} the tenant's last active admin"
        )));
    }
    Ok(())
}

async fn set_active(
    uow: &mut dyn UnitOfWork,
    current: User,
    active: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<User> {
    let mut next = current.clone();
    next.is_active = active;
    next.updated_at = now;
    let saved = uow.users().update(next).await?;
    uow.append_audit(
        user_entry(AuditAction::Update, &saved)
            .description(if active {
                "user reactivated"
            } else {
                "user deactivated"
            })
            .values(
                Some(json!({ "is_active": current.is_active })),
                Some(json!({ "is_active": saved.is_active })),
            ),
    )
    .await?;
    Ok(saved)
}

async fn find_identity(uow: &mut dyn UnitOfWork, claims: &ValidClaims) -> Result<Option<User>> {
    let one = PageRequest::default();
    let by_subject = UserFilter {
        keycloak_id: Some(claims.keycloak_id.clone()),
        ..Default::default()
    };
    if let Some(user) = uow.users().list(&by_subject, one).await?.items.into_iter().next() {
        return Ok(Some(user));
    }
    let by_email = UserFilter {
        email: Some(claims.email.clone()),
        ..Default::default()
    };
    Ok(uow.users().list(&by_email, one).await?.items.into_iter().next())
}

/// Records, in the caller's unit of work, that `user` (just created in its tenant) is owed its role
/// relationships: enqueues [`kinds::PERMISSIONS_SYNC_USER`] and returns its payload. A user without a tenant (or
/// an inactive one) is owed nothing.
async fn owe_relationships(uow: &mut dyn UnitOfWork, user: &User) -> Result<Option<TenantJoin>> {
    let Some(tenant) = user.tenant_id else {
        return Ok(None);
    };
    if !user.is_active {
        return Ok(None);
    }
    let join = TenantJoin {
        tenant_id: tenant,
        user_id: user.id,
        roles: user.roles.clone(),
    };
    uow.enqueue_job(NewJob::new(
        kinds::PERMISSIONS_SYNC_USER,
        Some(tenant),
        to_json(&join),
    ))
    .await?;
    Ok(Some(join))
}

// ---------------------------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct ValidClaims {
    keycloak_id: String,
    email: String,
    first_name: String,
    last_name: String,
    tenant_id: Option<TenantId>,
    roles: BTreeSet<Role>,
}

impl ValidClaims {
    fn from_claims(c: IdentityClaims) -> Result<Self> {
        let mut errors = FieldErrors::new();
        validation::text(&mut errors, "keycloak_id", &c.keycloak_id, 1, 255);
        validation::email(&mut errors, "email", &c.email);
        errors.into_result()?;
        // The provider is trusted but our columns are bounded (spec §9.1): cut rather than refuse a login.
        let cut = |s: &str| {
            s.trim()
                .chars()
                .filter(|c| !c.is_control())
                .take(MAX_NAME)
                .collect::<String>()
        };
        Ok(Self {
            keycloak_id: c.keycloak_id,
            email: c.email.to_lowercase(),
            first_name: cut(&c.first_name),
            last_name: cut(&c.last_name),
            tenant_id: c.tenant_id,
            roles: c.roles,
        })
    }

    /// The user as these claims would leave it (without touching bookkeeping fields).
    fn applied_to(&self, user: &User) -> Result<User> {
        if let (Some(claimed), Some(stored)) = (self.tenant_id, user.tenant_id)
            && claimed != stored
        {
            return Err(Error::PermissionDenied(
                "this identity belongs to another tenant".into(),
            ));
        }
        if user.keycloak_id.as_deref().is_some_and(|k| k != self.keycloak_id) {
            return Err(Error::Conflict(
                "this e-mail is linked to another identity".into(),
            ));
        }
        let mut next = user.clone();
        next.keycloak_id = Some(self.keycloak_id.clone());
        next.email.clone_from(&self.email);
        if !self.first_name.is_empty() {
            next.first_name.clone_from(&self.first_name);
        }
        if !self.last_name.is_empty() {
            next.last_name.clone_from(&self.last_name);
        }
        if next.tenant_id.is_none() {
            next.tenant_id = self.tenant_id;
        }
        Ok(next)
    }

    fn new_user(&self, id: UserId, now: chrono::DateTime<chrono::Utc>) -> User {
        let roles = if self.roles.is_empty() {
            BTreeSet::from([Role::Viewer])
        } else {
            self.roles.clone()
        };
        User {
            id,
            tenant_id: self.tenant_id,
            keycloak_id: Some(self.keycloak_id.clone()),
            email: self.email.clone(),
            first_name: self.first_name.clone(),
            last_name: self.last_name.clone(),
            roles,
            is_active: true,
            is_staff: false,
            date_joined: now,
            last_login: None,
            preferences: Map::new(),
            profile: UserProfile::default(),
            created_at: now,
            updated_at: now,
            version: 0,
        }
    }
}

struct ValidProfilePatch {
    req: UpdateProfileRequest,
    preferences: Option<Map<String, Value>>,
    theme_id: Option<Option<ThemeId>>,
    expected_version: Option<u64>,
}

impl ValidProfilePatch {
    fn from_request(req: &UpdateProfileRequest) -> Result<Self> {
        let mut errors = FieldErrors::new();
        if let Some(v) = &req.first_name {
            validation::text(&mut errors, "first_name", v, 0, MAX_NAME);
        }
        if let Some(v) = &req.last_name {
            validation::text(&mut errors, "last_name", v, 0, MAX_NAME);
        }
        if let Some(v) = &req.avatar_url {
            validation::optional_url(&mut errors, "avatar_url", v);
        }
        if let Some(v) = &req.timezone
            && validation::length(&mut errors, "timezone", v, 1, 50)
            && !v
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+'))
        {
            errors.push(
                "timezone",
                "format",
                "must be an IANA time zone name such as Europe/Paris",
            );
        }
        if let Some(v) = &req.locale
            && validation::length(&mut errors, "locale", v, 2, 10)
            && !is_locale(v)
        {
            errors.push("locale", "format", "must be a locale such as en or pt-BR");
        }
        if let Some(categories) = &req.muted_categories {
            if categories.len() > MAX_MUTED_CATEGORIES {
                errors.push(
                    "muted_categories",
                    "length",
                    format!("must have at most {MAX_MUTED_CATEGORIES} entries"),
                );
            } else {
                for (i, c) in categories.iter().enumerate() {
                    let field = format!("muted_categories[{i}]");
                    if validation::length(&mut errors, &field, c, 1, 50)
                        && !c
                            .chars()
                            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "_.-".contains(ch))
                    {
                        errors.push(field, "format", "must contain only a-z, 0-9, '_', '.' and '-'");
                    }
                }
            }
        }
        let preferences = req.preferences.as_ref().and_then(|p| match p {
            Value::Object(map) => Some(map.clone()),
            _ => {
                errors.push("preferences", "type", "must be a JSON object");
                None
            }
        });
        errors.into_result()?;
        Ok(Self {
            req: req.clone(),
            preferences,
            theme_id: req.theme_id,
            expected_version: req.expected_version,
        })
    }

    fn apply(&self, user: &mut User) {
        let r = &self.req;
        if let Some(v) = &r.first_name {
            user.first_name.clone_from(v);
        }
        if let Some(v) = &r.last_name {
            user.last_name.clone_from(v);
        }
        let p = &mut user.profile;
        if let Some(v) = &r.avatar_url {
            p.avatar_url.clone_from(v);
        }
        if let Some(v) = &r.timezone {
            p.timezone.clone_from(v);
        }
        if let Some(v) = &r.locale {
            p.locale.clone_from(v);
        }
        if let Some(v) = r.email_notifications {
            p.email_notifications = v;
        }
        if let Some(v) = r.push_notifications {
            p.push_notifications = v;
        }
        if let Some(v) = &r.muted_categories {
            p.muted_categories = v.iter().cloned().collect();
        }
        if let Some(theme) = self.theme_id {
            p.theme_id = theme;
        }
        if let Some(patch) = &self.preferences {
            merge_patch(&mut user.preferences, patch);
        }
    }
}

/// `ll`, `lll` or either followed by `-`/`_` subtags of 2–8 alphanumerics (`en`, `pt-BR`, `zh-Hant-TW`).
fn is_locale(value: &str) -> bool {
    let mut parts = value.split(['-', '_']);
    let lang_ok = parts
        .next()
        .is_some_and(|l| (2..=3).contains(&l.len()) && l.chars().all(|c| c.is_ascii_alphabetic()));
    lang_ok && parts.all(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use avb_core::{HasCode, RequestId, SequentialIds, UserPrincipal};

    fn field_names(err: &Error) -> Vec<String> {
        match err {
            Error::Invalid(fields) => fields.0.iter().map(|f| f.field.clone()).collect(),
            other => panic!("expected validation error, got {other:?}"),
        }
    }

    #[test]
    fn roles_must_be_known_and_non_empty() {
        let mut e = FieldErrors::new();
        assert!(parse_roles(&mut e, &[]).is_empty());
        let roles = parse_roles(
            &mut e,
            &["admin".into(), "root".into(), "viewer".into(), "admin".into()],
        );
        assert_eq!(roles, BTreeSet::from([Role::Admin, Role::Viewer]));
        let fields: Vec<_> = e.0.iter().map(|f| (f.field.as_str(), f.code.as_ref())).collect();
        assert_eq!(fields, [("roles", "required"), ("roles[1]", "choice")]);
    }

    #[test]
    fn only_cross_tenant_principals_grant_sysadmin() {
        let ids = SequentialIds::default();
        let admin = Principal::User(UserPrincipal {
            user_id: UserId::generate(&ids),
            tenant_id: Some(TenantId::generate(&ids)),
            email: "a@x.example".into(),
            roles: BTreeSet::from([Role::Admin]),
            external_id: None,
        });
        let tenant_admin = Ctx::new(RequestId::generate(&ids), admin);
        let system = Ctx::system(RequestId::generate(&ids), "test", None);
        let sys_roles = BTreeSet::from([Role::Sysadmin]);
        assert_eq!(
            check_grantable(&tenant_admin, &sys_roles)
                .err()
                .unwrap()
                .code()
                .as_str(),
            "permission_denied"
        );
        assert!(check_grantable(&tenant_admin, &BTreeSet::from([Role::Admin])).is_ok());
        assert!(check_grantable(&system, &sys_roles).is_ok());
    }

    #[test]
    fn profile_patch_reports_every_bad_field() {
        let req = UpdateProfileRequest {
            first_name: Some("x".repeat(151)),
            avatar_url: Some("data:image/png;base64,AAAA".into()),
            timezone: Some("Europe/Paris; DROP".into()),
            locale: Some("english-please".into()),
            muted_categories: Some(vec!["billing".into(), "Sessions!".into()]),
            preferences: Some(json!("dark")),
            ..Default::default()
        };
        let err = ValidProfilePatch::from_request(&req).err().unwrap();
        assert_eq!(
            field_names(&err),
            [
                "first_name",
                "avatar_url",
                "timezone",
                "locale",
                "muted_categories[1]",
                "preferences"
            ]
        );
    }

    #[test]
    fn locales_follow_language_and_subtag_shape() {
        for ok in ["en", "pt-BR", "zh-Hant-TW", "de_CH"] {
            assert!(is_locale(ok), "{ok}");
        }
        for bad in ["e", "english", "en-", "en-B", "1n"] {
            assert!(!is_locale(bad), "{bad}");
        }
    }

    #[test]
    fn theme_id_distinguishes_absent_from_null() {
        let absent: UpdateProfileRequest = serde_json::from_value(json!({})).unwrap();
        assert_eq!(absent.theme_id, None);
        let null: UpdateProfileRequest = serde_json::from_value(json!({ "theme_id": null })).unwrap();
        assert_eq!(null.theme_id, Some(None));
    }

    #[test]
    fn claims_refuse_tenant_hopping_and_foreign_subjects_and_keep_names_when_absent() {
        let ids = SequentialIds::default();
        let now = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let (a, b) = (TenantId::generate(&ids), TenantId::generate(&ids));
        let claims = ValidClaims::from_claims(IdentityClaims {
            keycloak_id: "sub-1".into(),
            email: "Ada@X.Example".into(),
            first_name: String::new(),
            last_name: "L".repeat(200),
            tenant_id: Some(a),
            roles: BTreeSet::new(),
        })
        .unwrap();
        let mut user = claims.new_user(UserId::generate(&ids), now);
        assert_eq!(user.roles, BTreeSet::from([Role::Viewer]));
        assert_eq!(user.email, "ada@x.example");
        assert_eq!(user.last_name.chars().count(), MAX_NAME);
        user.first_name = "Ada".into();
        assert_eq!(claims.applied_to(&user).unwrap().first_name, "Ada");
        user.tenant_id = Some(b);
        assert_eq!(
            claims.applied_to(&user).err().unwrap().code().as_str(),
            "permission_denied"
        );
        user.tenant_id = Some(a);
        user.keycloak_id = Some("sub-2".into());
        assert_eq!(
            claims.applied_to(&user).err().unwrap().code().as_str(),
            "conflict"
        );
    }
}
