//! `sluice serve`: open the store, set up the clusters, start the watchdog and the
//! workflow scheduler, and serve the REST API. Instances are separate processes: stopping or killing the master leaves
//! them running, and the next master adopts them.

use crate::auth::audit::{AnonymousBudget, Retention};
use crate::auth::{admin_token_path, Role, Security};
use crate::checkpoints::CheckpointStore;
use crate::cluster::{Cluster, LocalCluster, LocalClusterConfig};
use crate::core::Core;
use crate::jobs::JobsService;
use crate::master::Master;
use crate::service::Counters;
use crate::store::SledStore;
use crate::watchdog::Policy;
use crate::workflow::service::SchedulerConfig;
use crate::workflow::service::WorkflowsService;
use crate::workflow::SledWorkflowStore;
use clap::Args;
use sluice_connectors::Registry;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Arguments of `sluice serve`.
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Where the store (sled) and the local cluster's instance directories live.
    #[arg(long, default_value = "./sluice-data")]
    pub data_dir: PathBuf,
    /// Where jobs checkpoint (`<this>/<job id>/`): a directory or an object-store URL
    /// (`s3://bucket/prefix`, credentials from the environment). Masters that may run
    /// the same job (a standby over a copy of the data directory) must share it: each
    /// checkpoint is written only if its epoch is free, so only one instance of a job
    /// commits and the other stops. Default: `<data dir>/checkpoints`.
    #[arg(long, value_name = "DIR|URL")]
    pub checkpoint_store: Option<String>,
    /// Watchdog cycle interval (ms); API changes wake it up at once.
    #[arg(long, default_value_t = 500)]
    pub watchdog_interval_ms: u64,
    /// First restart delay after a failure (ms); doubles per failure in the window.
    #[arg(long, default_value_t = 1000)]
    pub restart_backoff_ms: i64,
    /// Longest restart delay (ms).
    #[arg(long, default_value_t = 60_000)]
    pub restart_backoff_max_ms: i64,
    /// Mark a job failed after this many failures within the restart window.
    #[arg(long, default_value_t = 5)]
    pub max_restarts: u32,
    /// The window over which failures are counted (seconds).
    #[arg(long, default_value_t = 600)]
    pub restart_window_s: i64,
    /// An instance without a heartbeat for this long is hung and restarted (seconds).
    #[arg(long, default_value_t = 15)]
    pub heartbeat_timeout_s: i64,
    /// An instance whose counters do not move for this long while input waits is hung
    /// and restarted (seconds).
    #[arg(long, default_value_t = 60)]
    pub progress_timeout_s: i64,
    /// An instance that has not reported this long after its start is hung (seconds).
    #[arg(long, default_value_t = 30)]
    pub start_timeout_s: i64,
    /// An instance one of whose worker threads has not stepped its dataflow for this
    /// long is hung (seconds). Idle jobs step all the time; a stuck operator does not.
    #[arg(long, default_value_t = 300)]
    pub stall_timeout_s: i64,
    /// Workflow scheduler cycle interval (ms); API changes wake it up at once.
    #[arg(long, default_value_t = 250)]
    pub scheduler_interval_ms: u64,
    /// Under catch-up `none`, a workflow tick this late (ms) still runs.
    #[arg(long, default_value_t = 10_000)]
    pub misfire_grace_ms: i64,
    /// Worker threads the `local` cluster holds in all (default: 4 per core, at least 8).
    #[arg(long)]
    pub local_workers: Option<u64>,
    /// The most worker threads one process of an instance runs on the `local` cluster
    /// (default: all of them). A job that names no `resources.processes` runs as the
    /// fewest processes that keep within it. (On a `hosts` cluster it is the most slots
    /// one agent offers.)
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub local_threads_per_process: Option<u64>,
    /// A cluster of kind `hosts`: the `sluice agent`s labelled `KEY=VALUE`, as
    /// `NAME:KEY=VALUE` (repeatable; e.g. `hosts:pool=default`). Agents register at
    /// `POST /api/v1/agents` with an admin token.
    #[arg(long, value_name = "NAME:KEY=VALUE")]
    pub hosts_cluster: Vec<String>,
    /// An agent not heard of for this long (ms) is lost: its processes count as gone
    /// and their instances are restarted elsewhere. Agents kill their processes after
    /// half of it without an answer from the master.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(500..))]
    pub agent_timeout_ms: u64,
    /// How often agents send heartbeats (ms).
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(50..))]
    pub agent_heartbeat_ms: u64,
    /// A stopped instance gets SIGTERM, then SIGKILL when it is still alive after this
    /// long (seconds).
    #[arg(long, default_value_t = 3)]
    pub stop_grace_s: u64,
    /// An instance's `worker.log` is rotated beyond this size (MiB): it and the one
    /// rotated copy (`worker.log.1`) are each about this size at most.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..))]
    pub worker_log_max_mib: u64,
    /// Serve `/metrics` without authentication on the main listener (default: it needs
    /// a viewer token).
    #[arg(long)]
    pub metrics_public: bool,
    /// Also serve `/metrics`, unauthenticated, on this address (for a Prometheus that
    /// scrapes without a token); the main listener keeps it behind authentication.
    #[arg(long)]
    pub metrics_listen: Option<SocketAddr>,
    /// The audit log keeps at most this many entries (the oldest go first).
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub audit_max_entries: u64,
    /// The audit log drops entries older than this many days.
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u64).range(1..))]
    pub audit_max_age_days: u64,
    /// Audit entries of anonymous requests (no valid credential) per minute on average;
    /// beyond the budget they are counted in a summary entry instead of logged one by
    /// one (and they are never flushed to disk one by one).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..))]
    pub audit_anonymous_per_min: u32,
    /// Audit entries of anonymous requests logged one by one in a burst.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub audit_anonymous_burst: u32,
    /// Requests per second one token may make on average (0: unlimited); beyond it,
    /// 429 with `Retry-After`.
    #[arg(long, default_value_t = 100)]
    pub rate_limit_per_s: u32,
    /// Requests one token may make in a burst above the average rate.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_burst: u32,
    /// Jobs one owner (the token that submitted them) may hold (0: unlimited).
    #[arg(long, default_value_t = 100)]
    pub max_jobs_per_owner: u64,
    /// Also accept JWTs (RS256/ES256) signed by a key of this JWKS: a file, or the
    /// identity provider's `jwks_uri` URL (https; http only on loopback), fetched at
    /// start and refreshed; needs --jwt-issuer and --jwt-audience.
    #[arg(long, value_name = "FILE|URL", requires_all = ["jwt_issuer", "jwt_audience"])]
    pub jwks: Option<String>,
    /// Fetch a URL --jwks again this often (seconds); a token with an unknown `kid`
    /// also makes the master fetch it (at most every 30 s).
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub jwks_refresh_s: u64,
    /// The `iss` a JWT must carry.
    #[arg(long)]
    pub jwt_issuer: Option<String>,
    /// The `aud` a JWT must carry.
    #[arg(long)]
    pub jwt_audience: Option<String>,
    /// The claim that holds a JWT's role (agent, viewer, editor or admin).
    #[arg(long, default_value = "role")]
    pub jwt_role_claim: String,
    /// Clock skew allowed on a JWT's exp and nbf (seconds).
    #[arg(long, default_value_t = 30)]
    pub jwt_leeway_s: u64,
    /// A directory jobs may read and write local files under (repeatable, created when
    /// missing; default: `files/` in the master's working directory). The data
    /// directory is never reachable, even inside an allowed directory.
    #[arg(long = "allow-path", value_name = "DIR")]
    pub allow_paths: Vec<PathBuf>,
    /// A custom object-store endpoint jobs may use (`s3.endpoint`, `az.endpoint`), as a
    /// URL (repeatable; default: none, only the providers' public endpoints).
    #[arg(long = "allow-endpoint", value_name = "URL")]
    pub allow_endpoints: Vec<String>,
    /// An object-store bucket jobs may use, as `s3://name` or `gs://name` (repeatable;
    /// default: any bucket, within the endpoint and credential rules).
    #[arg(long = "allow-bucket", value_name = "URL")]
    pub allow_buckets: Vec<String>,
    /// Lend this master's own (ambient) cloud credentials to jobs for this endpoint:
    /// `aws`, `gcs`, `azure` (the public endpoints) or an allowed custom endpoint's URL
    /// (repeatable; default: never).
    #[arg(long = "allow-ambient-credentials", value_name = "ENDPOINT")]
    pub allow_ambient_credentials: Vec<String>,
    /// Host names the master answers to (repeatable or comma-separated; default: the
    /// loopback names, the listen address and this machine's host name; `*`: any). A
    /// request naming another `Host` gets 421.
    #[arg(long = "allowed-hosts", value_name = "HOST", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
    /// Browser origins (`https://ui.example`) allowed to send state-changing requests
    /// besides the master's own (repeatable); any other `Origin` gets 403.
    #[arg(long = "allowed-origins", value_name = "URL", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// A connection that has not sent a whole request head this long after it opened
    /// or after its last response (idle) is closed (ms).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_timeout_ms: u64,
    /// A request whose body has not arrived whole this long after its head gets 408
    /// and its connection is closed (ms).
    #[arg(long, default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub body_timeout_ms: u64,
    /// Most connections open at once; more are closed as they arrive.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: u64,
    /// Sample every job's metrics this often into the metrics history (`5s`, `500ms`).
    #[arg(long, default_value = "5s", value_name = "DURATION")]
    pub metrics_interval: String,
    /// Keep the metrics history this long (`1h`, `30min`).
    #[arg(long, default_value = "1h", value_name = "DURATION")]
    pub metrics_retention: String,
    /// Keep every sample this long; older ones are downsampled to one point per
    /// `--metrics-coarse-step`.
    #[arg(long, default_value = "10min", value_name = "DURATION")]
    pub metrics_raw_window: String,
    /// The width of a downsampled bucket of the metrics history.
    #[arg(long, default_value = "1min", value_name = "DURATION")]
    pub metrics_coarse_step: String,
    /// Most points one series of the metrics history holds (one series per job and
    /// metric; the oldest points go first).
    #[arg(long, default_value_t = 240, value_parser = clap::value_parser!(u64).range(2..=1_000_000))]
    pub metrics_max_points: u64,
    /// Most series the metrics history holds (the least recently sampled go first):
    /// with --metrics-max-points, its bound (16 bytes a point).
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub metrics_max_series: u64,
    /// Query previews (`POST /api/v1/queries`) that may run at once; more get 429.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub max_previews: u64,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1) of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// The metrics history's settings from the flags.
fn history_config(args: &ServeArgs) -> anyhow::Result<crate::history::HistoryConfig> {
    let ms = |flag: &str, v: &str| {
        sluice_compiler::instance::parse_duration_ms(v).map_err(|e| anyhow::anyhow!("{flag}: {e}"))
    };
    let config = crate::history::HistoryConfig {
        sample_interval_ms: ms("--metrics-interval", &args.metrics_interval)?,
        raw_window_ms: ms("--metrics-raw-window", &args.metrics_raw_window)?,
        coarse_step_ms: ms("--metrics-coarse-step", &args.metrics_coarse_step)?,
        retention_ms: ms("--metrics-retention", &args.metrics_retention)?,
        max_points_per_series: usize::try_from(args.metrics_max_points)?,
        max_series: usize::try_from(args.metrics_max_series)?,
    };
    config.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(config)
}

/// The job sandbox from the flags; without `--allow-path`, `./files` (created).
fn build_sandbox(args: &ServeArgs) -> anyhow::Result<crate::sandbox::Sandbox> {
    let mut roots = args.allow_paths.clone();
    if roots.is_empty() {
        roots.push(PathBuf::from("files"));
    }
    for root in &roots {
        std::fs::create_dir_all(root).map_err(|e| {
            anyhow::anyhow!("cannot create the jobs' directory {}: {e}", root.display())
        })?;
    }
    crate::sandbox::Sandbox::new(
        &roots,
        &args.data_dir,
        &args.allow_endpoints,
        &args.allow_ambient_credentials,
    )
    .and_then(|s| s.with_buckets(&args.allow_buckets))
    .map_err(|e| anyhow::anyhow!("{e}"))
}

/// Creates the data directory (and missing parents) and makes it mode 0700 even when
/// it existed: it holds `secret.key`, `admin.token`, the store and the instances'
/// requests, which no other local user may read or list.
fn create_private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| anyhow::anyhow!("cannot create the data directory {}: {e}", dir.display()))?;
    let mode = std::fs::metadata(dir)
        .map_err(|e| anyhow::anyhow!("cannot read the data directory {}: {e}", dir.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| {
            anyhow::anyhow!(
                "cannot make the data directory {} private (mode 0700): {e}",
                dir.display()
            )
        })?;
        tracing::info!(
            "made the data directory {} private (mode {:o} → 700)",
            dir.display(),
            mode & 0o777
        );
    }
    Ok(())
}

/// The data directory's id (`<data dir>/data-dir.id`, created with a random id on first
/// use; a copy of the directory keeps it).
fn data_dir_id(dir: &std::path::Path) -> anyhow::Result<String> {
    use rand::RngCore;
    let path = dir.join("data-dir.id");
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => return Ok(id.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
    }
    let mut b = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut b);
    let id: String = b.iter().map(|x| format!("{x:02x}")).collect();
    std::fs::write(&path, &id)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    Ok(id)
}

/// Builds the master over `args.data_dir` (store + local cluster), and its security
/// state (API tokens, audit log) over the same store.
pub fn build_master(args: &ServeArgs) -> anyhow::Result<(Arc<Master>, Arc<Security>)> {
    create_private_dir(&args.data_dir)?;
    let store = SledStore::open(&args.data_dir.join("store")).map_err(|e| {
        anyhow::anyhow!(
            "cannot open the store under {} (is another master using it?): {e}",
            args.data_dir.display()
        )
    })?;
    let exe = std::env::current_exe()
        .map_err(|e| anyhow::anyhow!("cannot locate the sluice executable: {e}"))?;
    let mut config = LocalClusterConfig::new(args.data_dir.join("instances"), exe);
    if let Some(w) = args.local_workers {
        config.capacity.workers = w;
    }
    config.threads_per_process = args.local_threads_per_process;
    config.stop_grace = Duration::from_secs(args.stop_grace_s);
    config.log_max_bytes = args.worker_log_max_mib.saturating_mul(1 << 20);
    let local = LocalCluster::new(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut clusters: BTreeMap<String, Arc<dyn Cluster>> = BTreeMap::new();
    clusters.insert(local.name().to_string(), Arc::new(local));
    let agents = (!args.hosts_cluster.is_empty()).then(|| {
        Arc::new(crate::cluster::AgentRegistry::new(
            Duration::from_millis(args.agent_timeout_ms),
            Duration::from_millis(args.agent_heartbeat_ms),
            Duration::from_secs(args.stop_grace_s),
        ))
    });
    for flag in &args.hosts_cluster {
        let (name, label) = crate::cluster::HostsCluster::parse_flag(flag)
            .map_err(|e| anyhow::anyhow!("--hosts-cluster {e}"))?;
        if clusters.contains_key(&name) {
            anyhow::bail!("--hosts-cluster: the cluster '{name}' is declared twice");
        }
        let registry = agents
            .clone()
            .ok_or_else(|| anyhow::anyhow!("internal error: no agent registry"))?;
        clusters.insert(
            name.clone(),
            Arc::new(crate::cluster::HostsCluster::new(&name, label, registry)),
        );
    }
    let policy = Policy {
        backoff_initial_ms: args.restart_backoff_ms.max(1),
        backoff_multiplier: 2,
        backoff_max_ms: args.restart_backoff_max_ms.max(args.restart_backoff_ms),
        max_restarts: args.max_restarts,
        restart_window_ms: args.restart_window_s.max(1) * 1000,
        heartbeat_timeout_ms: args.heartbeat_timeout_s.max(1) * 1000,
        progress_timeout_ms: args.progress_timeout_s.max(1) * 1000,
        start_timeout_ms: args.start_timeout_s.max(1) * 1000,
        stall_timeout_ms: args.stall_timeout_s.max(1) * 1000,
    };
    // Secret option values are sealed at rest under this key (created once, mode 0600).
    let seal_key_path = std::path::absolute(args.data_dir.join("secret.key"))
        .map_err(|e| anyhow::anyhow!("cannot resolve the data directory: {e}"))?;
    let seal_key = sluice_catalogs::sealed::SealKey::load_or_create(&seal_key_path, rand::random)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut security = Security::open(
        store.db(),
        Retention {
            max_entries: args.audit_max_entries,
            max_age_ms: i64::try_from(args.audit_max_age_days)
                .unwrap_or(i64::MAX / 86_400_000)
                .saturating_mul(86_400_000),
        },
        AnonymousBudget {
            per_minute: std::num::NonZeroU32::new(args.audit_anonymous_per_min)
                .unwrap_or(std::num::NonZeroU32::MIN),
            burst: std::num::NonZeroU32::new(args.audit_anonymous_burst)
                .unwrap_or(std::num::NonZeroU32::MIN),
        },
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    security.metrics_public = args.metrics_public;
    security.max_jobs_per_owner = args.max_jobs_per_owner;
    security.body_timeout = Duration::from_millis(args.body_timeout_ms);
    if let (Some(jwks), Some(iss), Some(aud)) = (&args.jwks, &args.jwt_issuer, &args.jwt_audience) {
        security.jwt = Some(
            crate::auth::jwt::JwtVerifier::open(
                jwks,
                iss,
                aud,
                &args.jwt_role_claim,
                args.jwt_leeway_s,
                Duration::from_secs(args.jwks_refresh_s),
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?,
        );
    }
    security.rate_limit = std::num::NonZeroU32::new(args.rate_limit_per_s).map(|rate| {
        let burst = std::num::NonZeroU32::new(args.rate_limit_burst).unwrap_or(rate);
        crate::auth::RateLimit::new(rate, burst)
    });
    let sandbox = build_sandbox(args)?;
    tracing::info!(
        "jobs may use files under {}",
        sandbox
            .roots()
            .iter()
            .map(|r| r.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let workflows = SledWorkflowStore::open(&store)
        .map_err(|e| anyhow::anyhow!("cannot open the workflow store: {e}"))?;
    let history = Arc::new(
        crate::history::sampler::History::open(store.db(), history_config(args)?)
            .map_err(|e| anyhow::anyhow!("cannot open the metrics history: {e}"))?,
    );
    let core = Arc::new(Core {
        store: Arc::new(store),
        clusters,
        registry: Registry::builtin(),
        counters: Mutex::new(Counters::default()),
        checkpoints: match &args.checkpoint_store {
            Some(root) => CheckpointStore::shared(root, &data_dir_id(&args.data_dir)?),
            None => CheckpointStore::private(&args.data_dir.join("checkpoints")),
        },
        seal_key: Some(seal_key),
        seal_key_path: Some(seal_key_path),
        sandbox: Some(sandbox),
        agents,
        wake: Mutex::new(None),
    });
    let master = Arc::new(Master {
        jobs: JobsService::new(core.clone(), policy),
        workflows: WorkflowsService {
            core: core.clone(),
            store: Arc::new(workflows),
            scheduler: SchedulerConfig {
                interval_ms: args.scheduler_interval_ms,
                misfire_grace_ms: args.misfire_grace_ms.max(0),
            },
        },
        core,
        history: Some(history),
        previews: crate::preview::Previews::with_limit(usize::try_from(args.max_previews)?),
    });
    Ok((master, Arc::new(security)))
}

/// On first start (no `<data dir>/admin.token`), mints an admin token and writes it
/// there (mode 0600), revoking an earlier bootstrap token whose file was removed. Logs
/// the file's path, never the value.
pub fn ensure_admin_token(data_dir: &std::path::Path, security: &Security) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = admin_token_path(data_dir);
    if path.exists() {
        tracing::info!("admin token: {}", path.display());
        return Ok(());
    }
    let _ = security.tokens.revoke(BOOTSTRAP_TOKEN);
    let minted = security
        .tokens
        .create(BOOTSTRAP_TOKEN, Role::Admin, None, "sluice serve")
        .map_err(|e| anyhow::anyhow!("cannot create the admin token: {e}"))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    f.write_all(format!("{}\n", minted.value).as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    tracing::info!(
        "created an admin token in {} (the CLI reads it for this data directory; `sluice token create` makes more)",
        path.display()
    );
    Ok(())
}

/// The name of the token `sluice serve` creates on first start.
pub const BOOTSTRAP_TOKEN: &str = "admin";

/// `sluice serve`: runs until SIGINT/SIGTERM.
pub fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let (master, security) = build_master(&args)?;
    ensure_admin_token(&args.data_dir, &security)?;
    // One reconcile loop for jobs and workflow tasks (`crate::reconcile`): woken by
    // either's changes, every `--watchdog-interval-ms` or `--scheduler-interval-ms`,
    // whichever is shorter.
    let (tx, rx) = std::sync::mpsc::channel();
    if let Ok(mut w) = master.core.wake.lock() {
        *w = Some(tx);
    }
    let looped = master.clone();
    let interval = Duration::from_millis(
        args.watchdog_interval_ms
            .min(args.scheduler_interval_ms)
            .clamp(50, 60_000),
    );
    std::thread::Builder::new()
        .name("reconcile".into())
        .spawn(move || crate::reconcile::run_loop(looped, rx, interval))
        .map_err(|e| anyhow::anyhow!("cannot start the reconcile loop: {e}"))?;

    if let Some(history) = master.history.clone() {
        let sampled = master.clone();
        std::thread::Builder::new()
            .name("metrics-history".into())
            .spawn(move || {
                crate::history::sampler::run_loop(
                    || crate::history::sampler::observe(&sampled.jobs),
                    history,
                )
            })
            .map_err(|e| anyhow::anyhow!("cannot start the metrics sampler: {e}"))?;
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
        let addr = listener.local_addr().unwrap_or(args.listen);
        let tls = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(crate::tls::acceptor(cert, key)?),
            _ => None,
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        tracing::info!(
            "sluice master listening on {scheme}://{addr} (console: {scheme}://{addr}/console, Swagger UI: {scheme}://{addr}/swagger-ui), data in {}",
            args.data_dir.display()
        );
        if tls.is_none() && !addr.ip().is_loopback() {
            tracing::warn!(
                "listening on {addr} without TLS: tokens travel in clear text (give --tls-cert/--tls-key, or put a TLS-terminating proxy in front)"
            );
        }
        if let Some(maddr) = args.metrics_listen {
            let ml = tokio::net::TcpListener::bind(maddr)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {maddr}: {e}"))?;
            let maddr = ml.local_addr().unwrap_or(maddr);
            tracing::info!("metrics (unauthenticated) on http://{maddr}/metrics");
            let mapp = crate::api::metrics_app(master.clone());
            tokio::spawn(async move {
                if let Err(e) = axum::serve(ml, mapp).await {
                    tracing::error!("metrics listener failed: {e}");
                }
            });
        }
        let origin = Arc::new(crate::api::origin::Guard::new(
            &args.allowed_hosts,
            &args.allowed_origins,
            addr,
        ));
        let app = crate::api::app(master.clone(), security.clone()).layer(
            axum::middleware::from_fn_with_state(origin, crate::api::origin::check),
        );
        serve_connections(
            listener,
            app,
            tls,
            Duration::from_millis(args.header_timeout_ms),
            usize::try_from(args.max_connections).unwrap_or(usize::MAX),
        )
        .await;
        tracing::info!("sluice master stopped (instances keep running; the next master adopts them)");
        Ok(())
    })
}

/// Serves HTTP/1.1 connections until SIGINT/SIGTERM: at most `max` at once (more are
/// closed as they arrive), each closed when a request head does not arrive within
/// `header_timeout` of its opening or of its last response.
/// With `tls`, each connection first completes a TLS handshake (within the same
/// timeout; a failed one is closed and logged at debug level).
async fn serve_connections(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    header_timeout: Duration,
    max: usize,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(max));
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little, go on.
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => return,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let tls = tls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            match tls {
                None => serve_one(stream, service, header_timeout).await,
                Some(acceptor) => {
                    match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => serve_one(stream, service, header_timeout).await,
                        Ok(Err(e)) => tracing::debug!("TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                }
            }
        });
    }
}

/// Serves one HTTP/1.1 connection over `io` (plain TCP or TLS).
async fn serve_one<I>(
    io: I,
    service: hyper_util::service::TowerToHyperService<axum::Router>,
    header_timeout: Duration,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let served = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(hyper_util::rt::TokioIo::new(io), service)
        .with_upgrades()
        .await;
    if let Err(e) = served {
        tracing::debug!("connection ended: {e}");
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
