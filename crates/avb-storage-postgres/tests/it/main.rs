//! One test binary for the PostgreSQL adapters: the shared conformance suites (the contract the memory
//! adapter meets too) and the Postgres-only checks (row-level security, append-only audit, migrations, pool
//! settings, error mapping). Every test runs in a fresh schema of the test database.

mod support;

mod conformance;
mod differential;
mod isolation;
mod store;
