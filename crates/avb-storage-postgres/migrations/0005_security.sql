-- Tenant isolation enforced by the database: row-level security on every tenant-scoped table, keyed on
-- transaction-local settings the adapter sets at the start of each unit of work:
--   avb.tenant_id      the scoped tenant (empty: none);
--   avb.all_tenants    'on' only for the explicit cross-tenant scope of admin/system contexts;
--   avb.platform_audit 'on' only while a context without any tenant appends to the platform audit chain.
-- A session that sets nothing sees no rows at all. FORCE makes the policies apply to the tables' owner too;
-- the adapter additionally runs every transaction as the unprivileged role `avb_app` (SET LOCAL ROLE), because
-- superusers and BYPASSRLS roles ignore row security altogether.

CREATE FUNCTION avb_scope_visible(row_tenant uuid) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(current_setting('avb.all_tenants', true), '') = 'on'
        OR row_tenant = nullif(current_setting('avb.tenant_id', true), '')::uuid
$$;

CREATE FUNCTION avb_platform_audit() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(current_setting('avb.platform_audit', true), '') = 'on'
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['tenant_settings', 'users', 'projects', 'api_keys', 'sessions', 'session_events',
                             'voice_configs', 'personas', 'wake_words', 'themes', 'notifications', 'jobs']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY %I ON %I USING (avb_scope_visible(tenant_id))'
                       ' WITH CHECK (avb_scope_visible(tenant_id))', t || '_tenant_isolation', t);
    END LOOP;
END
$$;

-- A tenant row belongs to itself.
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenants_tenant_isolation ON tenants
    USING (avb_scope_visible(id)) WITH CHECK (avb_scope_visible(id));

ALTER TABLE audit_logs ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_logs FORCE ROW LEVEL SECURITY;
CREATE POLICY audit_logs_read ON audit_logs FOR SELECT
    USING (avb_scope_visible(tenant_id));
CREATE POLICY audit_logs_append ON audit_logs FOR INSERT
    WITH CHECK (avb_scope_visible(tenant_id) OR (tenant_id IS NULL AND avb_platform_audit()));

ALTER TABLE audit_chains ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_chains FORCE ROW LEVEL SECURITY;
CREATE POLICY audit_chains_tenant_isolation ON audit_chains
    USING (avb_scope_visible(tenant_id) OR (tenant_id IS NULL AND avb_platform_audit()))
    WITH CHECK (avb_scope_visible(tenant_id) OR (tenant_id IS NULL AND avb_platform_audit()));

-- The application role: no login, no superuser, no BYPASSRLS. Roles are cluster-wide, so several databases
-- (or concurrent migrations) may race to create it.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'avb_app') THEN
        BEGIN
            CREATE ROLE avb_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
END
$$;

-- The migrating (connecting) user must be able to SET ROLE avb_app; superusers always can.
DO $$
BEGIN
    IF NOT pg_has_role(current_user, 'avb_app', 'MEMBER') THEN
        EXECUTE format('GRANT avb_app TO %I', current_user);
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'grant avb_app to % yourself: the adapter runs every transaction as avb_app', current_user;
END
$$;

DO $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO avb_app', current_schema());
END
$$;

GRANT SELECT, INSERT, UPDATE, DELETE ON
    tenants, tenant_settings, users, projects, api_keys, sessions, session_events, voice_configs, personas,
    wake_words, themes, notifications, jobs, audit_chains, relationships, relationship_revision
    TO avb_app;
-- Append-only for the application: no UPDATE, DELETE or TRUNCATE.
GRANT SELECT, INSERT ON audit_logs TO avb_app;
