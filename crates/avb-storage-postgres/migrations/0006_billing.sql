-- Billing sync state (avb-billing's BillingStore): the usage outbox, the sync's cursors and the webhook
-- deliveries already claimed.
--
-- The outbox is tenant-scoped (row-level security like every tenant table): an entry is keyed by its
-- deterministic transaction id, so recording the same usage twice adds nothing; `seq` keeps insertion order
-- for the flush (oldest first). Tenant ids are not foreign keys: usage of a tenant deleted later is still
-- billed. Cursors and webhook claims are platform-level and not tenant-scoped.

CREATE TABLE billing_usage_outbox (
    transaction_id           text PRIMARY KEY,
    seq                      bigint GENERATED ALWAYS AS IDENTITY,
    tenant_id                uuid NOT NULL,
    external_subscription_id text NOT NULL,
    code                     text NOT NULL,
    "timestamp"              bigint NOT NULL,
    properties               jsonb NOT NULL,
    state                    text NOT NULL CHECK (state IN ('pending', 'sent', 'rejected')),
    attempts                 bigint NOT NULL DEFAULT 0 CHECK (attempts BETWEEN 0 AND 4294967295),
    last_error               text,
    recorded_at              timestamptz NOT NULL,
    settled_at               timestamptz,
    CHECK ((state = 'pending') = (settled_at IS NULL))
);
CREATE INDEX billing_usage_outbox_pending_idx ON billing_usage_outbox (seq) WHERE state = 'pending';
CREATE INDEX billing_usage_outbox_tenant_idx ON billing_usage_outbox (tenant_id, seq);

ALTER TABLE billing_usage_outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE billing_usage_outbox FORCE ROW LEVEL SECURITY;
CREATE POLICY billing_usage_outbox_tenant_isolation ON billing_usage_outbox
    USING (avb_scope_visible(tenant_id)) WITH CHECK (avb_scope_visible(tenant_id));

CREATE TABLE billing_cursors (
    name  text PRIMARY KEY,
    value timestamptz NOT NULL
);

CREATE TABLE billing_webhooks (
    unique_key text PRIMARY KEY,
    claimed_at timestamptz NOT NULL
);

GRANT SELECT, INSERT, UPDATE ON billing_usage_outbox TO avb_app;
GRANT SELECT, INSERT, UPDATE ON billing_cursors TO avb_app;
GRANT SELECT, INSERT, DELETE ON billing_webhooks TO avb_app;
DO $$
BEGIN
    EXECUTE format('GRANT USAGE ON SEQUENCE %s TO avb_app',
                   pg_get_serial_sequence(quote_ident(current_schema()) || '.billing_usage_outbox', 'seq'));
END
$$;
