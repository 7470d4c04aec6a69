//! Checks of the data rules: scopes, unique keys, references, immutable tenants, delete cascades, filters.

use super::fixtures::{self, Fixture};
use super::{
    CheckResult, Step, StoreUnderTest, admin, begin, count, create_tenant, delete, ensure, ensure_err, get,
    ids, insert, list, member, page, tenantless, update,
};
use crate::model::{
    ApiKey, Notification, Persona, Project, Session, SessionEvent, Tenant, Theme, User, WakeWord,
};
use crate::store::{
    Access, ApiKeyFilter, ProjectFilter, SessionEventFilter, SessionFilter, TenantFilter, UserFilter,
};
use avb_core::{ApiKeyId, Clock, Error as StoreError, ProjectId, SessionId, SystemClock, TenantId, UserId};

fn random<T: From<uuid::Uuid>>() -> T {
    uuid::Uuid::now_v7().into()
}

/// `begin` for a context that has no tenant and may not act across tenants is `tenant_required`.
pub async fn begin_requires_a_tenant_scope(s: StoreUnderTest) -> CheckResult {
    for access in [Access::ReadOnly, Access::ReadWrite] {
        ensure_err!(
            s.store.begin(&tenantless(), access).await,
            StoreError::TenantRequired,
            "begin {access:?}"
        );
    }
    Ok(())
}

/// Tenant rows follow the same version rules as every record, and their slug is unique.
pub async fn tenants_round_trip_with_versions(s: StoreUnderTest) -> CheckResult {
    let tenant = create_tenant(&s).await?;
    ensure!(tenant.version == 1, "a new tenant has version {}", tenant.version);
    let read: Tenant = get(&s, &member(tenant.id), tenant.id)
        .await
        .step("get own tenant")?;
    ensure!(read == tenant, "a tenant reads back as {read:?}");
    let mut renamed = tenant.clone();
    renamed.name = "Renamed".into();
    let updated = update(&s, &admin(), renamed).await.step("rename")?;
    ensure!(
        updated.version == 2 && updated.name == "Renamed",
        "rename returned {updated:?}"
    );
    ensure_err!(
        update(&s, &admin(), tenant.clone()).await,
        StoreError::VersionConflict {
            expected: 1,
            actual: 2,
            ..
        },
        "stale tenant update"
    );
    let mut twin = fixtures::tenant();
    twin.slug = tenant.slug.clone();
    ensure_err!(
        insert(&s, &admin(), twin).await,
        StoreError::Conflict { .. },
        "duplicate slug"
    );
    ensure_err!(
        insert(&s, &member(tenant.id), fixtures::tenant()).await,
        StoreError::NotFound { .. },
        "a tenant member creating another tenant"
    );
    delete::<Tenant>(&s, &admin(), tenant.id)
        .await
        .step("delete an unreferenced tenant")?;
    ensure_err!(
        get::<Tenant>(&s, &admin(), tenant.id).await,
        StoreError::NotFound { .. },
        "deleted tenant"
    );
    Ok(())
}

/// In a tenant scope the tenant table holds exactly that tenant; the all-tenants scope holds every tenant.
pub async fn a_tenant_scope_sees_only_its_own_tenant(s: StoreUnderTest) -> CheckResult {
    let (a, b) = (create_tenant(&s).await?, create_tenant(&s).await?);
    let ctx = member(a.id);
    ensure_err!(
        get::<Tenant>(&s, &ctx, b.id).await,
        StoreError::NotFound { .. },
        "a reading tenant b"
    );
    let listed = list::<Tenant>(&s, &ctx, &TenantFilter::default(), page(100, 0)?)
        .await
        .step("list")?;
    ensure!(
        listed.total == 1 && ids(&listed.items) == vec![a.id],
        "a lists tenants {:?}",
        ids(&listed.items)
    );
    let counted = count::<Tenant>(&s, &ctx, &TenantFilter::default())
        .await
        .step("count")?;
    ensure!(counted == 1, "a counts {counted} tenants");
    let mut renamed = b.clone();
    renamed.name = "Taken over".into();
    ensure_err!(
        update(&s, &ctx, renamed).await,
        StoreError::NotFound { .. },
        "a renaming tenant b"
    );
    for tenant in [&a, &b] {
        let by_slug = TenantFilter {
            slug: Some(tenant.slug.clone()),
            ..Default::default()
        };
        let found = list::<Tenant>(&s, &admin(), &by_slug, page(10, 0)?)
            .await
            .step("list across tenants")?;
        ensure!(
            ids(&found.items).contains(&tenant.id),
            "the all-tenants scope misses tenant {}",
            tenant.slug
        );
    }
    Ok(())
}

/// A platform row (a user without tenant) is visible only in the all-tenants scope, and a tenant scope can
/// neither create, change nor delete one.
pub async fn platform_rows_are_visible_only_across_tenants(s: StoreUnderTest) -> CheckResult {
    let tenant = create_tenant(&s).await?;
    let ctx = member(tenant.id);
    let operator = insert(&s, &admin(), fixtures::user(None, 1))
        .await
        .step("insert platform user")?;
    let by_email = UserFilter {
        email: Some(operator.email.clone()),
        ..Default::default()
    };

    ensure_err!(
        get::<User>(&s, &ctx, operator.id).await,
        StoreError::NotFound { .. },
        "tenant reading operator"
    );
    let listed = list::<User>(&s, &ctx, &by_email, page(10, 0)?)
        .await
        .step("list as tenant")?;
    ensure!(
        listed.items.is_empty() && listed.total == 0,
        "a tenant lists the platform user"
    );
    ensure!(
        count::<User>(&s, &ctx, &by_email).await.step("count")? == 0,
        "a tenant counts the platform user"
    );
    let mut changed = operator.clone();
    changed.touch();
    ensure_err!(
        update(&s, &ctx, changed).await,
        StoreError::NotFound { .. },
        "tenant updating operator"
    );
    ensure_err!(
        delete::<User>(&s, &ctx, operator.id).await,
        StoreError::NotFound { .. },
        "tenant deleting operator"
    );
    ensure_err!(
        insert(&s, &ctx, fixtures::user(None, 2)).await,
        StoreError::NotFound { .. },
        "tenant creating a platform user"
    );

    let seen: User = get(&s, &admin(), operator.id).await.step("get across tenants")?;
    ensure!(seen == operator, "the platform user reads back as {seen:?}");
    let listed = list::<User>(&s, &admin(), &by_email, page(10, 0)?)
        .await
        .step("list across tenants")?;
    ensure!(
        ids(&listed.items) == vec![operator.id],
        "the all-tenants scope lists {:?}",
        ids(&listed.items)
    );
    Ok(())
}

/// Global unique keys (e-mail, Keycloak subject, key hash) collide with rows of any tenant, even rows the
/// scope cannot see; the refused insert writes nothing and the unit stays usable.
pub async fn unique_keys_hold_across_tenants(s: StoreUnderTest) -> CheckResult {
    let (a, b) = (create_tenant(&s).await?, create_tenant(&s).await?);
    let theirs = insert(&s, &member(a.id), fixtures::user(Some(a.id), 1))
        .await
        .step("insert a's user")?;
    let their_key = insert(&s, &member(a.id), fixtures::api_key(a.id, None, 1))
        .await
        .step("insert a's key")?;

    let mut uow = begin(&s, &member(b.id), Access::ReadWrite).await?;
    let mut same_email = fixtures::user(Some(b.id), 2);
    same_email.email = theirs.email.to_uppercase();
    ensure_err!(
        uow.users().insert(same_email.clone()).await,
        StoreError::Conflict { .. },
        "e-mail of another tenant"
    );
    let mut same_subject = fixtures::user(Some(b.id), 3);
    same_subject.keycloak_id = theirs.keycloak_id.clone();
    ensure_err!(
        uow.users().insert(same_subject.clone()).await,
        StoreError::Conflict { .. },
        "Keycloak id reused"
    );
    let mut same_hash = fixtures::api_key(b.id, None, 2);
    same_hash.key_hash = their_key.key_hash.clone();
    ensure_err!(
        uow.api_keys().insert(same_hash.clone()).await,
        StoreError::Conflict { .. },
        "key hash reused"
    );
    let fine = uow
        .users()
        .insert(fixtures::user(Some(b.id), 4))
        .await
        .step("insert after conflicts")?;
    uow.commit().await.step("commit after conflicts")?;

    let stored: User = get(&s, &member(b.id), fine.id)
        .await
        .step("get the accepted user")?;
    ensure!(stored == fine, "the accepted user reads back as {stored:?}");
    for id in [same_email.id, same_subject.id] {
        ensure_err!(
            get::<User>(&s, &admin(), id).await,
            StoreError::NotFound { .. },
            "a refused user was stored"
        );
    }
    ensure_err!(
        get::<ApiKey>(&s, &admin(), same_hash.id).await,
        StoreError::NotFound { .. },
        "refused key stored"
    );
    Ok(())
}

async fn names_are_unique_per_tenant<R: Fixture>(
    s: &StoreUnderTest,
    a: TenantId,
    b: TenantId,
    make: impl Fn(TenantId, &str) -> R,
) -> CheckResult {
    insert(s, &member(a), make(a, "Front Desk"))
        .await
        .step(&format!("first {}", R::RESOURCE))?;
    ensure_err!(
        insert(s, &member(a), make(a, "FRONT DESK")).await,
        StoreError::Conflict { .. },
        "a second {} with the same name (other case) in one tenant",
        R::RESOURCE
    );
    insert(s, &member(b), make(b, "Front Desk"))
        .await
        .step(&format!("same {} name in another tenant", R::RESOURCE))?;
    Ok(())
}

/// Per-tenant names (projects, personas, themes, wake words) are unique case-insensitively within a tenant and
/// free in every other tenant.
pub async fn per_tenant_names_may_repeat_in_other_tenants(s: StoreUnderTest) -> CheckResult {
    let (a, b) = (create_tenant(&s).await?.id, create_tenant(&s).await?.id);
    names_are_unique_per_tenant::<Project>(&s, a, b, |t, name| fixtures::project(t, name, 1)).await?;
    names_are_unique_per_tenant::<Persona>(&s, a, b, |t, name| fixtures::persona(t, name, 1)).await?;
    names_are_unique_per_tenant::<Theme>(&s, a, b, |t, name| fixtures::theme(t, name, 1)).await?;
    names_are_unique_per_tenant::<WakeWord>(&s, a, b, |t, name| fixtures::wake_word(t, name, 1)).await?;
    Ok(())
}

/// An update may keep its own keys but not take another row's; a deleted row's keys are free again.
pub async fn updates_keep_unique_keys_and_deletes_free_them(s: StoreUnderTest) -> CheckResult {
    let (a, b) = (create_tenant(&s).await?, create_tenant(&s).await?);
    let ctx = member(a.id);
    let one = insert(&s, &ctx, fixtures::project(a.id, "One", 1))
        .await
        .step("insert One")?;
    let two = insert(&s, &ctx, fixtures::project(a.id, "Two", 2))
        .await
        .step("insert Two")?;
    let mut clash = two.clone();
    clash.name = "ONE".into();
    ensure_err!(
        update(&s, &ctx, clash.clone()).await,
        StoreError::Conflict { .. },
        "renaming onto a taken name"
    );
    let unchanged: Project = get(&s, &ctx, two.id).await.step("get Two")?;
    ensure!(
        unchanged == two,
        "a refused update changed the row: {unchanged:?}"
    );
    delete::<Project>(&s, &ctx, one.id).await.step("delete One")?;
    let renamed = update(&s, &ctx, clash).await.step("renaming onto a freed name")?;
    ensure!(
        renamed.name == "ONE" && renamed.version == 2,
        "rename returned {renamed:?}"
    );

    let user = insert(&s, &ctx, fixtures::user(Some(a.id), 1))
        .await
        .step("insert user")?;
    delete::<User>(&s, &ctx, user.id).await.step("delete user")?;
    let mut again = fixtures::user(Some(b.id), 2);
    again.email = user.email.clone();
    insert(&s, &member(b.id), again)
        .await
        .step("reusing a deleted user's e-mail in another tenant")?;
    Ok(())
}

/// References must name an existing row of the record's own tenant, on insert and update, whatever the scope;
/// otherwise `not_found` and nothing is written.
pub async fn references_must_exist_in_the_same_tenant(s: StoreUnderTest) -> CheckResult {
    let (a, b) = (create_tenant(&s).await?, create_tenant(&s).await?);
    let ctx_b = member(b.id);
    let project_b = insert(&s, &ctx_b, fixtures::project(b.id, "B", 1))
        .await
        .step("b's project")?;
    let user_b = insert(&s, &ctx_b, fixtures::user(Some(b.id), 1))
        .await
        .step("b's user")?;
    let key_b = insert(&s, &ctx_b, fixtures::api_key(b.id, None, 1))
        .await
        .step("b's key")?;
    let session_b = insert(&s, &ctx_b, fixtures::session(b.id, None, None, 1))
        .await
        .step("b's session")?;

    for ctx in [member(a.id), admin()] {
        let mut uow = begin(&s, &ctx, Access::ReadWrite).await?;
        let bad_keys = [
            fixtures::api_key(a.id, Some(project_b.id), 2),
            fixtures::api_key(a.id, Some(random::<ProjectId>()), 3),
        ];
        for key in bad_keys {
            ensure_err!(
                uow.api_keys().insert(key).await,
                StoreError::NotFound { .. },
                "key with a foreign project"
            );
        }
        let bad_session = fixtures::session(a.id, None, Some(key_b.id), 2);
        ensure_err!(
            uow.sessions().insert(bad_session).await,
            StoreError::NotFound { .. },
            "session with b's key"
        );
        let bad_session = fixtures::session(a.id, None, Some(random::<ApiKeyId>()), 3);
        ensure_err!(
            uow.sessions().insert(bad_session).await,
            StoreError::NotFound { .. },
            "session, unknown key"
        );
        let bad_note = fixtures::notification(a.id, user_b.id, 1);
        ensure_err!(
            uow.notifications().insert(bad_note).await,
            StoreError::NotFound { .. },
            "note for b's user"
        );
        let bad_note = fixtures::notification(a.id, random::<UserId>(), 2);
        ensure_err!(
            uow.notifications().insert(bad_note).await,
            StoreError::NotFound { .. },
            "note, unknown user"
        );
        for parent in [session_b.id, random::<SessionId>()] {
            let bad_event = fixtures::session_event(a.id, parent, 1);
            ensure_err!(
                uow.session_events().insert(bad_event).await,
                StoreError::NotFound { .. },
                "orphan event"
            );
        }
        let key = uow
            .api_keys()
            .insert(fixtures::api_key(a.id, None, 4))
            .await
            .step("insert a valid key")?;
        let mut moved = key.clone();
        moved.project_id = Some(project_b.id);
        ensure_err!(
            uow.api_keys().update(moved).await,
            StoreError::NotFound { .. },
            "re-binding to b's project"
        );
        uow.rollback().await.step("rollback")?;
    }
    let mut uow = begin(&s, &admin(), Access::ReadWrite).await?;
    let homeless = fixtures::user(Some(random::<TenantId>()), 9);
    ensure_err!(
        uow.users().insert(homeless).await,
        StoreError::NotFound { .. },
        "user of an unknown tenant"
    );
    drop(uow);
    let keys = count::<ApiKey>(&s, &member(a.id), &ApiKeyFilter::default())
        .await
        .step("count a's keys")?;
    ensure!(keys == 0, "refused inserts left {keys} keys in tenant a");
    Ok(())
}

/// `update` cannot change a record's tenant (`validation_error`), even in the all-tenants scope.
pub async fn updates_cannot_move_records_between_tenants(s: StoreUnderTest) -> CheckResult {
    let (a, b) = (create_tenant(&s).await?, create_tenant(&s).await?);
    let project = insert(&s, &member(a.id), fixtures::project(a.id, "Mine", 1))
        .await
        .step("insert")?;
    let mut moved = project.clone();
    moved.tenant_id = b.id;
    ensure_err!(
        update(&s, &admin(), moved).await,
        StoreError::Invalid(_),
        "moving a project to another tenant"
    );
    let after: Project = get(&s, &member(a.id), project.id).await.step("get")?;
    ensure!(after == project, "a refused move changed the project: {after:?}");
    Ok(())
}

/// Deleting a project deletes its API keys and detaches its sessions (from the project, and from the deleted
/// keys); other projects' keys and sessions are untouched.
pub async fn deleting_a_project_removes_its_keys_and_detaches_its_sessions(s: StoreUnderTest) -> CheckResult {
    let tenant = create_tenant(&s).await?;
    let ctx = member(tenant.id);
    let t = tenant.id;
    let doomed = insert(&s, &ctx, fixtures::project(t, "Doomed", 1))
        .await
        .step("project")?;
    let kept = insert(&s, &ctx, fixtures::project(t, "Kept", 2))
        .await
        .step("project")?;
    let doomed_key = insert(&s, &ctx, fixtures::api_key(t, Some(doomed.id), 1))
        .await
        .step("key")?;
    let kept_key = insert(&s, &ctx, fixtures::api_key(t, Some(kept.id), 2))
        .await
        .step("key")?;
    let free_key = insert(&s, &ctx, fixtures::api_key(t, None, 3))
        .await
        .step("key")?;
    let via_doomed_key = insert(
        &s,
        &ctx,
        fixtures::session(t, Some(doomed.id), Some(doomed_key.id), 1),
    )
    .await
    .step("session")?;
    let via_free_key = insert(
        &s,
        &ctx,
        fixtures::session(t, Some(doomed.id), Some(free_key.id), 2),
    )
    .await
    .step("session")?;
    let other = insert(
        &s,
        &ctx,
        fixtures::session(t, Some(kept.id), Some(kept_key.id), 3),
    )
    .await
    .step("session")?;

    delete::<Project>(&s, &ctx, doomed.id)
        .await
        .step("delete project")?;
    ensure_err!(
        get::<ApiKey>(&s, &ctx, doomed_key.id).await,
        StoreError::NotFound { .. },
        "the project's key"
    );
    for key in [&kept_key, &free_key] {
        let after: ApiKey = get(&s, &ctx, key.id).await.step("another key")?;
        ensure!(
            after == *key,
            "deleting a project changed an unrelated key: {after:?}"
        );
    }
    let detached: Session = get(&s, &ctx, via_doomed_key.id)
        .await
        .step("session of the project")?;
    ensure!(
        detached.project_id.is_none(),
        "a session still names the deleted project"
    );
    ensure!(
        detached.api_key_id.is_none(),
        "a session still names a deleted key"
    );
    let detached: Session = get(&s, &ctx, via_free_key.id)
        .await
        .step("session of the project")?;
    ensure!(
        detached.project_id.is_none(),
        "a session still names the deleted project"
    );
    ensure!(
        detached.api_key_id == Some(free_key.id),
        "a surviving key was detached from its session"
    );
    let untouched: Session = get(&s, &ctx, other.id).await.step("session of another project")?;
    ensure!(
        untouched == other,
        "a session of another project changed: {untouched:?}"
    );
    Ok(())
}

/// Deleting a session deletes its events and no others.
pub async fn deleting_a_session_removes_its_events(s: StoreUnderTest) -> CheckResult {
    let tenant = create_tenant(&s).await?;
    let (ctx, t) = (member(tenant.id), tenant.id);
    let doomed = insert(&s, &ctx, fixtures::session(t, None, None, 1))
        .await
        .step("session")?;
    let kept = insert(&s, &ctx, fixtures::session(t, None, None, 2))
        .await
        .step("session")?;
    let mut uow = begin(&s, &ctx, Access::ReadWrite).await?;
    for sequence in 1..=3 {
        uow.session_events()
            .insert(fixtures::session_event(t, doomed.id, sequence))
            .await
            .step("event")?;
    }
    let survivor = uow
        .session_events()
        .insert(fixtures::session_event(t, kept.id, 1))
        .await
        .step("event")?;
    uow.commit().await.step("commit")?;

    delete::<Session>(&s, &ctx, doomed.id)
        .await
        .step("delete session")?;
    let of_doomed = SessionEventFilter {
        session_id: Some(doomed.id),
        ..Default::default()
    };
    let left = count::<SessionEvent>(&s, &ctx, &of_doomed)
        .await
        .step("count events")?;
    ensure!(left == 0, "{left} events of a deleted session remain");
    let after: SessionEvent = get(&s, &ctx, survivor.id)
        .await
        .step("event of another session")?;
    ensure!(after == survivor, "an event of another session changed");
    Ok(())
}

/// Deleting a user deletes their notifications and no others.
pub async fn deleting_a_user_removes_their_notifications(s: StoreUnderTest) -> CheckResult {
    let tenant = create_tenant(&s).await?;
    let (ctx, t) = (member(tenant.id), tenant.id);
    let doomed = insert(&s, &ctx, fixtures::user(Some(t), 1)).await.step("user")?;
    let kept = insert(&s, &ctx, fixtures::user(Some(t), 2)).await.step("user")?;
    let note = insert(&s, &ctx, fixtures::notification(t, doomed.id, 1))
        .await
        .step("notification")?;
    let other = insert(&s, &ctx, fixtures::notification(t, kept.id, 2))
        .await
        .step("notification")?;
    delete::<User>(&s, &ctx, doomed.id).await.step("delete user")?;
    ensure_err!(
        get::<Notification>(&s, &ctx, note.id).await,
        StoreError::NotFound { .. },
        "the user's notification"
    );
    let after: Notification = get(&s, &ctx, other.id)
        .await
        .step("another user's notification")?;
    ensure!(after == other, "another user's notification changed");
    Ok(())
}

/// A row that other rows still reference (without a cascade rule) cannot be deleted: `conflict`, nothing
/// changes. Once the references are gone, it can.
pub async fn referenced_records_cannot_be_deleted(s: StoreUnderTest) -> CheckResult {
    let tenant = create_tenant(&s).await?;
    let (ctx, t) = (member(tenant.id), tenant.id);
    let project = insert(&s, &ctx, fixtures::project(t, "Busy", 1))
        .await
        .step("project")?;
    let key = insert(&s, &ctx, fixtures::api_key(t, None, 1))
        .await
        .step("key")?;
    let session = insert(&s, &ctx, fixtures::session(t, None, Some(key.id), 1))
        .await
        .step("session")?;

    ensure_err!(
        delete::<Tenant>(&s, &admin(), t).await,
        StoreError::Conflict { .. },
        "deleting a tenant in use"
    );
    let still: Tenant = get(&s, &admin(), t).await.step("get tenant")?;
    ensure!(still == tenant, "a refused tenant delete changed it");
    let still: Project = get(&s, &ctx, project.id).await.step("get project")?;
    ensure!(still == project, "a refused tenant delete changed its project");
    ensure_err!(
        delete::<ApiKey>(&s, &ctx, key.id).await,
        StoreError::Conflict { .. },
        "deleting a key in use"
    );
    let still: ApiKey = get(&s, &ctx, key.id).await.step("get key")?;
    ensure!(still == key, "a refused key delete changed it");

    delete::<Session>(&s, &ctx, session.id)
        .await
        .step("delete session")?;
    delete::<ApiKey>(&s, &ctx, key.id)
        .await
        .step("delete a key no longer in use")?;
    delete::<Project>(&s, &ctx, project.id)
        .await
        .step("delete project")?;
    delete::<Tenant>(&s, &admin(), t)
        .await
        .step("delete a tenant no longer in use")?;
    Ok(())
}

/// Filters narrow `list` and `count` alike (a SQL adapter must translate every field).
pub async fn filters_narrow_lists_and_counts(s: StoreUnderTest) -> CheckResult {
    let tenant = create_tenant(&s).await?;
    let (ctx, t) = (member(tenant.id), tenant.id);
    let voice = insert(&s, &ctx, fixtures::project(t, "Voice Bot", 1))
        .await
        .step("project")?;
    let chat = insert(&s, &ctx, fixtures::project(t, "Chat Bot", 2))
        .await
        .step("project")?;
    insert(&s, &ctx, fixtures::project(t, "Analytics", 3))
        .await
        .step("project")?;
    let live = insert(&s, &ctx, fixtures::api_key(t, Some(voice.id), 1))
        .await
        .step("key")?;
    let mut revoked = fixtures::api_key(t, None, 2);
    revoked.revoked_at = Some(SystemClock.now());
    let revoked = insert(&s, &ctx, revoked).await.step("revoked key")?;
    let user = insert(&s, &ctx, fixtures::user(Some(t), 1)).await.step("user")?;
    let in_voice = insert(&s, &ctx, fixtures::session(t, Some(voice.id), None, 1))
        .await
        .step("session")?;
    insert(&s, &ctx, fixtures::session(t, Some(chat.id), None, 2))
        .await
        .step("session")?;

    async fn expect<R: Fixture>(
        s: &StoreUnderTest,
        ctx: &avb_core::Ctx,
        filter: R::Filter,
        expected: Vec<R::Id>,
    ) -> CheckResult {
        let found = list::<R>(s, ctx, &filter, page(100, 0)?).await.step("list")?;
        let mut got = ids(&found.items);
        let mut want = expected;
        got.sort();
        want.sort();
        ensure!(
            got == want,
            "{} filter {filter:?} listed {got:?}, expected {want:?}",
            R::RESOURCE
        );
        ensure!(
            found.total == want.len() as u64,
            "{} filter {filter:?}: total {}",
            R::RESOURCE,
            found.total
        );
        let counted = count::<R>(s, ctx, &filter).await.step("count")?;
        ensure!(
            counted == found.total,
            "{} filter {filter:?}: count {counted} vs list",
            R::RESOURCE
        );
        Ok(())
    }
    expect::<Project>(
        &s,
        &ctx,
        ProjectFilter {
            name: Some("voice bot".into()),
            ..Default::default()
        },
        vec![voice.id],
    )
    .await?;
    expect::<Project>(
        &s,
        &ctx,
        ProjectFilter {
            search: Some("BOT".into()),
            ..Default::default()
        },
        vec![voice.id, chat.id],
    )
    .await?;
    expect::<ApiKey>(
        &s,
        &ctx,
        ApiKeyFilter {
            revoked: Some(false),
            ..Default::default()
        },
        vec![live.id],
    )
    .await?;
    expect::<ApiKey>(
        &s,
        &ctx,
        ApiKeyFilter {
            revoked: Some(true),
            ..Default::default()
        },
        vec![revoked.id],
    )
    .await?;
    expect::<ApiKey>(
        &s,
        &ctx,
        ApiKeyFilter {
            prefix: Some(live.key_prefix.clone()),
            ..Default::default()
        },
        vec![live.id],
    )
    .await?;
    expect::<User>(
        &s,
        &ctx,
        UserFilter {
            email: Some(user.email.to_uppercase()),
            ..Default::default()
        },
        vec![user.id],
    )
    .await?;
    expect::<Session>(
        &s,
        &ctx,
        SessionFilter {
            project_id: Some(voice.id),
            ..Default::default()
        },
        vec![in_voice.id],
    )
    .await?;
    Ok(())
}
