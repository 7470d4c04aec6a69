-- Background jobs (spec §11): an at-least-once queue with leases. Workers reserve with FOR UPDATE SKIP LOCKED,
-- so concurrent workers never wait for each other or take the same job. Jobs enqueued inside a unit of work are
-- rows of its transaction (transactional outbox): invisible to workers until it commits.

CREATE TABLE jobs (
    id           uuid PRIMARY KEY,
    kind         text NOT NULL,
    tenant_id    uuid,
    payload      jsonb NOT NULL,
    state        text NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    attempts     bigint NOT NULL CHECK (attempts >= 0),
    max_attempts bigint NOT NULL CHECK (max_attempts BETWEEN 1 AND 4294967295),
    run_at       timestamptz NOT NULL,
    lease_until  timestamptz,
    last_error   text,
    created_at   timestamptz NOT NULL
);
CREATE INDEX jobs_queued_idx ON jobs (kind, run_at) WHERE state = 'queued';
CREATE INDEX jobs_running_idx ON jobs (kind, lease_until) WHERE state = 'running';
CREATE INDEX jobs_tenant_idx ON jobs (tenant_id);
