-- Tenancy records (spec §5.1, §9): one table per record type, real columns for everything that filters,
-- uniqueness, references and ordering use; JSONB for free-form JSON. Versions are owned by the adapter.
--
-- Every tenant-owned table carries `tenant_id` and a UNIQUE (tenant_id, id), so references are composite foreign
-- keys: a row can only ever point at a row of its own tenant. Delete rules follow the Repo contract:
--   project  -> its api_keys are deleted, its sessions detached (project_id and, for deleted keys, api_key_id);
--   session  -> its events are deleted;
--   user     -> their notifications are deleted;
--   anything else still referenced cannot be deleted (foreign_key_violation -> conflict).

CREATE TABLE tenants (
    id                      uuid PRIMARY KEY,
    name                    text NOT NULL,
    slug                    text NOT NULL,
    tier                    text NOT NULL CHECK (tier IN ('free', 'starter', 'pro', 'enterprise')),
    status                  text NOT NULL CHECK (status IN ('active', 'suspended', 'pending', 'deleted')),
    billing_id              text NOT NULL DEFAULT '',
    keycloak_group_id       text NOT NULL DEFAULT '',
    settings                jsonb NOT NULL DEFAULT '{}',
    max_users               bigint NOT NULL CHECK (max_users BETWEEN 0 AND 4294967295),
    max_projects            bigint NOT NULL CHECK (max_projects BETWEEN 0 AND 4294967295),
    max_api_keys            bigint NOT NULL CHECK (max_api_keys BETWEEN 0 AND 4294967295),
    max_sessions_per_month  bigint NOT NULL CHECK (max_sessions_per_month BETWEEN 0 AND 4294967295),
    created_at              timestamptz NOT NULL,
    updated_at              timestamptz NOT NULL,
    activated_at            timestamptz,
    suspended_at            timestamptz,
    deleted_at              timestamptz,
    version                 bigint NOT NULL CHECK (version >= 1),
    CONSTRAINT tenants_slug_key UNIQUE (slug)
);
CREATE INDEX tenants_status_idx ON tenants (status);
CREATE INDEX tenants_tier_idx ON tenants (tier);
CREATE INDEX tenants_billing_id_idx ON tenants (billing_id);
CREATE INDEX tenants_created_idx ON tenants (created_at, id);

CREATE TABLE tenant_settings (
    tenant_id                   uuid PRIMARY KEY CONSTRAINT tenant_settings_tenant_fk REFERENCES tenants (id),
    logo_url                    text NOT NULL,
    primary_color               text NOT NULL,
    default_voice_provider      text NOT NULL CHECK (default_voice_provider IN ('disabled', 'local', 'agentvoicebox')),
    default_stt_model           text NOT NULL,
    default_tts_voice           text NOT NULL,
    default_llm_provider        text NOT NULL,
    default_llm_model           text NOT NULL,
    email_notifications_enabled boolean NOT NULL,
    webhook_url                 text NOT NULL,
    allowed_ip_ranges           text[] NOT NULL,
    require_mfa                 boolean NOT NULL,
    session_timeout_minutes     bigint NOT NULL CHECK (session_timeout_minutes BETWEEN 0 AND 4294967295),
    updated_at                  timestamptz NOT NULL,
    version                     bigint NOT NULL CHECK (version >= 1)
);

CREATE TABLE users (
    id           uuid PRIMARY KEY,
    tenant_id    uuid CONSTRAINT users_tenant_fk REFERENCES tenants (id),
    keycloak_id  text CONSTRAINT users_keycloak_id_key UNIQUE,
    email        text NOT NULL,
    first_name   text NOT NULL,
    last_name    text NOT NULL,
    roles        text[] NOT NULL,
    is_active    boolean NOT NULL,
    is_staff     boolean NOT NULL,
    date_joined  timestamptz NOT NULL,
    last_login   timestamptz,
    preferences  jsonb NOT NULL,
    profile      jsonb NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    version      bigint NOT NULL CHECK (version >= 1),
    CONSTRAINT users_tenant_id_id_key UNIQUE (tenant_id, id)
);
-- E-mail is unique across the platform, compared lower-case (the record's unique key).
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE INDEX users_email_idx ON users (email);
CREATE INDEX users_tenant_idx ON users (tenant_id, created_at, id);

CREATE TABLE projects (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL CONSTRAINT projects_tenant_fk REFERENCES tenants (id),
    name        text NOT NULL,
    description text NOT NULL,
    settings    jsonb NOT NULL,
    created_by  uuid,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    version     bigint NOT NULL CHECK (version >= 1),
    CONSTRAINT projects_tenant_id_id_key UNIQUE (tenant_id, id)
);
CREATE UNIQUE INDEX projects_tenant_name_key ON projects (tenant_id, lower(name));
CREATE INDEX projects_tenant_created_idx ON projects (tenant_id, created_at, id);

CREATE TABLE api_keys (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL CONSTRAINT api_keys_tenant_fk REFERENCES tenants (id),
    name            text NOT NULL,
    description     text NOT NULL,
    key_prefix      text NOT NULL,
    key_hash        text NOT NULL CONSTRAINT api_keys_key_hash_key UNIQUE,
    created_by      uuid,
    project_id      uuid,
    scopes          text[] NOT NULL,
    rate_limit_tier text NOT NULL,
    expires_at      timestamptz,
    revoked_at      timestamptz,
    revoked_by      uuid,
    last_used_at    timestamptz,
    last_used_ip    inet,
    usage_count     bigint NOT NULL CHECK (usage_count >= 0),
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    version         bigint NOT NULL CHECK (version >= 1),
    CONSTRAINT api_keys_tenant_id_id_key UNIQUE (tenant_id, id),
    CONSTRAINT api_keys_project_fk FOREIGN KEY (tenant_id, project_id)
        REFERENCES projects (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX api_keys_key_prefix_idx ON api_keys (key_prefix);
CREATE INDEX api_keys_tenant_revoked_idx ON api_keys (tenant_id, revoked_at);
CREATE INDEX api_keys_project_idx ON api_keys (project_id);
CREATE INDEX api_keys_tenant_created_idx ON api_keys (tenant_id, created_at, id);

CREATE TABLE sessions (
    id                      uuid PRIMARY KEY,
    tenant_id               uuid NOT NULL CONSTRAINT sessions_tenant_fk REFERENCES tenants (id),
    project_id              uuid,
    api_key_id              uuid,
    user_id                 uuid,
    status                  text NOT NULL CHECK (status IN ('created', 'active', 'completed', 'error', 'terminated')),
    config                  jsonb NOT NULL,
    started_at              timestamptz,
    ended_at                timestamptz,
    duration_seconds        double precision,
    input_tokens            bigint NOT NULL CHECK (input_tokens >= 0),
    output_tokens           bigint NOT NULL CHECK (output_tokens >= 0),
    audio_duration_seconds  double precision NOT NULL,
    error_code              text NOT NULL,
    error_message           text NOT NULL,
    client_ip               inet,
    user_agent              text NOT NULL,
    created_at              timestamptz NOT NULL,
    updated_at              timestamptz NOT NULL,
    version                 bigint NOT NULL CHECK (version >= 1),
    CONSTRAINT sessions_tenant_id_id_key UNIQUE (tenant_id, id),
    CONSTRAINT sessions_project_fk FOREIGN KEY (tenant_id, project_id)
        REFERENCES projects (tenant_id, id) ON DELETE SET NULL (project_id),
    CONSTRAINT sessions_api_key_fk FOREIGN KEY (tenant_id, api_key_id)
        REFERENCES api_keys (tenant_id, id)
);
CREATE INDEX sessions_tenant_status_idx ON sessions (tenant_id, status);
CREATE INDEX sessions_tenant_created_idx ON sessions (tenant_id, created_at, id);
CREATE INDEX sessions_project_idx ON sessions (project_id);
CREATE INDEX sessions_api_key_idx ON sessions (api_key_id);

-- Deleting a project deletes its keys (cascade above); sessions opened with those keys lose the key first, so
-- the keys can go (a key deleted on its own while a session uses it is still refused).
CREATE FUNCTION avb_detach_project_sessions() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE sessions SET api_key_id = NULL
     WHERE tenant_id = OLD.tenant_id
       AND api_key_id IN (SELECT id FROM api_keys WHERE tenant_id = OLD.tenant_id AND project_id = OLD.id);
    RETURN OLD;
END
$$;
CREATE TRIGGER projects_detach_sessions BEFORE DELETE ON projects
    FOR EACH ROW EXECUTE FUNCTION avb_detach_project_sessions();

CREATE TABLE session_events (
    id           uuid PRIMARY KEY,
    session_id   uuid NOT NULL,
    tenant_id    uuid NOT NULL,
    event_type   text NOT NULL CHECK (event_type IN ('transcript', 'response', 'tool_call', 'tool_result', 'error', 'system')),
    content      jsonb NOT NULL,
    "timestamp"  timestamptz NOT NULL,
    duration_ms  bigint CHECK (duration_ms BETWEEN 0 AND 4294967295),
    sequence     bigint NOT NULL CHECK (sequence >= 0),
    version      bigint NOT NULL CHECK (version >= 1),
    CONSTRAINT session_events_session_fk FOREIGN KEY (tenant_id, session_id)
        REFERENCES sessions (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT session_events_session_sequence_key UNIQUE (session_id, sequence)
);
CREATE INDEX session_events_session_type_idx ON session_events (session_id, event_type);
CREATE INDEX session_events_session_time_idx ON session_events (session_id, "timestamp");
CREATE INDEX session_events_tenant_idx ON session_events (tenant_id, session_id, sequence);

CREATE TABLE voice_configs (
    id                   uuid PRIMARY KEY,
    tenant_id            uuid NOT NULL CONSTRAINT voice_configs_tenant_fk REFERENCES tenants (id),
    stt_model            text NOT NULL,
    tts_voice            text NOT NULL,
    tts_speed            real NOT NULL,
    llm_provider         text NOT NULL,
    llm_model            text NOT NULL,
    instructions         text NOT NULL,
    language             text NOT NULL,
    temperature          real NOT NULL,
    max_response_tokens  bigint NOT NULL CHECK (max_response_tokens BETWEEN 0 AND 4294967295),
    vad_threshold        real NOT NULL,
    silence_duration_ms  bigint NOT NULL CHECK (silence_duration_ms BETWEEN 0 AND 4294967295),
    updated_at           timestamptz NOT NULL,
    version              bigint NOT NULL CHECK (version >= 1),
    CONSTRAINT voice_configs_tenant_key UNIQUE (tenant_id)
);

CREATE TABLE personas (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL CONSTRAINT personas_tenant_fk REFERENCES tenants (id),
    name         text NOT NULL,
    description  text NOT NULL,
    instructions text NOT NULL,
    voice        text NOT NULL,
    language     text NOT NULL,
    temperature  real NOT NULL,
    owner_id     uuid,
    is_active    boolean NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    version      bigint NOT NULL CHECK (version >= 1)
);
CREATE UNIQUE INDEX personas_tenant_name_key ON personas (tenant_id, lower(name));
CREATE INDEX personas_tenant_created_idx ON personas (tenant_id, created_at, id);

CREATE TABLE wake_words (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL CONSTRAINT wake_words_tenant_fk REFERENCES tenants (id),
    phrase      text NOT NULL,
    sensitivity real NOT NULL,
    is_active   boolean NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    version     bigint NOT NULL CHECK (version >= 1)
);
CREATE UNIQUE INDEX wake_words_tenant_phrase_key ON wake_words (tenant_id, lower(phrase));
CREATE INDEX wake_words_tenant_created_idx ON wake_words (tenant_id, created_at, id);

CREATE TABLE themes (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL CONSTRAINT themes_tenant_fk REFERENCES tenants (id),
    name             text NOT NULL,
    description      text NOT NULL,
    owner_id         uuid,
    is_public        boolean NOT NULL,
    text_color       text NOT NULL,
    background_color text NOT NULL,
    primary_color    text NOT NULL,
    variables        jsonb NOT NULL,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    version          bigint NOT NULL CHECK (version >= 1)
);
CREATE UNIQUE INDEX themes_tenant_name_key ON themes (tenant_id, lower(name));
CREATE INDEX themes_tenant_created_idx ON themes (tenant_id, created_at, id);

CREATE TABLE notifications (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL,
    user_id     uuid NOT NULL,
    category    text NOT NULL,
    title       text NOT NULL,
    body        text NOT NULL,
    data        jsonb NOT NULL,
    read_at     timestamptz,
    created_at  timestamptz NOT NULL,
    version     bigint NOT NULL CHECK (version >= 1),
    CONSTRAINT notifications_user_fk FOREIGN KEY (tenant_id, user_id)
        REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX notifications_user_idx ON notifications (user_id, created_at);
CREATE INDEX notifications_tenant_created_idx ON notifications (tenant_id, created_at, id);
