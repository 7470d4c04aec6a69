//! Operations: one async function per route, over the app, the context and the input. Each guards, calls a
//! service and shapes the reply; validation and domain rules live in the services.
//!
//! # Authorization pattern
//! Every operation on one record first **reads it through the tenant-scoped service** (another tenant's id is
//! simply absent: `not_found`), then asks the guard for the permission on that record (spec §6.4), then acts.
//! So a caller learns that a record exists only if it is in their own tenant; `permission_denied` is answered
//! only about records they could see anyway. Creations are guarded by the tenant permission the schema names
//! (`create_project`, `create_api_key`, …) and then write the new record's relationships
//! ([`crate::permissions::apply`]) so the creator can use it in the next request.
//!
//! Lists of records whose `view` permission can come from something other than the tenant (an owner relation)
//! are filtered per record with `visible_page`; lists whose permission comes from the tenant alone (sessions,
//! users, wake words, audit) check that tenant permission once.

pub mod admin;
pub mod api_keys;
pub mod audit;
pub mod billing;
pub mod docs;
pub mod health;
pub mod notifications;
pub mod projects;
pub mod realtime;
pub mod sessions;
pub mod tenants;
pub mod themes;
pub mod users;
pub mod voice;

use crate::app::App;
use crate::error::ApiError;
use avb_auth::authorizer::guard::{self, GuardedResource};
use avb_auth::authorizer::{Consistency, LookupResourcesRequest, ObjectRef, SubjectRef};
use avb_core::{Ctx, FieldErrors, Page, PageRequest, Principal, TenantId};
use std::collections::HashSet;
use std::future::Future;

/// Requires `permission` on the context's tenant (spec §6.4 tenant permissions).
pub(crate) async fn require_tenant_permission(
    app: &App,
    ctx: &Ctx,
    permission: &str,
) -> Result<(), ApiError> {
    let resource = GuardedResource::current_tenant(ctx)?;
    guard::require_permission(app.inner().authorizer.as_ref(), ctx, &resource, permission).await?;
    Ok(())
}

/// Requires `permission` on `object`, owned by `tenant`. Call it only after reading the record through the
/// tenant-scoped service, so that existence never leaks.
pub(crate) async fn require(
    app: &App,
    ctx: &Ctx,
    object: impl Into<ObjectRef>,
    tenant: TenantId,
    permission: &str,
) -> Result<(), ApiError> {
    let resource = GuardedResource::owned(object, tenant);
    guard::require_permission(app.inner().authorizer.as_ref(), ctx, &resource, permission).await?;
    Ok(())
}

/// The page `page` of the records the caller holds `permission` on, among those `fetch` lists (already scoped to
/// the tenant by the service), in the service's order, with the total of visible records.
///
/// Users are resolved with one `lookup_resources` call (the ids of `resource_type` they may access); API keys
/// and the system are decided per record by the guard, which for them needs no authorizer round trip. The
/// tenant's records are read in pages of [`PageRequest::MAX_LIMIT`]; tier quotas keep these lists short.
pub(crate) async fn visible_page<T, F, Fut>(
    app: &App,
    ctx: &Ctx,
    resource_type: &str,
    permission: &str,
    page: PageRequest,
    object_of: impl Fn(&T) -> (ObjectRef, TenantId),
    mut fetch: F,
) -> Result<Page<T>, ApiError>
where
    T: Clone,
    F: FnMut(PageRequest) -> Fut,
    Fut: Future<Output = Result<Page<T>, ApiError>>,
{
    let authz = app.inner().authorizer.as_ref();
    let allowed: Option<HashSet<String>> = match ctx.principal() {
        Principal::User(user) => {
            let request = LookupResourcesRequest {
                resource_type: resource_type.to_owned(),
                permission: permission.to_owned(),
                subject: SubjectRef::user(user.user_id),
            };
            Some(
                authz
                    .lookup_resources(ctx, &request, &Consistency::MinimizeLatency)
                    .await?
                    .into_iter()
                    .collect(),
            )
        }
        Principal::ApiKey(_) | Principal::System { .. } | Principal::Anonymous => None,
    };
    let mut visible = Vec::new();
    let mut offset = 0u64;
    loop {
        let batch = fetch(PageRequest::new(Some(PageRequest::MAX_LIMIT), Some(offset))?).await?;
        let read = batch.items.len() as u64;
        for item in batch.items {
            let (object, tenant) = object_of(&item);
            let ok = match &allowed {
                Some(ids) => ids.contains(&object.object_id),
                None => {
                    let resource = GuardedResource::owned(object, tenant);
                    match guard::require_permission(authz, ctx, &resource, permission).await {
                        Ok(()) => true,
                        Err(avb_auth::Error::PermissionDenied { .. } | avb_auth::Error::NotFound { .. }) => {
                            false
                        }
                        Err(other) => return Err(other.into()),
                    }
                }
            };
            if ok {
                visible.push(item);
            }
        }
        offset = offset.saturating_add(read);
        if read == 0 || offset >= batch.total {
            break;
        }
    }
    Ok(page.slice(&visible))
}

/// Parses an optional enumeration value from a query, recording an error naming the accepted values.
pub(crate) fn parse_choice<T: Copy>(
    errors: &mut FieldErrors,
    field: &str,
    value: Option<&str>,
    all: &[T],
    name: fn(T) -> &'static str,
) -> Option<T> {
    let value = value?;
    let found = all.iter().copied().find(|v| name(*v) == value);
    if found.is_none() {
        let names: Vec<&str> = all.iter().map(|v| name(*v)).collect();
        errors.push(field, "choice", format!("must be one of: {}", names.join(", ")));
    }
    found
}
