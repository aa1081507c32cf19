//! The command line of the `chill` binary.

use clap::{Args, Parser, Subcommand};

/// ChillScheduler: AI automation jobs on schedules. `chill serve` runs the GraphQL server;
/// the other commands work on a store directly.
#[derive(Debug, Parser)]
#[command(name = "chill", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the scheduler with its GraphQL API, subscriptions, IDE page, /healthz and /metrics.
    Serve(ServeArgs),
    /// Print the next run times of a schedule, one RFC 3339 UTC time per line.
    Next(NextArgs),
    /// Check a schedule: exit 0 with its next run, or exit 1 with what is wrong.
    Validate(ValidateArgs),
    /// List, show, create, change, pause, resume, delete or run jobs.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Show a job's executions.
    #[command(subcommand)]
    Executions(ExecutionsCommand),
    /// Write every job (configuration and statistics) as JSON.
    Export(ExportArgs),
    /// Create or update jobs from an export, by id; invalid entries stop the whole import.
    Import(ImportArgs),
    /// Run the demo AI endpoint on its own (prompt prefixes slow:, fail:, ratelimit:, flaky:,
    /// error: make it misbehave).
    DemoAi(DemoAiArgs),
}

/// The store to work on.
#[derive(Debug, Args)]
pub struct StoreArg {
    /// Store URL: sqlite://FILE, sqlite::memory:, postgres://…, mysql://…,
    /// dynamodb://TABLE?endpoint=URL&region=R.
    #[arg(long, env = "CHILL_STORE", default_value = "sqlite://chill.db")]
    pub store: String,
}

/// The AI endpoint; none configured means the demo endpoint, in process.
#[derive(Debug, Args)]
pub struct AiArgs {
    /// The requirements' /query endpoint, e.g. http://claude.internal:3000/query.
    #[arg(long, env = "CLAUDE_API_URL")]
    pub claude_url: Option<String>,
    /// Use the Anthropic Messages API (key from ANTHROPIC_API_KEY; also chosen when that is
    /// set and no --claude-url is given).
    #[arg(long)]
    pub anthropic: bool,
}

/// `chill serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The store.
    #[command(flatten)]
    pub store: StoreArg,
    /// Address to listen on.
    #[arg(long, env = "CHILL_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// The AI endpoint.
    #[command(flatten)]
    pub ai: AiArgs,
    /// Do not create the two demo jobs in an empty store (they are only created when the
    /// demo AI endpoint is in use).
    #[arg(long)]
    pub no_demo_jobs: bool,
}

/// `chill next`.
#[derive(Debug, Args)]
pub struct NextArgs {
    /// The schedule: cron (5-7 fields, macros), cron(...), rate(...), at(...).
    pub expr: String,
    /// IANA time zone the schedule is read in.
    #[arg(long, default_value = "UTC")]
    pub tz: String,
    /// Start after this instant (RFC 3339; default now).
    #[arg(long)]
    pub after: Option<String>,
    /// How many times to print.
    #[arg(long, default_value_t = 5)]
    pub count: usize,
}

/// `chill validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The schedule.
    pub expr: String,
    /// IANA time zone the schedule is read in.
    #[arg(long, default_value = "UTC")]
    pub tz: String,
}

/// Output format of the store commands.
#[derive(Debug, Args)]
pub struct FormatArg {
    /// Print JSON (for scripts) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The fields of a job that the command line sets.
#[derive(Debug, Args, Default)]
pub struct JobFields {
    /// Name.
    #[arg(long)]
    pub name: Option<String>,
    /// The prompt sent to the AI.
    #[arg(long)]
    pub prompt: Option<String>,
    /// The schedule.
    #[arg(long)]
    pub schedule: Option<String>,
    /// IANA time zone of the schedule.
    #[arg(long)]
    pub tz: Option<String>,
    /// System prompt.
    #[arg(long)]
    pub system_prompt: Option<String>,
    /// A tag (repeat for several; replaces all tags on update).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Most AI conversation turns.
    #[arg(long)]
    pub max_turns: Option<u32>,
    /// Timeout in seconds.
    #[arg(long)]
    pub timeout: Option<u32>,
    /// Retries after a failed attempt.
    #[arg(long)]
    pub max_retries: Option<u32>,
    /// Delay before the first retry, in seconds.
    #[arg(long)]
    pub retry_delay: Option<u32>,
    /// Metadata as JSON.
    #[arg(long)]
    pub metadata: Option<String>,
    /// Overlap policy: skip, buffer_one, allow.
    #[arg(long)]
    pub overlap: Option<String>,
    /// Create the job paused.
    #[arg(long)]
    pub paused: bool,
}

/// `chill jobs …`.
#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List jobs.
    List {
        /// The store.
        #[command(flatten)]
        store: StoreArg,
        /// Output format.
        #[command(flatten)]
        format: FormatArg,
        /// Only jobs with this tag.
        #[arg(long)]
        tag: Option<String>,
        /// Include soft-deleted jobs.
        #[arg(long)]
        all: bool,
    },
    /// Show a job.
    Get {
        /// The job id.
        id: String,
        /// The store.
        #[command(flatten)]
        store: StoreArg,
        /// Output format.
        #[command(flatten)]
        format: FormatArg,
    },
    /// Create a job (--name, --prompt and --schedule are required).
    Create {
        /// The fields.
        #[command(flatten)]
        fields: JobFields,
        /// The store.
        #[command(flatten)]
        store: StoreArg,
        /// Output format.
        #[command(flatten)]
        format: FormatArg,
    },
    /// Change a job's fields.
    Update {
        /// The job id.
        id: String,
        /// The fields to change.
        #[command(flatten)]
        fields: JobFields,
        /// The store.
        #[command(flatten)]
        store: StoreArg,
        /// Output format.
        #[command(flatten)]
        format: FormatArg,
    },
    /// Pause a job.
    Pause {
        /// The job id.
        id: String,
        /// Why.
        #[arg(long)]
        note: Option<String>,
        /// The store.
        #[command(flatten)]
        store: StoreArg,
        /// Output format.
        #[command(flatten)]
        format: FormatArg,
    },
    /// Resume a paused job.
    Resume {
        /// The job id.
        id: String,
        /// The store.
        #[command(flatten)]
        store: StoreArg,
        /// Output format.
        #[command(flatten)]
        format: FormatArg,
    },
    /// Delete a job (soft: history kept; --hard: with its history).
    Delete {
        /// The job id.
        id: String,
        /// Remove it and its executions for good.
        #[arg(long)]
        hard: bool,
        /// The store.
        #[command(flatten)]
        store: StoreArg,
        /// Output format (JSON: `{"id": …, "deleted": "soft" | "hard"}`).
        #[command(flatten)]
        format: FormatArg,
    },
    /// Run a job now and wait for the execution to end.
    Trigger {
        /// The job id.
        id: String,
        /// The store.
        #[command(flatten)]
        store: StoreArg,
        /// The AI endpoint.
        #[command(flatten)]
        ai: AiArgs,
        /// Output format.
        #[command(flatten)]
        format: FormatArg,
    },
}

/// `chill executions …`.
#[derive(Debug, Subcommand)]
pub enum ExecutionsCommand {
    /// A job's executions, newest first.
    List {
        /// The job id.
        job_id: String,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// The store.
        #[command(flatten)]
        store: StoreArg,
        /// Output format.
        #[command(flatten)]
        format: FormatArg,
    },
}

/// `chill export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The store.
    #[command(flatten)]
    pub store: StoreArg,
    /// Write to this file instead of standard output.
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
}

/// `chill import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The export file (`-` for standard input).
    pub file: String,
    /// The store.
    #[command(flatten)]
    pub store: StoreArg,
    /// Report what would change, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format.
    #[command(flatten)]
    pub format: FormatArg,
}

/// `chill demo-ai`.
#[derive(Debug, Args)]
pub struct DemoAiArgs {
    /// Address to listen on; the endpoint is POST /query there.
    #[arg(long, env = "CHILL_DEMO_AI_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: String,
}
