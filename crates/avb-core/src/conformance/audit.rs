//! Conformance checks for audit adapters ([`AuditSink`] + [`AuditReader`] over one trail): one `pub async fn`
//! per contract point, and [`audit_conformance!`](crate::audit_conformance) to run them all as `#[tokio::test]`s.
//!
//! Every check writes to fresh random tenants or tags its entries with its own request id, so it ignores
//! whatever else the trail holds.

use crate::audit::{
    AuditAction, AuditEntry, AuditFilter, AuditReader, AuditSink, GENESIS_HASH, NewAuditEntry, verify_chain,
};
use crate::{
    ClientInfo, Ctx, Error, PageRequest, Principal, RequestId, Role, TenantId, UserId, UserPrincipal,
    UuidV7Ids,
};
use std::fmt::Display;
use std::sync::Arc;

/// The outcome of one check: `Err` describes the first broken contract point.
pub type CheckResult = Result<(), String>;

/// The two halves of the audit port under test; they must share one trail.
#[derive(Debug, Clone)]
pub struct AuditPorts {
    /// Appends.
    pub sink: Arc<dyn AuditSink>,
    /// Reads.
    pub reader: Arc<dyn AuditReader>,
}

impl<S: AuditSink + AuditReader> From<Arc<S>> for AuditPorts {
    fn from(adapter: Arc<S>) -> Self {
        Self {
            sink: Arc::clone(&adapter) as Arc<dyn AuditSink>,
            reader: adapter,
        }
    }
}

/// Adds the step that failed to an adapter error.
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

/// Runs every check of this module as its own `#[tokio::test]` against the adapter made by `$factory`, an
/// expression whose `.await` yields something `Into<AuditPorts>` (an `Arc` of a type implementing both ports,
/// or an [`AuditPorts`]). The calling crate needs `tokio` (with `macros` and `rt-multi-thread`) as a
/// dev-dependency.
///
/// ```text
/// avb_core::audit_conformance!(async { std::sync::Arc::new(MemoryStore::new()) });
/// ```
#[macro_export]
macro_rules! audit_conformance {
    ($factory:expr) => {
        $crate::audit_conformance!(@tests $factory;
            record_fills_actor_client_and_request_from_the_context,
            an_explicit_tenant_chooses_the_chain,
            appends_link_a_chain_that_verifies,
            concurrent_appends_never_fork_a_chain,
            each_tenant_has_its_own_chain,
            tampering_with_a_chain_is_detected,
            query_is_newest_first_with_totals_and_pages,
            query_applies_every_filter,
            reads_are_scoped_to_the_context,
            appends_outside_the_scope_are_refused,
        );
    };
    (@tests $factory:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let ports: $crate::conformance::audit::AuditPorts = $factory.await.into();
                if let Err(failure) = $crate::conformance::audit::$check(ports).await {
                    panic!("{}", failure);
                }
            }
        )*
    };
}

fn request_id() -> RequestId {
    RequestId::generate(&UuidV7Ids)
}

fn system() -> Ctx {
    Ctx::system(request_id(), "conformance", None)
}

fn random_tenant() -> TenantId {
    TenantId(uuid::Uuid::new_v4())
}

/// A tenant administrator of `tenant`, calling from a known client.
fn member(tenant: TenantId) -> Ctx {
    let user = UserPrincipal {
        user_id: UserId(uuid::Uuid::new_v4()),
        tenant_id: Some(tenant),
        email: "auditor@example.com".into(),
        roles: [Role::Admin].into(),
        external_id: None,
    };
    let client = ClientInfo {
        ip: Some([192, 0, 2, 7].into()),
        user_agent: Some("conformance/1".into()),
    };
    Ctx::new(request_id(), Principal::User(user))
        .with_tenant(Some(tenant))
        .with_client(client)
}

fn entry(n: usize) -> NewAuditEntry {
    NewAuditEntry::new(AuditAction::Update, "project", n).description(format!("change {n}"))
}

async fn record_many(ports: &AuditPorts, ctx: &Ctx, count: usize) -> Result<Vec<AuditEntry>, String> {
    let mut recorded = Vec::new();
    for n in 0..count {
        recorded.push(ports.sink.record(ctx, entry(n)).await.step("record")?);
    }
    Ok(recorded)
}

/// `record` takes actor, client, request id and tenant from the context and returns the sealed entry, first
/// of its chain, with a hash over its content.
pub async fn record_fills_actor_client_and_request_from_the_context(ports: AuditPorts) -> CheckResult {
    let tenant = random_tenant();
    let ctx = member(tenant);
    let ip = ctx.client().ip;
    let ctx = ctx.with_client(ClientInfo {
        ip,
        user_agent: Some("u".repeat(600)),
    });
    let new = entry(1)
        .values(None, Some(serde_json::json!({ "name": "n" })))
        .metadata(serde_json::json!({ "k": 1 }));
    let sealed = ports.sink.record(&ctx, new.clone()).await.step("record")?;
    ensure!(
        sealed.actor_id == ctx.principal().actor_id(),
        "actor_id {:?}",
        sealed.actor_id
    );
    ensure!(
        sealed.actor_email == "auditor@example.com",
        "actor_email {:?}",
        sealed.actor_email
    );
    ensure!(sealed.actor_type == "user", "actor_type {:?}", sealed.actor_type);
    ensure!(
        sealed.tenant_id == Some(tenant),
        "tenant {:?} is not the context's",
        sealed.tenant_id
    );
    ensure!(sealed.ip_address == ctx.client().ip, "ip {:?}", sealed.ip_address);
    ensure!(
        sealed.user_agent.chars().count() == 500,
        "user agent not cut to 500 chars"
    );
    ensure!(
        sealed.request_id == ctx.request_id().as_str(),
        "request id {:?}",
        sealed.request_id
    );
    ensure!(
        sealed.action == new.action && sealed.resource_type == new.resource_type,
        "action or resource lost"
    );
    ensure!(
        sealed.resource_id == new.resource_id && sealed.description == new.description,
        "resource lost"
    );
    ensure!(
        sealed.old_values == new.old_values && sealed.new_values == new.new_values,
        "values lost"
    );
    ensure!(sealed.metadata == new.metadata, "metadata lost");
    ensure!(
        sealed.sequence == 1 && sealed.prev_hash == GENESIS_HASH,
        "a new chain starts at {}",
        sealed.sequence
    );
    ensure!(
        sealed.hash == sealed.compute_hash(),
        "the returned hash does not match the content"
    );
    let chain = ports.reader.chain(&ctx, Some(tenant)).await.step("chain")?;
    ensure!(
        chain == vec![sealed],
        "the stored chain differs from what record returned: {chain:?}"
    );
    Ok(())
}

/// An entry naming a tenant goes to that tenant's chain even from a context without one; an entry without
/// tenant from such a context goes to the platform chain.
pub async fn an_explicit_tenant_chooses_the_chain(ports: AuditPorts) -> CheckResult {
    let tenant = random_tenant();
    let ctx = system();
    let sealed = ports
        .sink
        .record(&ctx, entry(1).tenant(tenant))
        .await
        .step("record for tenant")?;
    ensure!(
        sealed.tenant_id == Some(tenant),
        "explicit tenant ignored: {:?}",
        sealed.tenant_id
    );
    let chain = ports.reader.chain(&ctx, Some(tenant)).await.step("chain")?;
    ensure!(
        chain.iter().map(|e| e.id).eq([sealed.id]),
        "the entry is not alone in its tenant's chain"
    );
    let platform = ports
        .sink
        .record(&ctx, entry(2))
        .await
        .step("record platform entry")?;
    ensure!(
        platform.tenant_id.is_none(),
        "platform entry got tenant {:?}",
        platform.tenant_id
    );
    let chain = ports.reader.chain(&ctx, None).await.step("platform chain")?;
    ensure!(
        chain.iter().any(|e| e.id == platform.id),
        "platform entry missing from the platform chain"
    );
    verify_chain(&chain).step("platform chain")?;
    Ok(())
}

/// Consecutive appends get sequence 1, 2, 3 … with `prev_hash` linking each to the previous, and `chain`
/// returns them in order, accepted by `verify_chain`.
pub async fn appends_link_a_chain_that_verifies(ports: AuditPorts) -> CheckResult {
    let tenant = random_tenant();
    let ctx = member(tenant);
    let recorded = record_many(&ports, &ctx, 5).await?;
    for (n, pair) in recorded.windows(2).enumerate() {
        if let [prev, next] = pair {
            ensure!(next.sequence == prev.sequence + 1, "sequence gap after entry {n}");
            ensure!(
                next.prev_hash == prev.hash,
                "entry {} does not link to its predecessor",
                next.sequence
            );
        }
    }
    let chain = ports.reader.chain(&ctx, Some(tenant)).await.step("chain")?;
    ensure!(chain == recorded, "chain differs from the recorded entries");
    verify_chain(&chain).step("verify")?;
    Ok(())
}

/// Concurrent appends to one chain serialise: the chain holds every entry once, without gaps, and verifies.
pub async fn concurrent_appends_never_fork_a_chain(ports: AuditPorts) -> CheckResult {
    let tenant = random_tenant();
    let tasks = (0..24).map(|n| {
        let sink = Arc::clone(&ports.sink);
        tokio::spawn(async move { sink.record(&member(tenant), entry(n)).await })
    });
    let mut ids = Vec::new();
    for task in futures::future::join_all(tasks).await {
        ids.push(task.step("append task")?.step("record")?.id);
    }
    let chain = ports
        .reader
        .chain(&member(tenant), Some(tenant))
        .await
        .step("chain")?;
    ensure!(
        chain.len() == ids.len(),
        "{} appends left {} entries",
        ids.len(),
        chain.len()
    );
    ensure!(
        ids.iter().all(|id| chain.iter().any(|e| e.id == *id)),
        "an appended entry is missing"
    );
    verify_chain(&chain).step("verify after concurrent appends")?;
    Ok(())
}

/// Chains are per tenant: interleaved appends for two tenants give two chains that each start at 1.
pub async fn each_tenant_has_its_own_chain(ports: AuditPorts) -> CheckResult {
    let (a, b) = (random_tenant(), random_tenant());
    for n in 0..3 {
        ports
            .sink
            .record(&member(a), entry(n))
            .await
            .step("record for a")?;
        ports
            .sink
            .record(&member(b), entry(n))
            .await
            .step("record for b")?;
    }
    for tenant in [a, b] {
        let chain = ports
            .reader
            .chain(&member(tenant), Some(tenant))
            .await
            .step("chain")?;
        ensure!(
            chain.len() == 3,
            "tenant chain has {} entries instead of 3",
            chain.len()
        );
        ensure!(
            chain.iter().all(|e| e.tenant_id == Some(tenant)),
            "a chain holds another tenant's entry"
        );
        verify_chain(&chain).step("verify")?;
    }
    Ok(())
}

/// The stored hashes are real: editing, dropping or reordering entries of a stored chain breaks verification.
pub async fn tampering_with_a_chain_is_detected(ports: AuditPorts) -> CheckResult {
    let tenant = random_tenant();
    let ctx = member(tenant);
    record_many(&ports, &ctx, 3).await?;
    let chain = ports.reader.chain(&ctx, Some(tenant)).await.step("chain")?;
    ensure!(chain.len() == 3, "three appends left {} entries", chain.len());
    verify_chain(&chain).step("untouched chain")?;

    let mut edited = chain.clone();
    if let Some(e) = edited.get_mut(1) {
        e.description = "nothing happened".into();
    }
    let broken = verify_chain(&edited);
    ensure!(
        broken.as_ref().is_err_and(|b| b.sequence == 2),
        "an edited entry went unnoticed: {broken:?}"
    );

    let mut rehashed = chain.clone();
    if let Some(e) = rehashed.get_mut(1) {
        e.new_values = Some(serde_json::json!({ "forged": true }));
        e.hash = e.compute_hash();
    }
    let broken = verify_chain(&rehashed);
    ensure!(
        broken.as_ref().is_err_and(|b| b.sequence == 3),
        "a re-hashed forgery went unnoticed: {broken:?}"
    );

    let mut dropped = chain.clone();
    dropped.remove(1);
    ensure!(verify_chain(&dropped).is_err(), "a removed entry went unnoticed");

    let mut reordered = chain;
    reordered.swap(1, 2);
    ensure!(
        verify_chain(&reordered).is_err(),
        "reordered entries went unnoticed"
    );
    Ok(())
}

/// `query` lists newest first (timestamp, then sequence) with the total of all matches, paginated.
pub async fn query_is_newest_first_with_totals_and_pages(ports: AuditPorts) -> CheckResult {
    let tenant = random_tenant();
    let ctx = member(tenant);
    let recorded = record_many(&ports, &ctx, 5).await?;
    let filter = AuditFilter {
        request_id: Some(ctx.request_id().clone()),
        ..Default::default()
    };
    let all = ports
        .reader
        .query(&ctx, &filter, PageRequest::default())
        .await
        .step("query")?;
    ensure!(
        all.total == 5 && all.items.len() == 5,
        "query found {} of 5 entries",
        all.total
    );
    let newest_first = all.items.windows(2).all(|pair| match pair {
        [a, b] => (a.timestamp, a.sequence) > (b.timestamp, b.sequence),
        _ => true,
    });
    ensure!(newest_first, "entries are not newest first");
    ensure!(
        all.items
            .iter()
            .map(|e| e.id)
            .eq(recorded.iter().rev().map(|e| e.id)),
        "not in reverse append order"
    );
    let page = PageRequest::new(Some(2), Some(2)).step("page request")?;
    let second = ports.reader.query(&ctx, &filter, page).await.step("query page")?;
    ensure!(second.total == 5, "a page reports total {}", second.total);
    ensure!(
        second.items == all.items.get(2..4).unwrap_or_default(),
        "page 2 of 2 is not items 3 and 4"
    );
    Ok(())
}

/// Each [`AuditFilter`] field narrows `query`.
pub async fn query_applies_every_filter(ports: AuditPorts) -> CheckResult {
    let tenant = random_tenant();
    let ctx = member(tenant);
    let created = ports
        .sink
        .record(&ctx, NewAuditEntry::new(AuditAction::Create, "theme", "t-1"))
        .await;
    let created = created.step("record create")?;
    let login = ports
        .sink
        .record(&ctx, NewAuditEntry::new(AuditAction::Login, "user", "u-1"))
        .await;
    let login = login.step("record login")?;
    let other = member(tenant);
    let foreign = ports
        .sink
        .record(&other, NewAuditEntry::new(AuditAction::Create, "user", "u-1"))
        .await;
    let foreign = foreign.step("record by another actor")?;
    let mine = |f: AuditFilter| AuditFilter {
        request_id: Some(ctx.request_id().clone()),
        ..f
    };
    let cases = [
        (
            "action",
            mine(AuditFilter {
                action: Some(AuditAction::Login),
                ..Default::default()
            }),
            vec![login.id],
        ),
        (
            "resource_type",
            mine(AuditFilter {
                resource_type: Some("theme".into()),
                ..Default::default()
            }),
            vec![created.id],
        ),
        (
            "resource_id",
            mine(AuditFilter {
                resource_id: Some("u-1".into()),
                ..Default::default()
            }),
            vec![login.id],
        ),
        (
            "from",
            mine(AuditFilter {
                from: Some(login.timestamp),
                ..Default::default()
            }),
            vec![login.id],
        ),
        (
            "to",
            mine(AuditFilter {
                to: Some(created.timestamp),
                ..Default::default()
            }),
            vec![],
        ),
        (
            "actor_id",
            AuditFilter {
                actor_id: other.principal().actor_id(),
                ..Default::default()
            },
            vec![foreign.id],
        ),
    ];
    for (name, filter, expected) in cases {
        let found = ports
            .reader
            .query(&ctx, &filter, PageRequest::default())
            .await
            .step(name)?;
        let ids: Vec<_> = found.items.iter().map(|e| e.id).collect();
        // `from` is inclusive, so with equal timestamps the create entry legitimately matches too.
        let tolerated = name == "from" && created.timestamp == login.timestamp && ids.len() == 2;
        ensure!(
            ids == expected || tolerated,
            "filter {name} found {ids:?}, expected {expected:?}"
        );
        ensure!(
            found.total == ids.len() as u64 || tolerated,
            "filter {name}: total {}",
            found.total
        );
    }
    Ok(())
}

/// A tenant context queries only its own tenant's entries and cannot read another tenant's (or the
/// platform's) chain; a cross-tenant context sees them all.
pub async fn reads_are_scoped_to_the_context(ports: AuditPorts) -> CheckResult {
    let (a, b) = (random_tenant(), random_tenant());
    let shared_request = request_id();
    let ctx_a = Ctx::new(shared_request.clone(), member(a).principal().clone()).with_tenant(Some(a));
    let ctx_b = Ctx::new(shared_request.clone(), member(b).principal().clone()).with_tenant(Some(b));
    let admin = Ctx::system(shared_request.clone(), "conformance", None);
    let of_a = ports.sink.record(&ctx_a, entry(1)).await.step("record for a")?;
    let of_b = ports.sink.record(&ctx_b, entry(2)).await.step("record for b")?;
    let platform = ports
        .sink
        .record(&admin, entry(3))
        .await
        .step("record platform entry")?;
    let filter = AuditFilter {
        request_id: Some(shared_request),
        ..Default::default()
    };

    let seen_by_a = ports
        .reader
        .query(&ctx_a, &filter, PageRequest::default())
        .await
        .step("query as a")?;
    ensure!(
        seen_by_a.items.iter().map(|e| e.id).eq([of_a.id]),
        "tenant a saw {:?}",
        seen_by_a.items
    );
    ensure!(
        seen_by_a.total == 1,
        "tenant a's total counts other tenants' entries: {}",
        seen_by_a.total
    );
    let seen_by_admin = ports
        .reader
        .query(&admin, &filter, PageRequest::default())
        .await
        .step("query as admin")?;
    for id in [of_a.id, of_b.id, platform.id] {
        ensure!(
            seen_by_admin.items.iter().any(|e| e.id == id),
            "a cross-tenant query misses {id}"
        );
    }
    for chain in [Some(b), None] {
        match ports.reader.chain(&ctx_a, chain).await {
            Ok(entries) => ensure!(entries.is_empty(), "tenant a read chain {chain:?}: {entries:?}"),
            Err(Error::NotFound { .. }) => {}
            Err(other) => return Err(format!("chain {chain:?} as tenant a: {other}")),
        }
    }
    Ok(())
}

/// A tenant context cannot append to another tenant's chain; nothing is written.
pub async fn appends_outside_the_scope_are_refused(ports: AuditPorts) -> CheckResult {
    let (a, b) = (random_tenant(), random_tenant());
    let refused = ports.sink.record(&member(a), entry(1).tenant(b)).await;
    ensure!(
        matches!(refused, Err(Error::NotFound { .. })),
        "tenant a appended to b's chain: {refused:?}"
    );
    let chain = ports.reader.chain(&system(), Some(b)).await.step("chain of b")?;
    ensure!(chain.is_empty(), "a refused append left {} entries", chain.len());
    Ok(())
}
