//! The CLI's commands: each takes its parsed arguments and returns the process's exit code.

use std::process::ExitCode;
use std::sync::Arc;

use chill_core::store::{JobFilter, PageRequest};
use chill_core::{
    AiClient, Chill, ChillOptions, Event, Execution, Job, JobId, JobPatch, JobSpec, RetryPolicy,
    Schedule, SystemClock,
};
use chrono::{DateTime, SecondsFormat, Utc};

use crate::ai::{self, AiChoice, NoAi};
use crate::cli::{
    AiArgs, Command, ExecutionsCommand, ExportArgs, ImportArgs, JobFields, JobsCommand, NextArgs,
    ValidateArgs,
};
use crate::demo_ai::DemoAi;
use crate::output::{executions_table, jobs_table, json, print};
use crate::server::{ServeConfig, Server, shutdown_signal};
use crate::{AppError, store_url, transfer};

/// Run a command.
pub async fn run(command: Command) -> Result<ExitCode, AppError> {
    match command {
        Command::Serve(args) => {
            let config = ServeConfig {
                store_url: args.store.store,
                listen: args.listen,
                ai: AiChoice::from_args(args.ai.claude_url, args.ai.anthropic)?,
                demo_jobs: !args.no_demo_jobs,
            };
            let server = Server::start(config).await?;
            shutdown_signal().await;
            server.shutdown().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Next(args) => next(&args),
        Command::Validate(args) => validate(&args),
        Command::Jobs(command) => jobs(command).await,
        Command::Executions(command) => executions(command).await,
        Command::Export(args) => export(args).await,
        Command::Import(args) => import(args).await,
        Command::DemoAi(args) => {
            let demo = DemoAi::start(&args.listen).await?;
            tracing::info!(
                "demo AI endpoint: POST http://{}/query (prompt prefixes: slow:SECS, fail:STATUS, ratelimit:SECS, flaky:N, error:)",
                demo.local_addr()
            );
            shutdown_signal().await;
            demo.shutdown().await;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn next(args: &NextArgs) -> Result<ExitCode, AppError> {
    let schedule = Schedule::parse_in(&args.expr, &args.tz)?;
    let after = match &args.after {
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map_err(|e| {
                AppError::Usage(format!("--after: '{text}' is not an RFC 3339 time: {e}"))
            })?
            .with_timezone(&Utc),
        None => Utc::now(),
    };
    let lines: Vec<String> = schedule
        .upcoming(after)
        .take(args.count)
        .map(rfc3339)
        .collect();
    if !lines.is_empty() {
        print(&lines.join("\n"))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn validate(args: &ValidateArgs) -> Result<ExitCode, AppError> {
    match Schedule::parse_in(&args.expr, &args.tz) {
        Ok(schedule) => {
            match schedule.next_after(Utc::now()) {
                Some(t) => print(&format!("valid; next run: {}", rfc3339(t)))?,
                None => print("valid; no run after now")?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("schedule: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Runs `work` with an engine over the store `url`, for commands that do not run
/// executions; the store is closed afterwards, whether `work` succeeded or not.
async fn with_engine<T>(
    url: &str,
    work: impl AsyncFnOnce(&Chill) -> Result<T, AppError>,
) -> Result<T, AppError> {
    with_engine_calling(url, Arc::new(NoAi), work).await
}

/// [`with_engine`] with an engine that calls `ai`.
async fn with_engine_calling<T>(
    url: &str,
    ai: Arc<dyn AiClient>,
    work: impl AsyncFnOnce(&Chill) -> Result<T, AppError>,
) -> Result<T, AppError> {
    let opened = store_url::open_store(url).await?;
    let chill = Chill::new(
        opened.store.clone(),
        Arc::new(SystemClock),
        ai,
        ChillOptions::default(),
    );
    let result = work(&chill).await;
    opened.close().await;
    result
}

fn parse_id(id: &str) -> Result<JobId, AppError> {
    Ok(id.parse::<JobId>()?)
}

fn show_job(job: &Job, as_json: bool) -> Result<(), AppError> {
    if as_json {
        print(&json(job)?)
    } else {
        print(&jobs_table(std::slice::from_ref(job)))
    }
}

fn metadata_of(text: &Option<String>) -> Result<Option<serde_json::Value>, AppError> {
    text.as_deref()
        .map(|t| serde_json::from_str(t).map_err(|e| AppError::json("--metadata", e)))
        .transpose()
}

fn spec_from(fields: JobFields) -> Result<JobSpec, AppError> {
    let required = |value: Option<String>, flag: &str| {
        value.ok_or_else(|| AppError::Usage(format!("{flag} is required to create a job")))
    };
    let mut spec = JobSpec::new(
        required(fields.name.clone(), "--name")?,
        required(fields.prompt.clone(), "--prompt")?,
        required(fields.schedule.clone(), "--schedule")?,
    );
    if let Some(tz) = fields.tz.clone() {
        spec.timezone = tz;
    }
    spec.system_prompt = fields.system_prompt.clone();
    spec.tags = fields.tags.clone();
    spec.max_turns = fields.max_turns.unwrap_or(spec.max_turns);
    spec.timeout = fields.timeout.unwrap_or(spec.timeout);
    spec.retry_policy = RetryPolicy {
        max_retries: fields.max_retries.unwrap_or(spec.retry_policy.max_retries),
        retry_delay: fields.retry_delay.unwrap_or(spec.retry_policy.retry_delay),
        ..spec.retry_policy
    };
    if let Some(m) = metadata_of(&fields.metadata)? {
        spec.metadata = m;
    }
    if let Some(o) = &fields.overlap {
        spec.overlap_policy = o.parse()?;
    }
    spec.enabled = !fields.paused;
    Ok(spec)
}

fn patch_from(fields: JobFields, current: &Job) -> Result<JobPatch, AppError> {
    let retry =
        (fields.max_retries.is_some() || fields.retry_delay.is_some()).then(|| RetryPolicy {
            max_retries: fields
                .max_retries
                .unwrap_or(current.retry_policy.max_retries),
            retry_delay: fields
                .retry_delay
                .unwrap_or(current.retry_policy.retry_delay),
            ..current.retry_policy
        });
    Ok(JobPatch {
        metadata: metadata_of(&fields.metadata)?,
        overlap_policy: fields.overlap.as_deref().map(str::parse).transpose()?,
        name: fields.name,
        prompt: fields.prompt,
        schedule: fields.schedule,
        timezone: fields.tz,
        system_prompt: fields.system_prompt.map(Some),
        tags: (!fields.tags.is_empty()).then_some(fields.tags),
        max_turns: fields.max_turns,
        timeout: fields.timeout,
        retry_policy: retry,
        enabled: fields.paused.then_some(false),
        ..JobPatch::default()
    })
}

async fn jobs(command: JobsCommand) -> Result<ExitCode, AppError> {
    match command {
        JobsCommand::List {
            store,
            format,
            tag,
            all,
        } => {
            with_engine(&store.store, async |chill| {
                let filter = JobFilter {
                    tag,
                    include_deleted: all,
                    ..JobFilter::default()
                };
                let mut jobs = Vec::new();
                let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
                loop {
                    let got = chill.list_jobs(&filter, &page).await?;
                    jobs.extend(got.items);
                    match got.next_cursor {
                        Some(c) => page = PageRequest::after(PageRequest::MAX_LIMIT, c),
                        None => break,
                    }
                }
                if format.json {
                    print(&json(&jobs)?)?;
                } else {
                    print(&jobs_table(&jobs))?;
                }
                Ok(())
            })
            .await?;
        }
        JobsCommand::Get { id, store, format } => {
            with_engine(&store.store, async |chill| {
                let job = chill
                    .get_job(&parse_id(&id)?)
                    .await?
                    .ok_or(AppError::JobNotFound(id))?;
                show_job(&job, format.json)?;
                Ok(())
            })
            .await?;
        }
        JobsCommand::Create {
            fields,
            store,
            format,
        } => {
            with_engine(&store.store, async |chill| {
                let job = chill.create_job(spec_from(fields)?).await?;
                show_job(&job, format.json)?;
                Ok(())
            })
            .await?;
        }
        JobsCommand::Update {
            id,
            fields,
            store,
            format,
        } => {
            with_engine(&store.store, async |chill| {
                let id = parse_id(&id)?;
                let current = chill
                    .get_job(&id)
                    .await?
                    .ok_or_else(|| AppError::JobNotFound(id.to_string()))?;
                let job = chill
                    .update_job(&id, &patch_from(fields, &current)?)
                    .await?;
                show_job(&job, format.json)?;
                Ok(())
            })
            .await?;
        }
        JobsCommand::Pause {
            id,
            note,
            store,
            format,
        } => {
            with_engine(&store.store, async |chill| {
                let job = chill.pause_job(&parse_id(&id)?, note).await?;
                show_job(&job, format.json)?;
                Ok(())
            })
            .await?;
        }
        JobsCommand::Resume { id, store, format } => {
            with_engine(&store.store, async |chill| {
                let job = chill.resume_job(&parse_id(&id)?).await?;
                show_job(&job, format.json)?;
                Ok(())
            })
            .await?;
        }
        JobsCommand::Delete {
            id,
            hard,
            store,
            format,
        } => {
            with_engine(&store.store, async |chill| {
                let id = parse_id(&id)?;
                if hard {
                    if !chill.purge_job(&id).await? {
                        return Err(AppError::JobNotFound(id.to_string()));
                    }
                } else {
                    chill.delete_job(&id).await?;
                }
                if format.json {
                    let deleted = if hard { "hard" } else { "soft" };
                    print(&json(&serde_json::json!({"id": id, "deleted": deleted}))?)?;
                } else if hard {
                    print(&format!("deleted {id} and its history"))?;
                } else {
                    print(&format!("deleted {id} (history kept)"))?;
                }
                Ok(())
            })
            .await?;
        }
        JobsCommand::Trigger {
            id,
            store,
            ai,
            format,
        } => return trigger(&id, &store.store, ai, format.json).await,
    }
    Ok(ExitCode::SUCCESS)
}

/// Run a job now in this process and wait for its execution to end; exit 1 unless it
/// succeeded.
async fn trigger(
    id: &str,
    store: &str,
    ai_args: AiArgs,
    as_json: bool,
) -> Result<ExitCode, AppError> {
    let id = parse_id(id)?;
    // The AI client first: a refused one then leaves no store open.
    let connected =
        ai::connect(&AiChoice::from_args(ai_args.claude_url, ai_args.anthropic)?).await?;
    let finished = with_engine_calling(store, connected.client, async |chill| {
        run_now(chill, &id).await
    })
    .await;
    if let Some(demo) = connected.demo {
        demo.shutdown().await;
    }
    let execution = finished?;
    if as_json {
        print(&json(&execution)?)?;
    } else {
        print(&executions_table(std::slice::from_ref(&execution)))?;
    }
    Ok(
        if execution.status == chill_core::ExecutionStatus::Success {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        },
    )
}

/// How long `jobs trigger` waits, after its execution's `finished` event, for this process's
/// executions to end before it closes the store.
const SETTLE: std::time::Duration = std::time::Duration::from_secs(5);

/// Trigger job `id` and wait for its execution's `finished` event, then for this process's
/// executions to end, for up to [`SETTLE`]. After the event the execution's task may still
/// write (it pauses a job that keeps failing), and when the finish started a run the job had
/// buffered, that run executes here too: it gets the same time to end. What is still running
/// then stops with the process, as before, and lease recovery takes it over.
async fn run_now(chill: &Chill, id: &JobId) -> Result<Execution, AppError> {
    let mut events = chill.subscribe();
    let run = chill.trigger_job(id).await?;
    let finished = loop {
        match events.recv().await {
            Ok(Event::ExecutionFinished(e)) if e.id == run => break e,
            Ok(_) | Err(chill_core::EventError::Lagged(_)) => {}
            Err(e) => return Err(AppError::Execution(format!("execution {run}: {e}"))),
        }
    };
    let settle_until = tokio::time::Instant::now() + SETTLE;
    while chill.running_executions() > 0 && tokio::time::Instant::now() < settle_until {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    Ok(finished)
}

async fn executions(command: ExecutionsCommand) -> Result<ExitCode, AppError> {
    match command {
        ExecutionsCommand::List {
            job_id,
            limit,
            store,
            format,
        } => {
            with_engine(&store.store, async |chill| {
                let id = parse_id(&job_id)?;
                if chill.get_job(&id).await?.is_none() {
                    return Err(AppError::JobNotFound(job_id));
                }
                let page = chill
                    .list_executions(&id, &PageRequest::first(limit))
                    .await?;
                if format.json {
                    print(&json(&page.items)?)?;
                } else {
                    print(&executions_table(&page.items))?;
                }
                Ok(())
            })
            .await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn export(args: ExportArgs) -> Result<ExitCode, AppError> {
    with_engine(&args.store.store, async |chill| {
        let jobs = transfer::export(chill).await?;
        let text = json(&jobs)?;
        match &args.out {
            Some(path) => {
                std::fs::write(path, format!("{text}\n"))
                    .map_err(|e| AppError::io(format!("cannot write {}", path.display()), e))?;
                eprintln!("exported {} jobs to {}", jobs.len(), path.display());
            }
            None => print(&text)?,
        }
        Ok(ExitCode::SUCCESS)
    })
    .await
}

async fn import(args: ImportArgs) -> Result<ExitCode, AppError> {
    let text = if args.file == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| AppError::io("standard input", e))?
    } else {
        std::fs::read_to_string(&args.file)
            .map_err(|e| AppError::io(format!("cannot read {}", args.file), e))?
    };
    let jobs = transfer::parse(&text)?;
    with_engine(&args.store.store, async |chill| {
        let report = transfer::import(chill, &jobs, args.dry_run).await?;
        if args.format.json {
            print(&json(&report)?)?;
        } else {
            let mut lines = Vec::new();
            for (what, ids) in [
                ("created", &report.created),
                ("updated", &report.updated),
                ("unchanged", &report.unchanged),
            ] {
                lines.extend(ids.iter().map(|id| format!("{what} {id}")));
            }
            lines.push(report.summary());
            print(&lines.join("\n"))?;
        }
        Ok(ExitCode::SUCCESS)
    })
    .await
}
