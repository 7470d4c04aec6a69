//! Shared test doubles: a provider that fails on cue and records every batch, and a tenancy world.

use async_trait::async_trait;
use avb_billing::adapters::memory::MemoryBilling;
use avb_billing::model::{
    BatchOutcome, BillingCustomer, CurrentUsage, InvoicePage, PlanAssignment, Subscription, UsageEvent,
};
use avb_billing::provider::BillingProvider;
use avb_billing::store::BillingStore;
use avb_billing::sync::BillingSync;
use avb_billing::{Error, Result};
use avb_core::{Ctx, ManualClock, RequestId, TenantId, UuidV7Ids};
use avb_storage_memory::{MemoryBillingStore, MemoryStore};
use avb_tenancy::model::{Session, SessionStatus, Tenant};
use avb_tenancy::service::TenancyDeps;
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// Wraps a provider: pops a scripted error before each call while any are queued, and records call sizes.
#[derive(Debug)]
pub struct Scripted {
    pub inner: Arc<dyn BillingProvider>,
    pub errors: Mutex<VecDeque<Error>>,
    pub calls: Mutex<Vec<usize>>,
}

impl Scripted {
    pub fn new(inner: Arc<dyn BillingProvider>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            errors: Mutex::new(VecDeque::new()),
            calls: Mutex::new(Vec::new()),
        })
    }

    pub fn fail_with(&self, err: Error) {
        self.errors.lock().unwrap().push_back(err);
    }

    pub fn calls(&self) -> Vec<usize> {
        self.calls.lock().unwrap().clone()
    }

    fn next(&self, size: usize) -> Result<()> {
        self.calls.lock().unwrap().push(size);
        match self.errors.lock().unwrap().pop_front() {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl BillingProvider for Scripted {
    async fn upsert_customer(&self, ctx: &Ctx, customer: &BillingCustomer) -> Result<()> {
        self.next(1)?;
        self.inner.upsert_customer(ctx, customer).await
    }
    async fn assign_plan(&self, ctx: &Ctx, assignment: &PlanAssignment) -> Result<Subscription> {
        self.next(1)?;
        self.inner.assign_plan(ctx, assignment).await
    }
    async fn send_events(&self, ctx: &Ctx, events: &[UsageEvent]) -> Result<BatchOutcome> {
        self.next(events.len())?;
        self.inner.send_events(ctx, events).await
    }
    async fn current_usage(&self, ctx: &Ctx, customer: &str, subscription: &str) -> Result<CurrentUsage> {
        self.next(1)?;
        self.inner.current_usage(ctx, customer, subscription).await
    }
    async fn list_invoices(
        &self,
        ctx: &Ctx,
        customer: &str,
        page: u32,
        per_page: u32,
    ) -> Result<InvoicePage> {
        self.next(1)?;
        self.inner.list_invoices(ctx, customer, page, per_page).await
    }
}

pub fn system() -> Ctx {
    Ctx::system(RequestId::generate(&UuidV7Ids), "billing-test", None)
}

pub fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000 + seconds, 0).unwrap()
}

/// Tenancy in memory with a manual clock, the memory provider behind a [`Scripted`] wrapper, and the sync.
pub struct World {
    pub clock: Arc<ManualClock>,
    pub tenancy: TenancyDeps,
    pub memory: MemoryBilling,
    pub provider: Arc<Scripted>,
    pub store: MemoryBillingStore,
    pub sync: BillingSync,
}

impl World {
    pub fn new() -> Self {
        let clock = Arc::new(ManualClock::new(at(0)));
        let tenancy = TenancyDeps::new(Arc::new(MemoryStore::new())).with_clock(clock.clone());
        let memory = MemoryBilling::new();
        let provider = Scripted::new(Arc::new(memory.clone()));
        let store = MemoryBillingStore::new();
        let sync = BillingSync::new(
            provider.clone(),
            Arc::new(store.clone()) as Arc<dyn BillingStore>,
            tenancy.clone(),
        );
        Self {
            clock,
            tenancy,
            memory,
            provider,
            store,
            sync,
        }
    }

    pub async fn tenant(&self) -> Tenant {
        let tenant = avb_tenancy::conformance::fixtures::tenant();
        self.tenancy
            .write(&system(), move |uow| {
                Box::pin(async move { Ok(uow.tenants().insert(tenant).await?) })
            })
            .await
            .unwrap()
    }

    pub async fn get_tenant(&self, id: TenantId) -> Tenant {
        self.tenancy
            .read(&system(), move |uow| {
                Box::pin(async move { Ok(uow.tenants().get(id).await?) })
            })
            .await
            .unwrap()
    }

    pub async fn update_tenant(&self, tenant: Tenant) -> Tenant {
        self.tenancy
            .write(&system(), move |uow| {
                Box::pin(async move { Ok(uow.tenants().update(tenant).await?) })
            })
            .await
            .unwrap()
    }

    /// A session created at `created` (seconds from the epoch of [`at`]); `ended` with usage makes it final.
    pub async fn session(
        &self,
        tenant: TenantId,
        created: i64,
        ended: Option<(i64, u64, u64, f64)>,
    ) -> Session {
        let mut s = avb_tenancy::conformance::fixtures::session(tenant, None, None, 0);
        s.created_at = at(created);
        s.updated_at = at(created);
        s.status = SessionStatus::Active;
        s.started_at = Some(at(created));
        if let Some((end, input, output, audio)) = ended {
            s.status = SessionStatus::Completed;
            s.ended_at = Some(at(end));
            s.input_tokens = input;
            s.output_tokens = output;
            s.audio_duration_seconds = audio;
        }
        self.tenancy
            .write(&system(), move |uow| {
                Box::pin(async move { Ok(uow.sessions().insert(s).await?) })
            })
            .await
            .unwrap()
    }

    /// Ends a stored session with usage.
    pub async fn end(&self, session: Session, end: i64, input: u64) -> Session {
        let mut s = session;
        s.status = SessionStatus::Completed;
        s.ended_at = Some(at(end));
        s.updated_at = at(end);
        s.input_tokens = input;
        self.tenancy
            .write(&system(), move |uow| {
                Box::pin(async move { Ok(uow.sessions().update(s).await?) })
            })
            .await
            .unwrap()
    }

    pub fn advance(&self, seconds: i64) {
        self.clock.advance(TimeDelta::seconds(seconds));
    }
}
