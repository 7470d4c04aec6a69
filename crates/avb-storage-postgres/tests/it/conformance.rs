//! The shared suites, unchanged, against [`PgStore`](avb_storage_postgres::PgStore). No check is skipped.
// Marks the helpers as test code for clippy's allow-*-in-tests settings.
#![cfg(test)]

mod tenancy {
    avb_tenancy::tenancy_store_conformance!(crate::support::store());
}

mod audit {
    avb_core::audit_conformance!(crate::support::store());
}

mod jobs {
    avb_core::job_queue_conformance!(async {
        crate::support::store().await as std::sync::Arc<dyn avb_core::jobs::JobQueue>
    });
}

mod relationships {
    avb_auth::relationship_store_conformance!(async {
        crate::support::store().await as std::sync::Arc<dyn avb_auth::authorizer::RelationshipStore>
    });
}

mod billing {
    avb_billing::billing_store_conformance!(async {
        crate::support::store().await as std::sync::Arc<dyn avb_billing::store::BillingStore>
    });
}
