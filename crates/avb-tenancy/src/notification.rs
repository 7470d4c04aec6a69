//! In-app notifications for users, and each user's notification preferences (spec §9.1 `UserProfile`:
//! `email_notifications`, `push_notifications`, muted categories).
//!
//! Reading and marking notifications is always about the calling user (the context's user principal): a user
//! never sees or changes another user's notifications — they answer `not_found`.

use crate::audit::snapshot;
use crate::error::{Error, Result};
use crate::model::Notification;
use crate::service::TenancyDeps;
use crate::store::NotificationFilter;
use crate::validation;
use avb_core::audit::{AuditAction, NewAuditEntry};
use avb_core::{Ctx, FieldErrors, NotificationId, Page, PageRequest, Principal, UserId};
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::LazyLock;

#[allow(clippy::expect_used)] // constant pattern, exercised by the tests below
static CATEGORY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9][a-z0-9_.-]{0,49}$").expect("valid regex"));

/// Largest `data` payload, serialised.
pub const MAX_DATA_BYTES: usize = 16 * 1024;
/// Most categories a user may mute.
pub const MAX_MUTED_CATEGORIES: usize = 50;
/// Notifications marked read per page while marking all.
const MARK_ALL_BATCH: u32 = 100;

/// A notification to deliver.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct NotifyRequest {
    /// Recipient, a user of the tenant.
    pub user_id: Option<UserId>,
    /// `system`, `billing`, `session`, …: 1–50 of `a-z 0-9 _ . -`, starting with a letter or digit.
    pub category: String,
    /// 1–200 characters.
    pub title: String,
    /// ≤ 5000 characters.
    pub body: String,
    /// Extra data for the client, ≤ 16 KiB serialised.
    pub data: Value,
}

/// Which of the caller's notifications to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct NotificationQuery {
    /// Only unread ones.
    pub unread_only: bool,
    /// Only this category.
    pub category: Option<String>,
}

/// A user's notification preferences.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationPreferences {
    /// Send e-mails.
    pub email_notifications: bool,
    /// Send push notifications.
    pub push_notifications: bool,
    /// Categories never delivered.
    pub muted_categories: BTreeSet<String>,
}

/// A partial change of preferences; `muted_categories` replaces the whole set.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct UpdatePreferencesRequest {
    /// Send e-mails.
    pub email_notifications: Option<bool>,
    /// Send push notifications.
    pub push_notifications: Option<bool>,
    /// Categories to mute (at most 50).
    #[cfg_attr(feature = "openapi", schema(max_items = 50))]
    pub muted_categories: Option<BTreeSet<String>>,
}

/// Notifications and notification preferences.
#[derive(Debug, Clone)]
pub struct NotificationService {
    deps: TenancyDeps,
}

impl NotificationService {
    /// A service over `deps`.
    pub fn new(deps: TenancyDeps) -> Self {
        Self { deps }
    }

    /// Delivers a notification to a user of the context's scope, unless the user muted its category: then
    /// nothing is written and `None` is returned. An unknown recipient is `not_found`.
    pub async fn notify(&self, ctx: &Ctx, req: NotifyRequest) -> Result<Option<Notification>> {
        let mut errors = FieldErrors::new();
        if req.user_id.is_none() {
            errors.push("user_id", "required", "a recipient is required");
        }
        category(&mut errors, "category", &req.category);
        validation::text(&mut errors, "title", &req.title, 1, 200);
        validation::text(&mut errors, "body", &req.body, 0, 5000);
        if serde_json::to_vec(&req.data)
            .map(|v| v.len())
            .unwrap_or(usize::MAX)
            > MAX_DATA_BYTES
        {
            errors.push(
                "data",
                "size",
                format!("must be at most {MAX_DATA_BYTES} bytes when serialised"),
            );
        }
        errors.into_result()?;
        let Some(user_id) = req.user_id else {
            return Err(FieldErrors::single("user_id", "required", "a recipient is required").into());
        };
        let now = self.deps.clock.now();
        let id = NotificationId::generate(self.deps.ids.as_ref());
        self.deps
            .write(ctx, move |uow| {
                Box::pin(async move {
                    let user = uow.users().get(user_id).await?;
                    if user.profile.muted_categories.contains(&req.category) {
                        return Ok(None);
                    }
                    let Some(tenant_id) = user.tenant_id else {
                        return Err(Error::NotFound {
                            resource: UserId::RESOURCE,
                            id: user_id.to_string(),
                        });
                    };
                    let notification = Notification {
                        id,
                        tenant_id,
                        user_id,
                        category: req.category,
                        title: req.title,
                        body: req.body,
                        data: req.data,
                        read_at: None,
                        created_at: now,
                        version: 0,
                    };
                    let stored = uow.notifications().insert(notification).await?;
                    uow.append_audit(
                        NewAuditEntry::new(AuditAction::Create, NotificationId::RESOURCE, stored.id)
                            .values(None, Some(snapshot(&stored, &["body", "data"])))
                            .tenant(tenant_id),
                    )
                    .await?;
                    Ok(Some(stored))
                })
            })
            .await
    }

    /// The calling user's notifications, newest first.
    pub async fn list(
        &self,
        ctx: &Ctx,
        query: NotificationQuery,
        page: PageRequest,
    ) -> Result<Page<Notification>> {
        let user = current_user(ctx)?;
        if let Some(c) = &query.category {
            let mut errors = FieldErrors::new();
            category(&mut errors, "category", c);
            errors.into_result()?;
        }
        let filter = NotificationFilter {
            user_id: Some(user),
            unread_only: Some(query.unread_only),
            category: query.category,
        };
        self.deps
            .read(ctx, move |uow| {
                Box::pin(async move { Ok(uow.notifications().list(&filter, page).await?) })
            })
            .await
    }

    /// Marks one of the caller's notifications read. Idempotent: an already read notification is returned
    /// unchanged, without a write.
    pub async fn mark_read(&self, ctx: &Ctx, id: NotificationId) -> Result<Notification> {
        let user = current_user(ctx)?;
        let now = self.deps.clock.now();
        self.deps
            .write(ctx, move |uow| {
                Box::pin(async move {
                    let found = uow.notifications().lock(id).await?;
                    if found.user_id != user {
                        return Err(Error::NotFound {
                            resource: NotificationId::RESOURCE,
                            id: id.to_string(),
                        });
                    }
                    if found.read_at.is_some() {
                        return Ok(found);
                    }
                    let mut read = found;
                    read.read_at = Some(now);
                    let stored = uow.notifications().update(read).await?;
                    uow.append_audit(
                        NewAuditEntry::new(AuditAction::Update, NotificationId::RESOURCE, stored.id)
                            .description("notification read")
                            .values(
                                Some(json!({ "read_at": null })),
                                Some(json!({ "read_at": stored.read_at })),
                            )
                            .tenant(stored.tenant_id),
                    )
                    .await?;
                    Ok(stored)
                })
            })
            .await
    }

    /// Marks every unread notification of the caller read, in one unit of work; returns how many changed.
    pub async fn mark_all_read(&self, ctx: &Ctx) -> Result<u64> {
        let user = current_user(ctx)?;
        let now = self.deps.clock.now();
        self.deps
            .write(ctx, move |uow| {
                Box::pin(async move {
                    let filter = NotificationFilter {
                        user_id: Some(user),
                        unread_only: Some(true),
                        ..Default::default()
                    };
                    let mut marked = 0u64;
                    let mut tenant = None;
                    loop {
                        // Marked ones leave the filter, so the first page is always the next batch.
                        let page = PageRequest::new(Some(MARK_ALL_BATCH), None)?;
                        let batch = uow.notifications().list(&filter, page).await?.items;
                        if batch.is_empty() {
                            break;
                        }
                        for mut n in batch {
                            tenant = Some(n.tenant_id);
                            n.read_at = Some(now);
                            uow.notifications().update(n).await?;
                            marked += 1;
                        }
                    }
                    if let Some(tenant) = tenant {
                        uow.append_audit(
                            NewAuditEntry::new(AuditAction::Update, NotificationId::RESOURCE, "")
                                .description("all notifications read")
                                .metadata(json!({ "user_id": user, "count": marked }))
                                .tenant(tenant),
                        )
                        .await?;
                    }
                    Ok(marked)
                })
            })
            .await
    }

    /// The caller's preferences.
    pub async fn preferences(&self, ctx: &Ctx) -> Result<NotificationPreferences> {
        let user = current_user(ctx)?;
        self.deps
            .read(ctx, move |uow| {
                Box::pin(async move { Ok(preferences_of(&uow.users().get(user).await?)) })
            })
            .await
    }

    /// Changes the caller's preferences.
    pub async fn update_preferences(
        &self,
        ctx: &Ctx,
        req: UpdatePreferencesRequest,
    ) -> Result<NotificationPreferences> {
        let user = current_user(ctx)?;
        let mut errors = FieldErrors::new();
        if let Some(muted) = &req.muted_categories {
            if muted.len() > MAX_MUTED_CATEGORIES {
                errors.push(
                    "muted_categories",
                    "size",
                    format!("at most {MAX_MUTED_CATEGORIES} categories"),
                );
            }
            for c in muted {
                category(&mut errors, &format!("muted_categories.{c}"), c);
            }
        }
        errors.into_result()?;
        let now = self.deps.clock.now();
        self.deps
            .write(ctx, move |uow| {
                Box::pin(async move {
                    let old = uow.users().lock(user).await?;
                    let mut new = old.clone();
                    if let Some(v) = req.email_notifications {
                        new.profile.email_notifications = v;
                    }
                    if let Some(v) = req.push_notifications {
                        new.profile.push_notifications = v;
                    }
                    if let Some(v) = req.muted_categories {
                        new.profile.muted_categories = v;
                    }
                    new.updated_at = now;
                    let stored = uow.users().update(new).await?;
                    let (before, after) = (preferences_of(&old), preferences_of(&stored));
                    let mut entry = NewAuditEntry::new(AuditAction::SettingsChange, UserId::RESOURCE, user)
                        .description("notification preferences changed")
                        .values(Some(snapshot(&before, &[])), Some(snapshot(&after, &[])));
                    if let Some(tenant) = stored.tenant_id {
                        entry = entry.tenant(tenant);
                    }
                    uow.append_audit(entry).await?;
                    Ok(after)
                })
            })
            .await
    }
}

/// The calling user. Notifications belong to people: API keys and the system have no inbox.
fn current_user(ctx: &Ctx) -> Result<UserId> {
    match ctx.principal() {
        Principal::User(u) => Ok(u.user_id),
        Principal::ApiKey(_) | Principal::System { .. } | Principal::Anonymous => Err(
            Error::PermissionDenied("notifications belong to a signed-in user".into()),
        ),
    }
}

fn preferences_of(user: &crate::model::User) -> NotificationPreferences {
    NotificationPreferences {
        email_notifications: user.profile.email_notifications,
        push_notifications: user.profile.push_notifications,
        muted_categories: user.profile.muted_categories.clone(),
    }
}

fn category(errors: &mut FieldErrors, field: &str, value: &str) -> bool {
    if !CATEGORY.is_match(value) {
        errors.push(
            field,
            "pattern",
            "must be 1–50 characters of a-z, 0-9, '_', '.', '-'",
        );
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories() {
        let mut e = FieldErrors::new();
        for ok in [
            "system",
            "billing",
            "session.ended",
            "a",
            "x_1-2",
            &"a".repeat(50),
        ] {
            assert!(category(&mut e, "c", ok), "{ok}");
        }
        for bad in ["", "System", "-x", "has space", &"a".repeat(51), "émoji"] {
            assert!(!category(&mut e, "c", bad), "{bad}");
        }
    }

    #[test]
    fn only_users_have_an_inbox() {
        let ids = avb_core::SequentialIds::default();
        let ctx = Ctx::system(avb_core::RequestId::generate(&ids), "job", None);
        let err = current_user(&ctx).unwrap_err();
        assert_eq!(
            avb_core::HasCode::code(&err),
            avb_core::ErrorCode::PermissionDenied
        );
    }
}
