//! Generic checks, run once per record type: versions, scope isolation, atomicity and listing.

use super::fixtures::Fixture;
use super::{
    CheckResult, Step, StoreUnderTest, admin, begin, count, create_tenant, delete, ensure, ensure_err, get,
    ids, list, member, page, prepare_and_insert, update,
};
use crate::store::Access;
use avb_core::Error as StoreError;
use std::cmp::Ordering;
use std::collections::BTreeSet;

/// `insert` stores version 1 and `get` returns it unchanged; `update` needs the stored version and returns
/// version + 1 (a stale version is a `VersionConflict` with both versions); `delete` removes the record, after
/// which get, update and delete are `not_found`.
pub async fn crud_round_trip<R: Fixture>(s: StoreUnderTest) -> CheckResult {
    let tenant = create_tenant(&s).await?;
    let ctx = member(tenant.id);
    let stored: R = prepare_and_insert(&s, &ctx, tenant.id, 1).await?;
    ensure!(
        stored.version() == 1,
        "{} inserted with version {}",
        R::RESOURCE,
        stored.version()
    );
    let read: R = get(&s, &ctx, stored.id()).await.step("get")?;
    ensure!(
        read == stored,
        "get returned {read:?}\nbut insert returned {stored:?}"
    );

    let mut changed = read.clone();
    changed.touch();
    let updated = update(&s, &ctx, changed.clone()).await.step("update")?;
    ensure!(
        updated.version() == 2,
        "an update returned version {}",
        updated.version()
    );
    let mut expected = changed;
    expected.set_version(2);
    ensure!(
        updated == expected,
        "update returned {updated:?}\ninstead of {expected:?}"
    );
    let reread: R = get(&s, &ctx, stored.id()).await.step("get after update")?;
    ensure!(reread == updated, "get after update returned {reread:?}");

    ensure_err!(
        update(&s, &ctx, read).await,
        StoreError::VersionConflict {
            expected: 1,
            actual: 2,
            ..
        },
        "update of {} from a stale version",
        R::RESOURCE
    );
    delete::<R>(&s, &ctx, stored.id()).await.step("delete")?;
    ensure_err!(
        get::<R>(&s, &ctx, stored.id()).await,
        StoreError::NotFound { .. },
        "get after delete"
    );
    ensure_err!(
        delete::<R>(&s, &ctx, stored.id()).await,
        StoreError::NotFound { .. },
        "second delete"
    );
    ensure_err!(
        update(&s, &ctx, updated).await,
        StoreError::NotFound { .. },
        "update after delete"
    );
    Ok(())
}

/// Another tenant's record behaves exactly as if absent: get and lock are `not_found`, list and count leave
/// it out, update and delete are `not_found` and change nothing. The all-tenants scope sees it.
pub async fn hidden_from_other_tenants<R: Fixture>(s: StoreUnderTest) -> CheckResult {
    let (a, b) = (create_tenant(&s).await?, create_tenant(&s).await?);
    let ctx_a = member(a.id);
    let everything = R::Filter::default();
    let before = count::<R>(&s, &ctx_a, &everything).await.step("count as a")?;
    let theirs: R = prepare_and_insert(&s, &member(b.id), b.id, 1).await?;
    let id = theirs.id();

    let mut uow = begin(&s, &ctx_a, Access::ReadWrite).await?;
    ensure_err!(
        R::repo(uow.as_mut()).get(id).await,
        StoreError::NotFound { .. },
        "get of b's record as a"
    );
    ensure_err!(
        R::repo(uow.as_mut()).lock(id).await,
        StoreError::NotFound { .. },
        "lock of b's record as a"
    );
    let listed = R::repo(uow.as_mut())
        .list(&everything, page(100, 0)?)
        .await
        .step("list as a")?;
    ensure!(!ids(&listed.items).contains(&id), "a lists b's {}", R::RESOURCE);
    ensure!(
        listed.total == before,
        "a's list total {} counts b's record (was {before})",
        listed.total
    );
    let counted = R::repo(uow.as_mut())
        .count(&everything)
        .await
        .step("count as a")?;
    ensure!(
        counted == before,
        "a's count {counted} counts b's record (was {before})"
    );
    let mut changed = theirs.clone();
    changed.touch();
    ensure_err!(
        R::repo(uow.as_mut()).update(changed).await,
        StoreError::NotFound { .. },
        "update as a"
    );
    ensure_err!(
        R::repo(uow.as_mut()).delete(id).await,
        StoreError::NotFound { .. },
        "delete as a"
    );
    uow.commit().await.step("commit as a")?;

    let still: R = get(&s, &member(b.id), id).await.step("get as b")?;
    ensure!(still == theirs, "a changed b's record: {still:?}");
    let across: R = get(&s, &admin(), id).await.step("get across tenants")?;
    ensure!(across == theirs, "the all-tenants scope reads {across:?}");
    Ok(())
}

/// Inserting a record of a tenant outside the scope is `not_found` and writes nothing.
pub async fn refused_outside_the_scope<R: Fixture>(s: StoreUnderTest) -> CheckResult {
    let (a, b) = (create_tenant(&s).await?, create_tenant(&s).await?);
    // b's parents are committed by the platform; the record itself is what a tries to insert.
    let mut uow = begin(&s, &admin(), Access::ReadWrite).await?;
    let record = R::prepare(uow.as_mut(), b.id, 1).await.step("prepare")?;
    uow.commit().await.step("commit parents")?;

    let mut uow = begin(&s, &member(a.id), Access::ReadWrite).await?;
    ensure_err!(
        R::repo(uow.as_mut()).insert(record.clone()).await,
        StoreError::NotFound { .. },
        "insert of b's {} as a",
        R::RESOURCE
    );
    uow.commit().await.step("commit as a")?;
    ensure_err!(
        get::<R>(&s, &admin(), record.id()).await,
        StoreError::NotFound { .. },
        "refused insert was stored"
    );
    Ok(())
}

/// Inserts, updates and deletes of a unit that is rolled back or dropped leave no trace.
pub async fn rollback_discards_writes<R: Fixture>(s: StoreUnderTest) -> CheckResult {
    let tenant = create_tenant(&s).await?;
    let ctx = member(tenant.id);

    let mut uow = begin(&s, &ctx, Access::ReadWrite).await?;
    let record = R::prepare(uow.as_mut(), tenant.id, 1).await.step("prepare")?;
    R::repo(uow.as_mut())
        .insert(record.clone())
        .await
        .step("insert")?;
    uow.rollback().await.step("rollback")?;
    ensure_err!(
        get::<R>(&s, &ctx, record.id()).await,
        StoreError::NotFound { .. },
        "insert after rollback"
    );

    let mut uow = begin(&s, &ctx, Access::ReadWrite).await?;
    let record = R::prepare(uow.as_mut(), tenant.id, 2).await.step("prepare")?;
    R::repo(uow.as_mut())
        .insert(record.clone())
        .await
        .step("insert")?;
    drop(uow);
    ensure_err!(
        get::<R>(&s, &ctx, record.id()).await,
        StoreError::NotFound { .. },
        "insert of a dropped unit"
    );

    let kept: R = prepare_and_insert(&s, &ctx, tenant.id, 3).await?;
    let mut uow = begin(&s, &ctx, Access::ReadWrite).await?;
    let mut changed = kept.clone();
    changed.touch();
    R::repo(uow.as_mut()).update(changed).await.step("update")?;
    uow.rollback().await.step("rollback update")?;
    let mut uow = begin(&s, &ctx, Access::ReadWrite).await?;
    R::repo(uow.as_mut()).delete(kept.id()).await.step("delete")?;
    drop(uow);
    let after: R = get(&s, &ctx, kept.id())
        .await
        .step("get after discarded update and delete")?;
    ensure!(after == kept, "discarded writes changed the record: {after:?}");
    Ok(())
}

/// Inside a unit, reads see its own inserts, updates and deletes; other units see none of them before commit
/// (and a read-only unit does not wait for the open writer).
pub async fn reads_see_own_writes<R: Fixture>(s: StoreUnderTest) -> CheckResult {
    let tenant = create_tenant(&s).await?;
    let ctx = member(tenant.id);
    let everything = R::Filter::default();
    let before = count::<R>(&s, &ctx, &everything).await.step("count")?;

    let mut uow = begin(&s, &ctx, Access::ReadWrite).await?;
    let record = R::prepare(uow.as_mut(), tenant.id, 1).await.step("prepare")?;
    let stored = R::repo(uow.as_mut()).insert(record).await.step("insert")?;
    let id = stored.id();
    let read = R::repo(uow.as_mut()).get(id).await.step("get own insert")?;
    ensure!(read == stored, "own insert reads back as {read:?}");
    let listed = R::repo(uow.as_mut())
        .list(&everything, page(100, 0)?)
        .await
        .step("list")?;
    ensure!(ids(&listed.items).contains(&id), "own insert missing from list");
    let counted = R::repo(uow.as_mut()).count(&everything).await.step("count")?;
    ensure!(
        counted == before + 1,
        "count after own insert is {counted}, expected {}",
        before + 1
    );

    ensure_err!(
        get::<R>(&s, &ctx, id).await,
        StoreError::NotFound { .. },
        "another unit read an uncommitted insert"
    );

    let mut changed = stored;
    changed.touch();
    R::repo(uow.as_mut())
        .update(changed)
        .await
        .step("update own insert")?;
    let reread = R::repo(uow.as_mut()).get(id).await.step("get own update")?;
    ensure!(
        reread.version() == 2,
        "own update reads back with version {}",
        reread.version()
    );
    R::repo(uow.as_mut()).delete(id).await.step("delete own insert")?;
    ensure_err!(
        R::repo(uow.as_mut()).get(id).await,
        StoreError::NotFound { .. },
        "get after own delete"
    );
    let counted = R::repo(uow.as_mut()).count(&everything).await.step("count")?;
    ensure!(
        counted == before,
        "count after own delete is {counted}, expected {before}"
    );
    uow.commit().await.step("commit")?;
    Ok(())
}

/// A read-only unit reads, but refuses insert, update, delete and lock with `internal_error` and changes
/// nothing. (Lock is refused because a read-only unit must never block writers.)
pub async fn read_only_units_refuse_writes<R: Fixture>(s: StoreUnderTest) -> CheckResult {
    let (tenant, other) = (create_tenant(&s).await?, create_tenant(&s).await?);
    let existing: R = prepare_and_insert(&s, &member(tenant.id), tenant.id, 1).await?;
    let mut uow = begin(&s, &admin(), Access::ReadWrite).await?;
    let fresh = R::prepare(uow.as_mut(), other.id, 2).await.step("prepare")?;
    uow.commit().await.step("commit parents")?;

    let mut ro = begin(&s, &admin(), Access::ReadOnly).await?;
    ensure_err!(
        R::repo(ro.as_mut()).insert(fresh.clone()).await,
        StoreError::Internal(_),
        "read-only insert"
    );
    let mut changed = existing.clone();
    changed.touch();
    ensure_err!(
        R::repo(ro.as_mut()).update(changed).await,
        StoreError::Internal(_),
        "read-only update"
    );
    ensure_err!(
        R::repo(ro.as_mut()).delete(existing.id()).await,
        StoreError::Internal(_),
        "read-only delete"
    );
    ensure_err!(
        R::repo(ro.as_mut()).lock(existing.id()).await,
        StoreError::Internal(_),
        "read-only lock"
    );
    let read = R::repo(ro.as_mut())
        .get(existing.id())
        .await
        .step("read-only get")?;
    ensure!(read == existing, "read-only get returned {read:?}");
    ro.commit().await.step("commit read-only unit")?;

    ensure_err!(
        get::<R>(&s, &admin(), fresh.id()).await,
        StoreError::NotFound { .. },
        "read-only insert stored"
    );
    let after: R = get(&s, &admin(), existing.id()).await.step("get")?;
    ensure!(after == existing, "a read-only unit changed {after:?}");
    Ok(())
}

/// `list` returns every match in `Record::listing_order`, pages slice that order, and every page reports the
/// total; `count` agrees. Types a tenant holds one of refuse a second one with `conflict` instead.
pub async fn listed_in_order_with_totals<R: Fixture>(s: StoreUnderTest) -> CheckResult {
    let tenant = create_tenant(&s).await?;
    let ctx = member(tenant.id);
    let everything = R::Filter::default();
    if !R::MANY_PER_TENANT {
        let first: R = prepare_and_insert(&s, &ctx, tenant.id, 1).await?;
        let mut uow = begin(&s, &ctx, Access::ReadWrite).await?;
        let second = R::prepare(uow.as_mut(), tenant.id, 2)
            .await
            .step("prepare second")?;
        ensure_err!(
            R::repo(uow.as_mut()).insert(second).await,
            StoreError::Conflict { .. },
            "a second {}",
            R::RESOURCE
        );
        drop(uow);
        let listed = list::<R>(&s, &ctx, &everything, page(10, 0)?)
            .await
            .step("list")?;
        ensure!(
            listed.total == 1 && listed.items == vec![first],
            "listed {listed:?}"
        );
        return Ok(());
    }

    let mut uow = begin(&s, &ctx, Access::ReadWrite).await?;
    let mut inserted = BTreeSet::new();
    for n in 1..=5 {
        let record = R::prepare(uow.as_mut(), tenant.id, n).await.step("prepare")?;
        inserted.insert(R::repo(uow.as_mut()).insert(record).await.step("insert")?.id());
    }
    uow.commit().await.step("commit")?;

    let all = list::<R>(&s, &ctx, &everything, page(100, 0)?)
        .await
        .step("list")?;
    ensure!(
        all.total == 5 && all.items.len() == 5,
        "listed {} of 5 (total {})",
        all.items.len(),
        all.total
    );
    ensure!(
        ids(&all.items).into_iter().collect::<BTreeSet<_>>() == inserted,
        "listed other records"
    );
    let ordered = all.items.windows(2).all(|pair| match pair {
        [a, b] => R::listing_order(a, b) == Ordering::Less,
        _ => true,
    });
    ensure!(
        ordered,
        "{} list is not in listing order: {:?}",
        R::RESOURCE,
        ids(&all.items)
    );

    let mut paged = Vec::new();
    for offset in [0, 2, 4] {
        let one = list::<R>(&s, &ctx, &everything, page(2, offset)?)
            .await
            .step("list page")?;
        ensure!(one.total == 5, "page at {offset} reports total {}", one.total);
        ensure!(
            one.limit == 2 && one.offset == offset,
            "page echoes limit {} offset {}",
            one.limit,
            one.offset
        );
        paged.extend(one.items);
    }
    ensure!(
        ids(&paged) == ids(&all.items),
        "pages {:?} do not slice {:?}",
        ids(&paged),
        ids(&all.items)
    );
    let beyond = list::<R>(&s, &ctx, &everything, page(2, 10)?)
        .await
        .step("list past the end")?;
    ensure!(
        beyond.items.is_empty() && beyond.total == 5,
        "a page past the end: {beyond:?}"
    );
    let counted = count::<R>(&s, &ctx, &everything).await.step("count")?;
    ensure!(counted == 5, "count {counted} disagrees with list total 5");
    Ok(())
}
