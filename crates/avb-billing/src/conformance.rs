//! Conformance checks for [`BillingProvider`] and [`BillingStore`] adapters: one `pub async fn` per contract
//! point, and [`billing_provider_conformance!`](crate::billing_provider_conformance) /
//! [`billing_store_conformance!`](crate::billing_store_conformance) to run them all as `#[tokio::test]`s.
//!
//! Checks use fresh random tenants, customers and transaction ids and never assume an empty backend, so they
//! can share one provider or database. The provider checks expect the tier plans (`plan_free` …
//! `plan_enterprise`) to exist and the metrics of [`crate::model::metrics`] to aggregate as documented there.

use crate::Error;
use crate::model::{
    BatchOutcome, BillingCustomer, MAX_BATCH, PlanAssignment, RejectedEvent, UsageEvent, metrics,
};
use crate::provider::BillingProvider;
use crate::store::{BillingStore, OutboxState, TenantUsage};
use avb_core::{Clock, Ctx, IdGen, RequestId, SystemClock, TenantId, UuidV7Ids};
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::fmt::Display;
use std::sync::Arc;

/// The outcome of one check: `Err` describes the first broken contract point.
pub type CheckResult = Result<(), String>;

trait Step<T> {
    fn step(self, what: &str) -> Result<T, String>;
}

impl<T, E: Display> Step<T> for Result<T, E> {
    fn step(self, what: &str) -> Result<T, String> {
        self.map_err(|err| format!("{what}: {err}"))
    }
}

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

/// Runs every provider check as its own `#[tokio::test]` against the provider made by `$factory`, an
/// expression whose `.await` yields an `Arc<dyn BillingProvider>`.
#[macro_export]
macro_rules! billing_provider_conformance {
    ($factory:expr) => {
        $crate::billing_provider_conformance!(@tests $factory;
            upserting_a_customer_twice_is_harmless,
            plans_need_a_known_customer_and_plan,
            assigning_again_changes_the_plan_of_the_same_subscription,
            batches_hold_one_to_max_events,
            resent_events_are_duplicates_not_new_usage,
            current_usage_sums_accepted_events_per_metric,
            current_usage_of_unknown_customers_is_not_found,
            invoices_of_a_new_customer_are_an_empty_page,
        );
    };
    (@tests $factory:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let provider: ::std::sync::Arc<dyn $crate::provider::BillingProvider> = $factory.await;
                if let Err(failure) = $crate::conformance::$check(provider).await {
                    panic!("{}", failure);
                }
            }
        )*
    };
}

/// Runs every store check as its own `#[tokio::test]` against the store made by `$factory`, an expression
/// whose `.await` yields an `Arc<dyn BillingStore>`.
#[macro_export]
macro_rules! billing_store_conformance {
    ($factory:expr) => {
        $crate::billing_store_conformance!(@tests $factory;
            recording_is_idempotent_on_transaction_id,
            pending_is_oldest_first_and_limited,
            settled_entries_leave_pending_for_good,
            failed_attempts_are_counted_and_stay_pending,
            entries_are_scoped_to_their_tenant,
            cursors_round_trip,
            webhook_keys_are_claimed_once_until_released,
        );
    };
    (@tests $factory:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let store: ::std::sync::Arc<dyn $crate::store::BillingStore> = $factory.await;
                if let Err(failure) = $crate::conformance::$check(store).await {
                    panic!("{}", failure);
                }
            }
        )*
    };
}

fn system() -> Ctx {
    Ctx::system(RequestId::generate(&UuidV7Ids), "conformance", None)
}

fn scoped(tenant: TenantId) -> Ctx {
    Ctx::system(RequestId::generate(&UuidV7Ids), "conformance", Some(tenant))
}

fn random() -> String {
    UuidV7Ids.new_uuid().simple().to_string()
}

fn customer(id: &str) -> BillingCustomer {
    BillingCustomer {
        external_id: id.to_owned(),
        name: format!("Conformance {id}"),
        email: None,
        metadata: [("tier".to_owned(), "free".to_owned())].into(),
    }
}

fn plan(customer: &str, subscription: &str, code: &str) -> PlanAssignment {
    PlanAssignment {
        external_customer_id: customer.to_owned(),
        external_id: subscription.to_owned(),
        plan_code: code.to_owned(),
    }
}

fn event(subscription: &str, code: &str, key: &str, value: Value) -> UsageEvent {
    let mut properties = Map::new();
    properties.insert(key.to_owned(), value);
    UsageEvent {
        transaction_id: format!("conf:{}:{code}", random()),
        external_subscription_id: subscription.to_owned(),
        code: code.to_owned(),
        timestamp: SystemClock.now().timestamp(),
        properties,
    }
}

/// A customer on `plan_free` under a fresh subscription id.
async fn subscribed(provider: &dyn BillingProvider) -> Result<(String, String), String> {
    let ctx = system();
    let (cust, sub) = (random(), format!("sub_{}", random()));
    provider
        .upsert_customer(&ctx, &customer(&cust))
        .await
        .step("upsert_customer")?;
    provider
        .assign_plan(&ctx, &plan(&cust, &sub, "plan_free"))
        .await
        .step("assign_plan")?;
    Ok((cust, sub))
}

fn accounted_once(outcome: &BatchOutcome, sent: &[UsageEvent]) -> CheckResult {
    let mut seen = BTreeSet::new();
    let all = outcome
        .accepted
        .iter()
        .chain(&outcome.duplicates)
        .chain(outcome.rejected.iter().map(|r| &r.transaction_id));
    for id in all {
        ensure!(
            seen.insert(id.clone()),
            "event {id} is reported twice: {outcome:?}"
        );
    }
    let expected: BTreeSet<String> = sent.iter().map(|e| e.transaction_id.clone()).collect();
    ensure!(
        seen == expected,
        "every event must be reported exactly once: {outcome:?}"
    );
    Ok(())
}

/// `upsert_customer` twice with changes, then a plan can be assigned.
pub async fn upserting_a_customer_twice_is_harmless(provider: Arc<dyn BillingProvider>) -> CheckResult {
    let ctx = system();
    let id = random();
    let mut c = customer(&id);
    provider.upsert_customer(&ctx, &c).await.step("first upsert")?;
    c.name = "Renamed".into();
    provider.upsert_customer(&ctx, &c).await.step("second upsert")?;
    provider.upsert_customer(&ctx, &c).await.step("repeated upsert")?;
    let sub = provider
        .assign_plan(&ctx, &plan(&id, &format!("sub_{}", random()), "plan_starter"))
        .await
        .step("assign_plan after upserts")?;
    ensure!(
        sub.external_customer_id == id,
        "subscription of the wrong customer: {sub:?}"
    );
    Ok(())
}

/// An unknown customer or plan is `NotFound`.
pub async fn plans_need_a_known_customer_and_plan(provider: Arc<dyn BillingProvider>) -> CheckResult {
    let ctx = system();
    let unknown = provider
        .assign_plan(&ctx, &plan(&random(), &format!("sub_{}", random()), "plan_free"))
        .await;
    ensure!(
        matches!(unknown, Err(Error::NotFound { .. })),
        "unknown customer must be not_found, got {unknown:?}"
    );
    let id = random();
    provider
        .upsert_customer(&ctx, &customer(&id))
        .await
        .step("upsert")?;
    let bad_plan = provider
        .assign_plan(
            &ctx,
            &plan(&id, &format!("sub_{}", random()), &format!("plan_{}", random())),
        )
        .await;
    ensure!(
        matches!(bad_plan, Err(Error::NotFound { .. })),
        "unknown plan must be not_found, got {bad_plan:?}"
    );
    Ok(())
}

/// Assigning again with another plan changes that subscription's plan.
pub async fn assigning_again_changes_the_plan_of_the_same_subscription(
    provider: Arc<dyn BillingProvider>,
) -> CheckResult {
    let ctx = system();
    let (cust, sub) = subscribed(provider.as_ref()).await?;
    let changed = provider
        .assign_plan(&ctx, &plan(&cust, &sub, "plan_pro"))
        .await
        .step("change plan")?;
    ensure!(
        changed.external_id == sub && changed.plan_code == "plan_pro",
        "plan change must keep the subscription and take the new plan: {changed:?}"
    );
    let again = provider
        .assign_plan(&ctx, &plan(&cust, &sub, "plan_pro"))
        .await
        .step("same plan again")?;
    ensure!(
        again.plan_code == "plan_pro",
        "repeat changed the plan: {again:?}"
    );
    Ok(())
}

/// 0 or more than [`MAX_BATCH`] events are `Invalid`, and nothing of an oversized batch is stored.
pub async fn batches_hold_one_to_max_events(provider: Arc<dyn BillingProvider>) -> CheckResult {
    let ctx = system();
    let (_, sub) = subscribed(provider.as_ref()).await?;
    let empty = provider.send_events(&ctx, &[]).await;
    ensure!(matches!(empty, Err(Error::Invalid(_))), "empty batch: {empty:?}");
    let many: Vec<UsageEvent> = (0..=MAX_BATCH)
        .map(|_| event(&sub, metrics::SESSIONS, "status", Value::from("completed")))
        .collect();
    let over = provider.send_events(&ctx, &many).await;
    ensure!(
        matches!(over, Err(Error::Invalid(_))),
        "oversized batch: {over:?}"
    );
    let first = many.get(..MAX_BATCH).unwrap_or_default();
    let full = provider
        .send_events(&ctx, first)
        .await
        .step("a batch of exactly MAX_BATCH")?;
    ensure!(
        full.accepted.len() == MAX_BATCH,
        "an oversized batch stored events, or a full one was not accepted: {} accepted",
        full.accepted.len()
    );
    Ok(())
}

/// Resending reports duplicates; a mixed batch accepts only the new events.
pub async fn resent_events_are_duplicates_not_new_usage(provider: Arc<dyn BillingProvider>) -> CheckResult {
    let ctx = system();
    let (_, sub) = subscribed(provider.as_ref()).await?;
    let batch: Vec<UsageEvent> = (0..3)
        .map(|_| event(&sub, metrics::INPUT_TOKENS, "tokens", Value::from(10)))
        .collect();
    let first = provider.send_events(&ctx, &batch).await.step("first send")?;
    accounted_once(&first, &batch)?;
    ensure!(first.accepted.len() == 3, "first send: {first:?}");
    let again = provider.send_events(&ctx, &batch).await.step("resend")?;
    accounted_once(&again, &batch)?;
    ensure!(
        again.duplicates.len() == 3 && again.accepted.is_empty(),
        "a resend must be all duplicates: {again:?}"
    );
    let mut mixed = batch.clone();
    let fresh = event(&sub, metrics::INPUT_TOKENS, "tokens", Value::from(1));
    mixed.insert(1, fresh.clone());
    let outcome = provider.send_events(&ctx, &mixed).await.step("mixed send")?;
    accounted_once(&outcome, &mixed)?;
    ensure!(
        outcome.accepted == vec![fresh.transaction_id.clone()] && outcome.duplicates.len() == 3,
        "a mixed batch must accept only the new event: {outcome:?}"
    );
    Ok(())
}

fn units(usage: &crate::model::CurrentUsage, code: &str) -> Option<(f64, u64)> {
    usage
        .charges
        .iter()
        .find(|c| c.metric_code == code)
        .and_then(|c| c.units.parse::<f64>().ok().map(|u| (u, c.events_count)))
}

/// Current usage: the count metric counts, the sum metrics sum (integers and decimal strings); duplicates add
/// nothing.
pub async fn current_usage_sums_accepted_events_per_metric(
    provider: Arc<dyn BillingProvider>,
) -> CheckResult {
    let ctx = system();
    let (cust, sub) = subscribed(provider.as_ref()).await?;
    let batch = vec![
        event(&sub, metrics::SESSIONS, "status", Value::from("completed")),
        event(&sub, metrics::SESSIONS, "status", Value::from("error")),
        event(&sub, metrics::OUTPUT_TOKENS, "tokens", Value::from(5)),
        event(&sub, metrics::OUTPUT_TOKENS, "tokens", Value::from(7)),
        event(&sub, metrics::AUDIO_SECONDS, "seconds", Value::from("1.25")),
        event(&sub, metrics::AUDIO_SECONDS, "seconds", Value::from("2.5")),
    ];
    provider.send_events(&ctx, &batch).await.step("send")?;
    provider.send_events(&ctx, &batch).await.step("resend")?;
    let usage = provider
        .current_usage(&ctx, &cust, &sub)
        .await
        .step("current_usage")?;
    ensure!(
        units(&usage, metrics::SESSIONS) == Some((2.0, 2)),
        "sessions: {usage:?}"
    );
    ensure!(
        units(&usage, metrics::OUTPUT_TOKENS) == Some((12.0, 2)),
        "output tokens: {usage:?}"
    );
    ensure!(
        units(&usage, metrics::AUDIO_SECONDS) == Some((3.75, 2)),
        "audio seconds: {usage:?}"
    );
    Ok(())
}

/// Unknown customer or subscription: `NotFound`.
pub async fn current_usage_of_unknown_customers_is_not_found(
    provider: Arc<dyn BillingProvider>,
) -> CheckResult {
    let ctx = system();
    let got = provider
        .current_usage(&ctx, &random(), &format!("sub_{}", random()))
        .await;
    ensure!(
        matches!(got, Err(Error::NotFound { .. })),
        "unknown customer: {got:?}"
    );
    let (cust, _) = subscribed(provider.as_ref()).await?;
    let got = provider
        .current_usage(&ctx, &cust, &format!("sub_{}", random()))
        .await;
    ensure!(
        matches!(got, Err(Error::NotFound { .. })),
        "unknown subscription: {got:?}"
    );
    Ok(())
}

/// A customer without invoices has an empty first page; page 0 is `Invalid`.
pub async fn invoices_of_a_new_customer_are_an_empty_page(provider: Arc<dyn BillingProvider>) -> CheckResult {
    let ctx = system();
    let (cust, _) = subscribed(provider.as_ref()).await?;
    let page = provider
        .list_invoices(&ctx, &cust, 1, 20)
        .await
        .step("list_invoices")?;
    ensure!(
        page.invoices.is_empty() && page.total_count == 0 && page.next_page.is_none(),
        "a new customer has no invoices: {page:?}"
    );
    let bad = provider.list_invoices(&ctx, &cust, 0, 20).await;
    ensure!(matches!(bad, Err(Error::Invalid(_))), "page 0: {bad:?}");
    Ok(())
}

fn usage_for(tenant: TenantId, n: usize) -> Vec<TenantUsage> {
    let sub = crate::model::subscription_id(tenant);
    (0..n)
        .map(|i| {
            let mut e = event(&sub, metrics::INPUT_TOKENS, "tokens", Value::from(i as u64 + 1));
            e.transaction_id = format!("{tenant}:{}:{i}", random());
            TenantUsage {
                tenant_id: tenant,
                event: e,
            }
        })
        .collect()
}

fn tenant() -> TenantId {
    TenantId::generate(&UuidV7Ids)
}

/// Recording twice adds nothing; the count of new entries is returned.
pub async fn recording_is_idempotent_on_transaction_id(store: Arc<dyn BillingStore>) -> CheckResult {
    let t = tenant();
    let ctx = scoped(t);
    let now = SystemClock.now();
    let usage = usage_for(t, 3);
    let added = store.record_usage(&ctx, &usage, now).await.step("record")?;
    ensure!(added == 3, "3 new entries, got {added}");
    let again = store.record_usage(&ctx, &usage, now).await.step("record again")?;
    ensure!(again == 0, "re-recording added {again}");
    let pending = store.pending_usage(&ctx, 10).await.step("pending")?;
    ensure!(pending.len() == 3, "3 pending, got {}", pending.len());
    let first = usage
        .first()
        .map(|u| u.event.clone())
        .unwrap_or_else(|| event("", "", "", Value::Null));
    let stored = store
        .usage_entry(&ctx, &first.transaction_id)
        .await
        .step("usage_entry")?;
    ensure!(
        stored.event == first && stored.state == OutboxState::Pending && stored.tenant_id == t,
        "entry must keep the event as recorded: {stored:?}"
    );
    Ok(())
}

/// Pending entries come oldest recorded first, at most `limit`.
pub async fn pending_is_oldest_first_and_limited(store: Arc<dyn BillingStore>) -> CheckResult {
    let t = tenant();
    let ctx = scoped(t);
    let usage = usage_for(t, 4);
    for one in &usage {
        store
            .record_usage(&ctx, std::slice::from_ref(one), SystemClock.now())
            .await
            .step("record")?;
    }
    let pending = store.pending_usage(&ctx, 3).await.step("pending")?;
    let got: Vec<&str> = pending.iter().map(|e| e.event.transaction_id.as_str()).collect();
    let want: Vec<&str> = usage
        .iter()
        .take(3)
        .map(|u| u.event.transaction_id.as_str())
        .collect();
    ensure!(got == want, "oldest first, limited: got {got:?}, want {want:?}");
    Ok(())
}

/// Sent and rejected entries leave `pending`; settling again changes nothing.
pub async fn settled_entries_leave_pending_for_good(store: Arc<dyn BillingStore>) -> CheckResult {
    let t = tenant();
    let ctx = scoped(t);
    let now = SystemClock.now();
    let usage = usage_for(t, 3);
    store.record_usage(&ctx, &usage, now).await.step("record")?;
    let ids: Vec<String> = usage.iter().map(|u| u.event.transaction_id.clone()).collect();
    let (a, b, c) = match ids.as_slice() {
        [a, b, c] => (a.clone(), b.clone(), c.clone()),
        _ => return Err("three ids".into()),
    };
    store
        .mark_sent(&ctx, &[a.clone(), format!("unknown:{}", random())], now)
        .await
        .step("mark_sent")?;
    let rejection = RejectedEvent {
        transaction_id: b.clone(),
        reason: "code: value_is_mandatory".into(),
    };
    store
        .mark_rejected(&ctx, std::slice::from_ref(&rejection), now)
        .await
        .step("mark_rejected")?;
    let pending = store.pending_usage(&ctx, 10).await.step("pending")?;
    let left: Vec<&str> = pending.iter().map(|e| e.event.transaction_id.as_str()).collect();
    ensure!(
        left == vec![c.as_str()],
        "only the unsettled entry stays pending: {left:?}"
    );
    let sent = store.usage_entry(&ctx, &a).await.step("entry a")?;
    ensure!(
        sent.state == OutboxState::Sent && sent.settled_at.is_some(),
        "sent entry: {sent:?}"
    );
    let rejected = store.usage_entry(&ctx, &b).await.step("entry b")?;
    ensure!(
        rejected.state == OutboxState::Rejected
            && rejected.last_error.as_deref() == Some("code: value_is_mandatory"),
        "rejected entry keeps its reason: {rejected:?}"
    );
    store
        .mark_rejected(
            &ctx,
            &[RejectedEvent {
                transaction_id: a.clone(),
                reason: "late".into(),
            }],
            now,
        )
        .await
        .step("reject a sent entry")?;
    store
        .mark_failed(&ctx, std::slice::from_ref(&a), "late failure")
        .await
        .step("fail a sent entry")?;
    let still = store.usage_entry(&ctx, &a).await.step("entry a again")?;
    ensure!(
        still.state == OutboxState::Sent && still.attempts == 0,
        "a settled entry must not change: {still:?}"
    );
    let again = store
        .record_usage(&ctx, &usage, now)
        .await
        .step("record settled again")?;
    ensure!(
        again == 0,
        "recording settled entries again must add nothing, added {again}"
    );
    Ok(())
}

/// `mark_failed` counts attempts and keeps the entry pending.
pub async fn failed_attempts_are_counted_and_stay_pending(store: Arc<dyn BillingStore>) -> CheckResult {
    let t = tenant();
    let ctx = scoped(t);
    let usage = usage_for(t, 1);
    store
        .record_usage(&ctx, &usage, SystemClock.now())
        .await
        .step("record")?;
    let id = usage
        .first()
        .map(|u| u.event.transaction_id.clone())
        .unwrap_or_default();
    for reason in ["502 bad gateway", "timeout"] {
        store
            .mark_failed(&ctx, std::slice::from_ref(&id), reason)
            .await
            .step("mark_failed")?;
    }
    let entry = store.usage_entry(&ctx, &id).await.step("entry")?;
    ensure!(
        entry.state == OutboxState::Pending
            && entry.attempts == 2
            && entry.last_error.as_deref() == Some("timeout"),
        "failed entry: {entry:?}"
    );
    let pending = store.pending_usage(&ctx, 10).await.step("pending")?;
    ensure!(pending.len() == 1, "a failed entry stays pending");
    Ok(())
}

/// A tenant's context sees only its entries and cannot record another's; a system context sees all.
pub async fn entries_are_scoped_to_their_tenant(store: Arc<dyn BillingStore>) -> CheckResult {
    let (a, b) = (tenant(), tenant());
    let now = SystemClock.now();
    let ua = usage_for(a, 1);
    let ub = usage_for(b, 1);
    store.record_usage(&scoped(a), &ua, now).await.step("record a")?;
    store
        .record_usage(&system(), &ub, now)
        .await
        .step("record b as system")?;
    let seen = store.pending_usage(&scoped(a), 10).await.step("pending a")?;
    ensure!(
        seen.iter().all(|e| e.tenant_id == a) && seen.len() == 1,
        "tenant a sees only its entry: {seen:?}"
    );
    let b_id = ub
        .first()
        .map(|u| u.event.transaction_id.clone())
        .unwrap_or_default();
    let hidden = store.usage_entry(&scoped(a), &b_id).await;
    ensure!(hidden.is_err(), "tenant a must not read b's entry: {hidden:?}");
    let cross = store.record_usage(&scoped(a), &usage_for(b, 1), now).await;
    ensure!(cross.is_err(), "tenant a must not record for b: {cross:?}");
    let all = store
        .pending_usage(&system(), 100_000)
        .await
        .step("pending system")?;
    let ids: BTreeSet<&str> = all.iter().map(|e| e.event.transaction_id.as_str()).collect();
    ensure!(
        ids.contains(b_id.as_str()),
        "a system context sees every tenant's entries"
    );
    Ok(())
}

/// `cursor` returns what `set_cursor` stored.
pub async fn cursors_round_trip(store: Arc<dyn BillingStore>) -> CheckResult {
    let ctx = system();
    let name = format!("conformance-{}", random());
    ensure!(
        store.cursor(&ctx, &name).await.step("cursor")?.is_none(),
        "a new cursor is unset"
    );
    let at = chrono::DateTime::from_timestamp(1_700_000_000, 123_000_000).unwrap_or_default();
    store.set_cursor(&ctx, &name, at).await.step("set")?;
    let later = at + chrono::TimeDelta::seconds(60);
    store.set_cursor(&ctx, &name, later).await.step("set again")?;
    let got = store.cursor(&ctx, &name).await.step("cursor")?;
    ensure!(got == Some(later), "cursor round trip: {got:?}");
    Ok(())
}

/// Concurrent claims of one key: exactly one wins; after a release it can be claimed again.
pub async fn webhook_keys_are_claimed_once_until_released(store: Arc<dyn BillingStore>) -> CheckResult {
    let key = random();
    let now = SystemClock.now();
    let claims = (0..8).map(|_| {
        let store = Arc::clone(&store);
        let key = key.clone();
        tokio::spawn(async move { store.claim_webhook(&system(), &key, now).await })
    });
    let mut wins = 0;
    for claim in claims {
        if claim.await.step("join")?.step("claim")? {
            wins += 1;
        }
    }
    ensure!(wins == 1, "exactly one concurrent claim wins, {wins} did");
    store.release_webhook(&system(), &key).await.step("release")?;
    ensure!(
        store.claim_webhook(&system(), &key, now).await.step("reclaim")?,
        "a released key can be claimed again"
    );
    Ok(())
}
