//! The GraphQL schema keeps the requirements' contract: every type, field, argument, query,
//! mutation and subscription of the requirements document, with the same name and type; what
//! the schema adds is optional.

// Helpers unwrap as the tests do.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chill_core::{
    AiClient, AiError, AiRequest, AiResponse, Chill, ChillOptions, MemoryStore, SystemClock,
};
use serde_json::Value;

struct NoAi;

#[async_trait]
impl AiClient for NoAi {
    async fn call(&self, _: &AiRequest) -> Result<AiResponse, AiError> {
        Ok(AiResponse::default())
    }
}

/// `Type.field` → its type, `Type.field(arg)` → the argument's type, as GraphQL writes them.
async fn signatures() -> HashMap<String, String> {
    let chill = Chill::new(
        Arc::new(MemoryStore::new()),
        Arc::new(SystemClock),
        Arc::new(NoAi),
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
