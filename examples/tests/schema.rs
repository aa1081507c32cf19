//! The GraphQL schema keeps the requirements' contract: every type, field, argument, query,
//! mutation and subscription of the requirements document, with the same name and type; what
//! the schema adds is optional.

// Helpers unwrap as the tests do.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chill_core::{
    Blackout, Budget, CatchUpPolicy, Chill, ChillOptions, DstPolicy, Execution, ExecutionId,
    ExecutionResponse, ExecutionStatus, Job, JobSpec, MemoryStore, OverlapPolicy, RepeatedTime,
    RetryPolicy, SkippedTime, Spend, Store, SystemClock,
};
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Value, json};

/// `Type.field` → its type, `Type.field(arg)` → the argument's type, as GraphQL writes them.
async fn signatures() -> HashMap<String, String> {
    let chill = Chill::new(
        Arc::new(MemoryStore::new()),
        Arc::new(SystemClock),
        Arc::new(chill_examples::ai::NoAi),
        ChillOptions::default(),
    );
    let schema = chill_examples::graphql::schema(chill);
    const TYPE: &str = "kind name ofType { kind name ofType { kind name ofType { kind name } } }";
    let query = format!(
        "{{ __schema {{ types {{ name fields {{ name type {{ {TYPE} }} args {{ name type {{ {TYPE} }} }} }} \
         inputFields {{ name type {{ {TYPE} }} }} }} }} }}"
    );
    let response = schema.execute(query.as_str()).await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    let data = response.data.into_json().unwrap();
    fn render(t: &Value) -> String {
        match t["kind"].as_str().unwrap() {
            "NON_NULL" => format!("{}!", render(&t["ofType"])),
            "LIST" => format!("[{}]", render(&t["ofType"])),
            _ => t["name"].as_str().unwrap().to_string(),
        }
    }
    let mut out = HashMap::new();
    for ty in data["__schema"]["types"].as_array().unwrap() {
        let name = ty["name"].as_str().unwrap();
        for field in ty["fields"].as_array().into_iter().flatten() {
            let f = field["name"].as_str().unwrap();
            out.insert(format!("{name}.{f}"), render(&field["type"]));
            for arg in field["args"].as_array().unwrap() {
                let a = arg["name"].as_str().unwrap();
                out.insert(format!("{name}.{f}({a})"), render(&arg["type"]));
            }
        }
        for field in ty["inputFields"].as_array().into_iter().flatten() {
            let f = field["name"].as_str().unwrap();
            out.insert(format!("{name}.{f}"), render(&field["type"]));
        }
    }
    out
}

/// The requirements' GraphQL API schema, and the fields of its Job and JobExecution models.
const CONTRACT: &[(&str, &str)] = &[
    ("Job.id", "ID!"),
    ("Job.name", "String!"),
    ("Job.prompt", "String!"),
    ("Job.schedule", "String!"),
    ("Job.enabled", "Boolean!"),
    ("Job.lastRunAt", "DateTime"),
    ("Job.lastRunStatus", "String"),
    ("Job.nextRunAt", "DateTime"),
    ("Job.executions", "[JobExecution]"),
    ("Job.executions(limit)", "Int"),
    ("JobExecution.id", "ID!"),
    ("JobExecution.jobId", "ID!"),
    ("JobExecution.startedAt", "DateTime!"),
    ("JobExecution.completedAt", "DateTime"),
    ("JobExecution.status", "String!"),
    ("JobExecution.response", "JSON"),
    ("JobExecution.errorMessage", "String"),
    ("JobExecution.durationMs", "Int"),
    ("Mutation.createJob", "Job!"),
    ("Mutation.createJob(input)", "CreateJobInput!"),
    ("Mutation.updateJob", "Job!"),
    ("Mutation.updateJob(id)", "ID!"),
    ("Mutation.updateJob(input)", "UpdateJobInput!"),
    ("Mutation.deleteJob", "Boolean!"),
    ("Mutation.deleteJob(id)", "ID!"),
    ("Mutation.pauseJob", "Job!"),
    ("Mutation.pauseJob(id)", "ID!"),
    ("Mutation.resumeJob", "Job!"),
    ("Mutation.resumeJob(id)", "ID!"),
    ("Mutation.triggerJob", "JobExecution!"),
    ("Mutation.triggerJob(id)", "ID!"),
    ("Query.getJob", "Job"),
    ("Query.getJob(id)", "ID!"),
    ("Query.listJobs", "[Job]!"),
    ("Query.listJobs(filter)", "JobFilter"),
    ("Query.listJobs(limit)", "Int"),
    ("Query.getExecution", "JobExecution"),
    ("Query.getExecution(id)", "ID!"),
    ("Query.listExecutions", "[JobExecution]!"),
    ("Query.listExecutions(jobId)", "ID!"),
    ("Query.listExecutions(limit)", "Int"),
    ("Subscription.onJobStatusChange", "Job"),
    ("Subscription.onJobStatusChange(id)", "ID"),
    ("Subscription.onJobExecutionComplete", "JobExecution"),
    ("Subscription.onJobExecutionComplete(jobId)", "ID"),
    // The Job model's other fields.
    ("Job.systemPrompt", "String"),
    ("Job.maxTurns", "Int"),
    ("Job.timeout", "Int"),
    ("Job.retryPolicy", "RetryPolicy"),
    ("RetryPolicy.maxRetries", "Int"),
    ("RetryPolicy.retryDelay", "Int"),
    ("Job.tags", "[String]"),
    ("Job.metadata", "JSON"),
    ("Job.lastRunDuration", "Int"),
    ("Job.lastRunError", "String"),
    ("Job.totalRuns", "Int"),
    ("Job.successCount", "Int"),
    ("Job.failureCount", "Int"),
    ("Job.averageDuration", "Int"),
    ("Job.createdAt", "DateTime!"),
    ("Job.updatedAt", "DateTime!"),
    ("Job.createdBy", "String"),
    ("Job.updatedBy", "String"),
    // The JobExecution model's other fields.
    ("JobExecution.job", "Job"),
    ("JobExecution.trigger", "String!"),
    ("JobExecution.requestPayload", "JSON"),
    ("JobExecution.apiLatencyMs", "Int"),
    ("JobExecution.toolsExecutedCount", "Int"),
    ("JobExecution.tokensUsed", "Int"),
    ("JobExecution.errorType", "String"),
    ("JobExecution.errorDetails", "JSON"),
    ("JobExecution.retryCount", "Int"),
    ("JobExecution.createdAt", "DateTime!"),
    // The writable fields of the Job model, with the requirements' names.
    ("CreateJobInput.name", "String!"),
    ("CreateJobInput.prompt", "String!"),
    ("CreateJobInput.systemPrompt", "String"),
    ("CreateJobInput.schedule", "String!"),
    ("CreateJobInput.enabled", "Boolean"),
    ("CreateJobInput.maxTurns", "Int"),
    ("CreateJobInput.timeout", "Int"),
    ("CreateJobInput.retryPolicy", "RetryPolicyInput"),
    ("RetryPolicyInput.maxRetries", "Int"),
    ("RetryPolicyInput.retryDelay", "Int"),
    ("CreateJobInput.tags", "[String!]"),
    ("CreateJobInput.metadata", "JSON"),
    ("UpdateJobInput.name", "String"),
    ("UpdateJobInput.prompt", "String"),
    ("UpdateJobInput.systemPrompt", "String"),
    ("UpdateJobInput.schedule", "String"),
    ("UpdateJobInput.enabled", "Boolean"),
    ("UpdateJobInput.maxTurns", "Int"),
    ("UpdateJobInput.timeout", "Int"),
    ("UpdateJobInput.retryPolicy", "RetryPolicyInput"),
    ("UpdateJobInput.tags", "[String!]"),
    ("UpdateJobInput.metadata", "JSON"),
];

#[tokio::test]
async fn the_schema_keeps_every_name_and_type_of_the_requirements() {
    let actual = signatures().await;
    let mismatches: Vec<String> = CONTRACT
        .iter()
        .filter(|(path, ty)| actual.get(*path).map(String::as_str) != Some(*ty))
        .map(|(path, ty)| format!("{path}: expected {ty}, found {:?}", actual.get(*path)))
        .collect();
    assert!(mismatches.is_empty(), "{mismatches:#?}");
}

#[tokio::test]
async fn arguments_beyond_the_requirements_are_optional() {
    let actual = signatures().await;
    for root in ["Query", "Mutation", "Subscription"] {
        for (path, ty) in &actual {
            let is_arg = path.starts_with(&format!("{root}.")) && path.ends_with(')');
            let in_contract = CONTRACT.iter().any(|(p, _)| p == path);
            let of_contract_field = CONTRACT
                .iter()
                .any(|(p, _)| path.starts_with(&format!("{p}(")));
            if is_arg && of_contract_field && !in_contract {
                assert!(!ty.ends_with('!'), "{path}: {ty} is required");
            }
        }
    }
}

#[test]
fn the_root_types_are_named_query_mutation_and_subscription() {
    let sdl = chill_examples::graphql::sdl();
    for root in ["type Query {", "type Mutation {", "type Subscription {"] {
        assert!(sdl.contains(root), "{sdl}");
    }
}

/// The fields GraphQL adds to the models, each with its reason: they are relations, read from
/// the store when asked for, not fields of the model.
const GRAPHQL_ONLY: &[(&str, &str)] = &[
    // The requirements' `executions(limit)`: the job's executions, read from the store.
    ("Job", "executions"),
    // The execution's job, read from the store (`null` once purged).
    ("JobExecution", "job"),
];

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// A job with every optional field set and every statistic non-zero, as no real run would
/// leave it (soft-deleted and buffered at once), so that no field is `null` or a default.
fn full_job() -> Job {
    let now = at("2025-01-02T03:04:05.678Z");
    let spec = JobSpec {
        id: None,
        name: "everything".into(),
        prompt: "say everything".into(),
        schedule: "0 9 * * *".into(),
        system_prompt: Some("be thorough".into()),
        timezone: "Europe/Berlin".into(),
        enabled: true,
        max_turns: 3,
        timeout: 45,
        retry_policy: RetryPolicy {
            max_retries: 4,
            retry_delay: 7,
            max_delay: 600,
            retry_on_timeout: true,
        },
        tags: vec!["a".into(), "b".into()],
        metadata: json!({"team": "ops", "nested": {"n": [1, 2]}}),
        start_date: Some(at("2025-01-03T00:00:00Z")),
        end_date: Some(at("2026-01-01T00:00:00Z")),
        blackout_periods: vec![Blackout {
            start: at("2025-02-01T00:00:00Z"),
            end: at("2025-02-02T00:00:00Z"),
            reason: Some("freeze".into()),
        }],
        dst_policy: DstPolicy {
            repeated: RepeatedTime::Twice,
            skipped: SkippedTime::Skip,
        },
        overlap_policy: OverlapPolicy::Allow,
        catch_up_policy: CatchUpPolicy::RunOnce,
        catch_up_window: 120,
        jitter: 30,
        pause_note: Some("a note".into()),
        budget: Some(Budget {
            daily_micro_usd: Some(1_000),
            monthly_micro_usd: Some(20_000),
        }),
        max_concurrency: Some(2),
        pause_after_failures: Some(5),
        created_by: Some("alice".into()),
    };
    let mut job = Job::create(spec, now).unwrap();
    job.last_run_at = Some(at("2025-01-04T08:00:00.5Z"));
    job.last_run_status = Some(ExecutionStatus::Failed);
    job.last_run_duration = Some(1_234);
    job.last_run_error = Some("it broke".into());
    job.total_runs = 7;
    job.success_count = 5;
    job.failure_count = 2;
    job.average_duration = Some(321);
    job.total_duration_ms = 2_247;
    job.total_input_tokens = 11;
    job.total_output_tokens = 13;
    job.total_tokens = 24;
    job.total_cost_micro_usd = 99;
    job.consecutive_failures = 1;
    job.spend = Spend {
        day: 20_250_104,
        day_micro_usd: 9,
        month: 202_501,
        month_micro_usd: 99,
    };
    job.running_count = 1;
    job.buffered_execution_id = Some(ExecutionId::new_manual());
    job.updated_at = at("2025-01-04T09:00:00Z");
    job.updated_by = Some("bob".into());
    job.version = 9;
    job.deleted_at = Some(at("2025-01-05T00:00:00Z"));
    job
}

/// An ended execution of `job` with every optional field set.
fn full_execution(job: &Job) -> Execution {
    let started = Utc.with_ymd_and_hms(2025, 1, 4, 8, 0, 0).unwrap();
    let mut e = Execution::manual(job, started);
    e.status = ExecutionStatus::Success;
    e.completed_at = Some(started + Duration::milliseconds(1_500));
    e.response = Some(ExecutionResponse {
        result: "done".into(),
        tools_used: vec!["slack".into()],
        conversation_turns: Some(2),
        metadata: json!({"model": "m"}),
    });
    e.duration_ms = Some(1_500);
    e.api_latency_ms = Some(1_400);
    e.tools_executed_count = 1;
    e.tokens_used = Some(30);
    e.input_tokens = Some(10);
    e.output_tokens = Some(20);
    e.cost_micro_usd = Some(42);
    e.error_message = Some("an earlier hiccup".into());
    e.error_type = Some("server_error".into());
    e.error_details = Some(json!({"status": 503}));
    e.retry_count = 1;
    e.attempt = 2;
    e.lease_owner = Some("instance-1".into());
    e.lease_expires_at = Some(started + Duration::seconds(60));
    e
}

/// Compares a model's serde JSON with what GraphQL answered for it, field by field and
/// recursively: the same keys and the same values (instants compared as instants, whatever
/// their precision). Adds what differs to `problems`.
fn compare(path: &str, model: &Value, exposed: &Value, problems: &mut Vec<String>) {
    match (model, exposed) {
        (Value::Object(m), Value::Object(e)) => {
            for key in m.keys().filter(|k| !e.contains_key(*k)) {
                problems.push(format!("{path}.{key}: not exposed"));
            }
            for key in e.keys().filter(|k| !m.contains_key(*k)) {
                problems.push(format!("{path}.{key}: not a field of the model"));
            }
            for (key, value) in m {
                if let Some(other) = e.get(key) {
                    compare(&format!("{path}.{key}"), value, other, problems);
                }
            }
        }
        (Value::Array(m), Value::Array(e)) if m.len() == e.len() => {
            for (i, (a, b)) in m.iter().zip(e).enumerate() {
                compare(&format!("{path}[{i}]"), a, b, problems);
            }
        }
        (Value::String(a), Value::String(b)) if a != b => {
            match (a.parse::<DateTime<Utc>>(), b.parse::<DateTime<Utc>>()) {
                (Ok(x), Ok(y)) if x == y => {}
                _ => problems.push(format!(
                    "{path}: {model} in the model, {exposed} in GraphQL"
                )),
            }
        }
        _ if model != exposed => {
            problems.push(format!(
                "{path}: {model} in the model, {exposed} in GraphQL"
            ));
        }
        _ => {}
    }
}

/// Every field of chill-core's `Job` and `Execution` models, as serde writes them (camelCase,
/// the names GraphQL uses too), is a field of the GraphQL `Job` / `JobExecution` type with the
/// same value; and GraphQL adds only the relations of [`GRAPHQL_ONLY`].
#[tokio::test]
async fn every_field_of_the_job_and_execution_models_is_exposed() {
    let store = Arc::new(MemoryStore::new());
    let chill = Chill::new(
        store.clone(),
        Arc::new(SystemClock),
        Arc::new(chill_examples::ai::NoAi),
        ChillOptions::default(),
    );
    let schema = chill_examples::graphql::schema(chill);

    // Written to the store as they are: the engine would not leave every field set.
    let job = full_job();
    store.create_job(&job).await.unwrap();
    let runner = Job::create(
        JobSpec::new("runner", "run", "@daily"),
        at("2025-01-01T00:00:00Z"),
    )
    .unwrap();
    store.create_job(&runner).await.unwrap();
    let execution = full_execution(&runner);
    store.start_manual(&execution, false).await.unwrap();
    let job = store.get_job(&job.id).await.unwrap().unwrap();
    let execution = store.get_execution(&execution.id).await.unwrap().unwrap();

    let types = schema.execute(common::SCHEMA_TYPES).await;
    assert!(types.errors.is_empty(), "{:?}", types.errors);
    let types = types.data.into_json().unwrap()["__schema"]["types"].clone();

    let mut problems = Vec::new();
    for (type_name, query, id, model) in [
        (
            "Job",
            "getJob",
            job.id.to_string(),
            serde_json::to_value(&job).unwrap(),
        ),
        (
            "JobExecution",
            "getExecution",
            execution.id.to_string(),
            serde_json::to_value(&execution).unwrap(),
        ),
    ] {
        // No field of the model is left out of the comparison because it is null.
        for (key, value) in model.as_object().unwrap() {
            assert!(
                !value.is_null(),
                "{type_name}.{key} is null in the test's model"
            );
        }
        let request = format!(
            "query($id: ID!) {{ {query}(id: $id) {{ {} }} }}",
            common::selection(&types, type_name)
        );
        let response = schema
            .execute(
                async_graphql::Request::new(request)
                    .variables(async_graphql::Variables::from_json(json!({"id": id}))),
            )
            .await;
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        let exposed = response.data.into_json().unwrap()[query].clone();
        compare(type_name, &model, &exposed, &mut problems);

        // What GraphQL has beyond the model: the relations, which the selection leaves out.
        let model_keys: BTreeSet<String> = model.as_object().unwrap().keys().cloned().collect();
        let extra: BTreeSet<String> = common::field_names(&types, type_name)
            .difference(&model_keys)
            .cloned()
            .collect();
        let expected: BTreeSet<String> = GRAPHQL_ONLY
            .iter()
            .filter(|(t, _)| *t == type_name)
            .map(|(_, f)| f.to_string())
            .collect();
        assert_eq!(extra, expected, "{type_name}: fields beyond the model");
    }
    assert!(problems.is_empty(), "{problems:#?}");
}
