//! `avb-server`: serve the API, or run one of the management commands (spec §11 management commands).

use avb_api::jobs::JobRunner;
use avb_core::{Ctx, RequestId, UuidV7Ids};
use avb_server::{ServerConfig, assemble, bootstrap};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "avb-server", version, about = "AgentVoiceBox reference server")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Apply the PostgreSQL migrations (in-memory storage has none).
    Migrate,
    /// Create the demo data and print credentials.
    SeedData,
    /// Write the permission schema to the authorizer.
    SyncPermissions,
    /// End abandoned sessions (spec §11.3).
    CleanupSessions,
    /// Create a tenant: `create-tenant <slug> <name> <admin-email> <admin-name> [tier]`.
    CreateTenant {
        /// Slug.
        slug: String,
        /// Display name.
        name: String,
        /// First admin's e-mail.
        admin_email: String,
        /// First admin's name.
        admin_name: String,
        /// Tier (free, starter, pro, enterprise).
        #[arg(default_value = "free")]
        tier: String,
    },
    /// Mint a development token signed with `AVB_JWT_SECRET`.
    MintDevToken {
        /// Subject.
        #[arg(long, default_value = "dev-user")]
        subject: String,
        /// E-mail.
        #[arg(long, default_value = "dev@agentvoicebox.local")]
        email: String,
        /// Tenant id.
        #[arg(long)]
        tenant: Option<String>,
        /// Roles (comma-separated: sysadmin, admin, developer, operator, viewer, billing).
        #[arg(long, default_value = "developer")]
        roles: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: i64,
    },
    /// Create an API key for the demo tenant and print it.
    CreateApiKey,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn run(cli: Cli) -> Result<(), BoxError> {
    let config = ServerConfig::load()?;
    // Migrating must not need the rest of the wiring (Redis, identity) to be reachable.
    if matches!(cli.command, Some(Command::Migrate)) {
        match avb_server::assemble::migrate(&config).await? {
            Some(versions) => println!("migrations applied (versions {versions:?})"),
            None => println!("in-memory storage: nothing to migrate"),
        }
        return Ok(());
    }
    let assembled = assemble(&config).await?;
    let app = assembled.app.clone();
    let system = || Ctx::system(RequestId::generate(&UuidV7Ids), "cli", None);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config, assembled).await,
        Command::Migrate => Ok(()),
        Command::SeedData | Command::CreateApiKey => {
            let identity = assembled
                .dev_identity
                .ok_or("seed-data needs the static-JWT identity")?;
            let made = bootstrap::bootstrap(&app, &identity).await?;
            println!(
                "tenant {} ({})\napi key: {}",
                made.tenant_slug, made.tenant_id, made.api_key
            );
            if !config.uses_postgres() {
                println!("note: in-memory storage lasts for this process only");
            }
            Ok(())
        }
        Command::SyncPermissions => {
            let token = app
                .inner()
                .authorizer
                .write_schema(&system(), avb_auth::zed::AGENTVOICEBOX_SCHEMA)
                .await?;
            println!("schema written (revision {})", token.as_str());
            Ok(())
        }
        Command::CleanupSessions => {
            let report = avb_api::ops::sessions::cleanup(&app, &system())
                .await
                .map_err(|e| e.message)?;
            println!("expired {} sessions, deleted {}", report.expired, report.deleted);
            Ok(())
        }
        Command::CreateTenant {
            slug,
            name,
            admin_email,
            admin_name,
            tier,
        } => {
            let mut request =
                avb_tenancy::tenant::CreateTenantRequest::new(name, slug, admin_email, admin_name);
            request.tier = Some(tier);
            let created = app.inner().tenants.create(&system(), request).await?;
            println!("{}", serde_json::to_string_pretty(&created.tenant)?);
            Ok(())
        }
        Command::MintDevToken {
            subject,
            email,
            tenant,
            roles,
            ttl,
        } => {
            if config.avb_jwt_secret.expose().is_empty() {
                return Err("set AVB_JWT_SECRET (the server must use the same secret)".into());
            }
            let identity = assembled
                .dev_identity
                .ok_or("KEYCLOAK_URL is set: tokens come from Keycloak")?;
            let roles = roles
                .split(',')
                .map(|r| avb_core::Role::parse(r.trim()).ok_or_else(|| format!("unknown role {r}")))
                .collect::<Result<Vec<_>, _>>()?;
            let tenant_id = tenant.map(|t| t.parse::<avb_core::TenantId>()).transpose()?;
            let token = identity.mint(&avb_auth::adapters::static_jwt::DevTokenRequest {
                subject,
                email,
                first_name: String::new(),
                last_name: String::new(),
                roles,
                tenant_id,
                ttl_secs: ttl,
            })?;
            println!("{token}");
            Ok(())
        }
    }
}

async fn serve(config: ServerConfig, assembled: avb_server::Assembled) -> Result<(), BoxError> {
    let app = assembled.app;
    for (port, adapter) in &assembled.adapters {
        tracing::info!(port, adapter, "adapter");
    }
    if config.bootstrap()
        && let Some(identity) = &assembled.dev_identity
    {
        let made = bootstrap::bootstrap(&app, identity).await?;
        let scheme = if config.avb_tls_cert.is_some() {
            "https"
        } else {
            "http"
        };
        let base = format!("{scheme}://{}:{}", config.host, config.port);
        let lasting = if config.uses_postgres() {
            "PostgreSQL storage"
        } else {
            "in-memory, data lasts for this process"
        };
        println!("\nAgentVoiceBox is starting on {base} ({lasting})\n");
        println!("demo tenant:     {} ({})", made.tenant_slug, made.tenant_id);
        println!("sysadmin token:  {}", made.sysadmin_token);
        println!("admin token:     {}", made.admin_token);
        println!("api key:         {}\n", made.api_key);
        println!(
            "try:  curl -H 'Authorization: Bearer {}' {base}/api/v2/tenants/me\n",
            made.api_key
        );
    }
    let jobs = JobRunner::new(app.clone()).spawn(Duration::from_secs(1));
    // Drops this replica's cached tenants and API keys when any replica changes them.
    let invalidations = avb_api::invalidation::spawn(app.clone());
    let relay = assembled
        .outbox_relay
        .clone()
        .map(|relay| relay.spawn(Duration::from_secs(1)));
    let flusher = app
        .inner()
        .authenticator
        .api_keys()
        .usage()
        .spawn_flusher(Duration::from_secs(5), app.inner().ids.clone());
    let addr: SocketAddr = format!("{}:{}", config.host, config.port).parse()?;
    // `AVB_HTTP` chooses the framework; both serve the identical API (the pipeline is avb-api's).
    let framework = std::env::var("AVB_HTTP").unwrap_or_else(|_| "axum".into());
    tracing::info!(%addr, framework, "listening");
    let tls = match (&config.avb_tls_cert, &config.avb_tls_key) {
        (Some(cert), Some(key)) => Some(avb_http_axum::tls_from_pem_files(cert, key).await?),
        (None, None) => None,
        _ => return Err("AVB_TLS_CERT and AVB_TLS_KEY must be set together".into()),
    };
    match (framework.as_str(), tls) {
        ("axum", Some(tls)) => {
            avb_http_axum::serve_tls(
                avb_http_axum::bind(addr)?,
                app.clone(),
                tls,
                shutdown_signal(),
                Duration::from_secs(10),
            )
            .await?;
        }
        ("axum", None) => {
            avb_http_axum::serve(avb_http_axum::bind(addr)?, app.clone(), shutdown_signal()).await?;
        }
        #[cfg(feature = "actix")]
        ("actix", None) => {
            avb_http_actix::serve(avb_http_actix::bind(addr)?, app.clone(), shutdown_signal()).await?;
        }
        (other, _) => {
            return Err(
                format!(
                    "AVB_HTTP={other}: expected axum or actix (actix needs --features actix; TLS is served by axum)"
                )
                .into(),
            );
        }
    }
    // In-flight requests are done; write what was batched so nothing accepted is lost.
    jobs.abort();
    invalidations.abort();
    flusher.abort();
    if let Some(relay) = relay {
        relay.abort();
    }
    app.flush().await?;
    if let Some(relay) = &assembled.outbox_relay {
        relay.run_once().await;
    }
    JobRunner::new(app).run_until_idle().await;
    if let Some(store) = &assembled.postgres {
        store.close().await;
    }
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received");
}
