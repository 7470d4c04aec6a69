-- Audit trail (spec §9.4): one hash chain per tenant (tenant_id NULL = the platform chain). `audit_chains` holds
-- each chain's head; an append locks that row until its transaction ends, so chains never fork, and a rolled
-- back append leaves no gap. The log is append-only: the trigger below refuses UPDATE, DELETE and TRUNCATE for
-- every role (retention jobs must disable it explicitly as the owner), and the application role is granted only
-- SELECT and INSERT (0005). The JSON columns are `json`, not `jsonb`: they keep the exact text that was
-- hashed (key order included), whatever map type serde_json is built with.

CREATE TABLE audit_logs (
    id            uuid PRIMARY KEY,
    "timestamp"   timestamptz NOT NULL,
    actor_id      uuid,
    actor_email   text NOT NULL,
    actor_type    text NOT NULL,
    tenant_id     uuid,
    ip_address    inet,
    user_agent    text NOT NULL,
    action        text NOT NULL CHECK (action IN ('create', 'update', 'delete', 'login', 'logout', 'api_call',
                                                  'permission_change', 'settings_change', 'billing_event')),
    resource_type text NOT NULL,
    resource_id   text NOT NULL,
    description   text NOT NULL,
    old_values    json,
    new_values    json,
    metadata      json NOT NULL,
    request_id    text NOT NULL,
    sequence      bigint NOT NULL CHECK (sequence >= 1),
    prev_hash     text NOT NULL,
    hash          text NOT NULL,
    CONSTRAINT audit_logs_chain_key UNIQUE NULLS NOT DISTINCT (tenant_id, sequence)
);
CREATE INDEX audit_logs_tenant_time_idx ON audit_logs (tenant_id, "timestamp");
CREATE INDEX audit_logs_actor_time_idx ON audit_logs (actor_id, "timestamp");
CREATE INDEX audit_logs_resource_idx ON audit_logs (resource_type, resource_id);
CREATE INDEX audit_logs_action_idx ON audit_logs (action);
CREATE INDEX audit_logs_request_idx ON audit_logs (request_id);

-- chain_id is the tenant id, or the nil UUID for the platform chain.
CREATE TABLE audit_chains (
    chain_id  uuid PRIMARY KEY,
    tenant_id uuid,
    sequence  bigint NOT NULL CHECK (sequence >= 0),
    hash      text NOT NULL,
    CHECK (chain_id = coalesce(tenant_id, '00000000-0000-0000-0000-000000000000'))
);

CREATE FUNCTION avb_audit_logs_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_logs is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_logs_append_only BEFORE UPDATE OR DELETE ON audit_logs
    FOR EACH ROW EXECUTE FUNCTION avb_audit_logs_append_only();
CREATE TRIGGER audit_logs_no_truncate BEFORE TRUNCATE ON audit_logs
    FOR EACH STATEMENT EXECUTE FUNCTION avb_audit_logs_append_only();
