//! Jobs and executions as DynamoDB items, and the index attributes they carry.
//!
//! A record is split in two: the attributes that conditions, updates and indexes need are
//! native DynamoDB attributes (numbers, strings, booleans; instants as epoch milliseconds),
//! everything else is one JSON document (`cfg` and `stats` for a job, `doc` for an
//! execution), so that free JSON (metadata with `u64::MAX` or `1e300`, NUL characters, empty
//! strings) comes back exactly and new fields need no change here.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use chill_core::{Execution, ExecutionId, ExecutionStatus, Job, JobId, StoreError, Trigger};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// One item, as the SDK takes and returns it.
pub(crate) type Item = HashMap<String, AttributeValue>;

/// Attribute names.
pub(crate) mod attr {
    /// Partition key: `JOB#<id>` or `EXEC#<id>`.
    pub(crate) const PK: &str = "pk";
    /// Sort key: `JOB` or `EXEC`.
    pub(crate) const SK: &str = "sk";
    /// A job's configuration (JSON).
    pub(crate) const CFG: &str = "cfg";
    /// A job's statistics (JSON).
    pub(crate) const STATS: &str = "stats";
    /// An execution's record (JSON).
    pub(crate) const DOC: &str = "doc";
    /// Incremented by every write of a job's statistics or running count.
    pub(crate) const STATS_REV: &str = "statsRev";
    pub(crate) const VERSION: &str = "version";
    pub(crate) const NEXT_RUN_AT: &str = "nextRunAt";
    pub(crate) const ENABLED: &str = "enabled";
    pub(crate) const DELETED_AT: &str = "deletedAt";
    pub(crate) const RUNNING_COUNT: &str = "runningCount";
    pub(crate) const BUFFERED: &str = "bufferedExecutionId";
    pub(crate) const LAST_RUN_STATUS: &str = "lastRunStatus";
    pub(crate) const LAST_RUN_AT: &str = "lastRunAt";
    pub(crate) const STATUS: &str = "status";
    pub(crate) const TRIGGER: &str = "trigger";
    pub(crate) const STARTED_AT: &str = "startedAt";
    pub(crate) const LEASE_OWNER: &str = "leaseOwner";
    pub(crate) const LEASE_EXPIRES_AT: &str = "leaseExpiresAt";
    pub(crate) const JOB_ID: &str = "jobId";
    /// Index `due`: `job#<bucket>` or `try#<bucket>`.
    pub(crate) const DUE_SHARD: &str = "dueShard";
    /// Index `due`: epoch milliseconds.
    pub(crate) const DUE_AT: &str = "dueAt";
    /// Index `lease`: `lease#<bucket>` (sort: `leaseExpiresAt`).
    pub(crate) const LEASE_SHARD: &str = "leaseShard";
    /// Index `jobs`: `jobs`.
    pub(crate) const LIST_SHARD: &str = "listShard";
    /// Index `jobs`: the job id.
    pub(crate) const LIST_KEY: &str = "listKey";
    /// Indexes `byJob` and `ended`: `<createdAt>#<id>`, sortable.
    pub(crate) const CREATED: &str = "created";
    /// Index `ended`: `ended#<bucket>`.
    pub(crate) const ENDED_SHARD: &str = "endedShard";
    /// Index `finished`: `done#<hour since the epoch>`.
    pub(crate) const DONE_HOUR: &str = "doneHour";
    /// Index `finished`: `<completedAt>#<id>`, sortable.
    pub(crate) const DONE: &str = "done";
    /// TTL: epoch seconds.
    pub(crate) const EXPIRES_AT: &str = "expiresAt";
}

/// Index names.
pub(crate) mod index {
    pub(crate) const DUE: &str = "due";
    pub(crate) const LEASE: &str = "lease";
    pub(crate) const JOBS: &str = "jobs";
    pub(crate) const BY_JOB: &str = "byJob";
    pub(crate) const ENDED: &str = "ended";
    pub(crate) const FINISHED: &str = "finished";
}

/// DynamoDB's item size limit, less a margin for the size estimate.
pub(crate) const MAX_ITEM_BYTES: usize = 400 * 1024 - 2048;

const JOB_SK: &str = "JOB";
const EXEC_SK: &str = "EXEC";

#[derive(Clone, Copy)]
enum Kind {
    Time,
    Number,
    Bool,
    Text,
}

/// A job's native attributes, by their JSON names.
const JOB_NATIVE: &[(&str, Kind)] = &[
    (attr::VERSION, Kind::Number),
    (attr::NEXT_RUN_AT, Kind::Time),
    (attr::ENABLED, Kind::Bool),
    (attr::DELETED_AT, Kind::Time),
    (attr::RUNNING_COUNT, Kind::Number),
    (attr::BUFFERED, Kind::Text),
    (attr::LAST_RUN_STATUS, Kind::Text),
    (attr::LAST_RUN_AT, Kind::Time),
];

/// The statistics kept in a job's `stats` document (written by finishes only).
const JOB_STATS: &[&str] = &[
    "lastRunDuration",
    "lastRunError",
    "totalRuns",
    "successCount",
    "failureCount",
    "averageDuration",
    "totalDurationMs",
    "totalInputTokens",
    "totalOutputTokens",
    "totalTokens",
    "totalCostMicroUsd",
    "consecutiveFailures",
    "spend",
];

/// An execution's native attributes.
const EXECUTION_NATIVE: &[(&str, Kind)] = &[
    (attr::STATUS, Kind::Text),
    (attr::TRIGGER, Kind::Text),
    (attr::STARTED_AT, Kind::Time),
    (attr::LEASE_OWNER, Kind::Text),
    (attr::LEASE_EXPIRES_AT, Kind::Time),
    (attr::JOB_ID, Kind::Text),
];

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn ms(t: DateTime<Utc>) -> AttributeValue {
    n(t.timestamp_millis())
}

/// `<createdAt>#<id>`: 16 hex digits of the instant (sign bit flipped, so that instants before
/// 1970 sort first) and the id; sorts by time, then id.
pub(crate) fn sortable(t: DateTime<Utc>, id: &impl std::fmt::Display) -> String {
    let key = (t.timestamp_millis() as u64) ^ (1 << 63);
    format!("{key:016x}#{id}")
}

/// The bucket of an id, 0 to `buckets - 1`.
pub(crate) fn bucket(id: &uuid::Uuid, buckets: u32) -> u32 {
    (id.as_u128() % u128::from(buckets.max(1))) as u32
}

pub(crate) fn job_key(id: &JobId) -> Item {
    HashMap::from([
        (attr::PK.to_string(), s(format!("JOB#{id}"))),
        (attr::SK.to_string(), s(JOB_SK)),
    ])
}

pub(crate) fn execution_key(id: &ExecutionId) -> Item {
    HashMap::from([
        (attr::PK.to_string(), s(format!("EXEC#{id}"))),
        (attr::SK.to_string(), s(EXEC_SK)),
    ])
}

/// The due-index partition of a job, and of a retry attempt.
pub(crate) fn job_shard(id: &JobId, buckets: u32) -> String {
    format!("job#{}", bucket(id.as_uuid(), buckets))
}

pub(crate) fn attempt_shard(id: &ExecutionId, buckets: u32) -> String {
    format!("try#{}", bucket(id.as_uuid(), buckets))
}

pub(crate) fn lease_shard(id: &ExecutionId, buckets: u32) -> String {
    format!("lease#{}", bucket(id.as_uuid(), buckets))
}

pub(crate) fn ended_shard(id: &ExecutionId, buckets: u32) -> String {
    format!("ended#{}", bucket(id.as_uuid(), buckets))
}

/// The `finished` index partition of an instant: one per hour.
pub(crate) fn done_hour(t: DateTime<Utc>) -> String {
    format!("done#{}", t.timestamp().div_euclid(3600))
}

/// When a job is due, in the `due` index: enabled, not deleted, with a next run.
pub(crate) fn job_due_at(job: &Job) -> Option<DateTime<Utc>> {
    match job.next_run_at {
        Some(t) if job.enabled && job.deleted_at.is_none() => Some(t),
        _ => None,
    }
}

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("stored {what} cannot be read: {detail}"))
}

fn to_attr(kind: Kind, value: &Value) -> Result<Option<AttributeValue>, StoreError> {
    Ok(Some(match (kind, value) {
        (_, Value::Null) => return Ok(None),
        (Kind::Time, Value::String(text)) => {
            let t = DateTime::parse_from_rfc3339(text).map_err(|e| corrupt("instant", e))?;
            ms(t.with_timezone(&Utc))
        }
        (Kind::Number, Value::Number(num)) => n(num),
        (Kind::Bool, Value::Bool(b)) => AttributeValue::Bool(*b),
        (Kind::Text, Value::String(text)) => s(text.clone()),
        (_, other) => return Err(corrupt("value", other)),
    }))
}

fn from_attr(kind: Kind, value: &AttributeValue) -> Result<Value, StoreError> {
    match (kind, value) {
        (Kind::Time, AttributeValue::N(text)) => {
            let millis: i64 = text.parse().map_err(|e| corrupt("instant", e))?;
            let t = DateTime::from_timestamp_millis(millis)
                .ok_or_else(|| corrupt("instant", millis))?;
            serde_json::to_value(t).map_err(|e| corrupt("instant", e))
        }
        (Kind::Number, AttributeValue::N(text)) => {
            let num: u64 = text.parse().map_err(|e| corrupt("number", e))?;
            Ok(Value::from(num))
        }
        (Kind::Bool, AttributeValue::Bool(b)) => Ok(Value::Bool(*b)),
        (Kind::Text, AttributeValue::S(text)) => Ok(Value::String(text.clone())),
        (_, other) => Err(corrupt("attribute", format!("{other:?}"))),
    }
}

fn object(value: Value) -> Result<Map<String, Value>, StoreError> {
    match value {
        Value::Object(map) => Ok(map),
        other => Err(corrupt("record", other)),
    }
}

fn document(item: &Item, name: &str) -> Result<Map<String, Value>, StoreError> {
    let text = item
        .get(name)
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| corrupt("record", format!("attribute {name} is missing")))?;
    object(serde_json::from_str(text).map_err(|e| corrupt("record", e))?)
}

/// Moves the native fields out of `map` into `item`.
fn take_native(
    map: &mut Map<String, Value>,
    fields: &[(&str, Kind)],
    item: &mut Item,
) -> Result<(), StoreError> {
    for (name, kind) in fields {
        if let Some(value) = map.remove(*name)
            && let Some(v) = to_attr(*kind, &value)?
        {
            item.insert((*name).to_string(), v);
        }
    }
    Ok(())
}

/// Puts the native fields of `item` back into `map` (absent ones as `null`).
fn put_native(
    map: &mut Map<String, Value>,
    fields: &[(&str, Kind)],
    item: &Item,
) -> Result<(), StoreError> {
    for (name, kind) in fields {
        let value = match item.get(*name) {
            Some(v) => from_attr(*kind, v)?,
            None => Value::Null,
        };
        map.insert((*name).to_string(), value);
    }
    Ok(())
}

fn json_text(map: &Map<String, Value>) -> Result<AttributeValue, StoreError> {
    serde_json::to_string(map)
        .map(s)
        .map_err(|e| StoreError::Backend(format!("encoding a record: {e}")))
}

/// How items are written: the bucket count of the sharded indexes and the retention TTL.
#[derive(Debug, Clone)]
pub(crate) struct Codec {
    pub(crate) buckets: u32,
    pub(crate) retention: Option<Duration>,
}

impl Codec {
    /// The whole item of a job (for `create_job`), with its index attributes and `statsRev` 0.
    pub(crate) fn job_item(&self, job: &Job) -> Result<Item, StoreError> {
        let (mut item, cfg, stats) = self.job_parts(job)?;
        item.extend(job_key(&job.id));
        item.insert(attr::CFG.into(), cfg);
        item.insert(attr::STATS.into(), stats);
        item.insert(attr::STATS_REV.into(), n(0));
        item.insert(attr::LIST_SHARD.into(), s("jobs"));
        item.insert(attr::LIST_KEY.into(), s(job.id.to_string()));
        if let Some(t) = job_due_at(job) {
            item.insert(attr::DUE_SHARD.into(), s(job_shard(&job.id, self.buckets)));
            item.insert(attr::DUE_AT.into(), ms(t));
        }
        check_size(&item, || largest_field(job))?;
        Ok(item)
    }

    /// A job's native attributes, its configuration document and its statistics document.
    pub(crate) fn job_parts(
        &self,
        job: &Job,
    ) -> Result<(Item, AttributeValue, AttributeValue), StoreError> {
        let mut map = object(
            serde_json::to_value(job)
                .map_err(|e| StoreError::Backend(format!("encoding a job: {e}")))?,
        )?;
        let mut item = Item::new();
        take_native(&mut map, JOB_NATIVE, &mut item)?;
        let mut stats = Map::new();
        for name in JOB_STATS {
            if let Some(v) = map.remove(*name) {
                stats.insert((*name).to_string(), v);
            }
        }
        Ok((item, json_text(&map)?, json_text(&stats)?))
    }

    /// A job and its `statsRev` from its item.
    pub(crate) fn job_from_item(&self, item: &Item) -> Result<(Job, u64), StoreError> {
        let mut map = document(item, attr::CFG)?;
        map.extend(document(item, attr::STATS)?);
        put_native(&mut map, JOB_NATIVE, item)?;
        let job: Job = serde_json::from_value(Value::Object(map)).map_err(|e| corrupt("job", e))?;
        let rev = item
            .get(attr::STATS_REV)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Ok((job, rev))
    }

    /// The whole item of an execution, with its index attributes.
    pub(crate) fn execution_item(&self, e: &Execution) -> Result<Item, StoreError> {
        let mut map = object(
            serde_json::to_value(e)
                .map_err(|err| StoreError::Backend(format!("encoding an execution: {err}")))?,
        )?;
        let mut item = execution_key(&e.id);
        take_native(&mut map, EXECUTION_NATIVE, &mut item)?;
        item.insert(attr::DOC.into(), json_text(&map)?);
        item.insert(attr::CREATED.into(), s(sortable(e.created_at, &e.id)));
        if e.status == ExecutionStatus::Pending && e.trigger == Trigger::Retry {
            item.insert(
                attr::DUE_SHARD.into(),
                s(attempt_shard(&e.id, self.buckets)),
            );
            item.insert(attr::DUE_AT.into(), ms(e.due_at));
        }
        if e.status == ExecutionStatus::Running && e.lease_expires_at.is_some() {
            item.insert(
                attr::LEASE_SHARD.into(),
                s(lease_shard(&e.id, self.buckets)),
            );
        }
        if let Some(done) = e.completed_at {
            item.insert(attr::DONE_HOUR.into(), s(done_hour(done)));
            item.insert(attr::DONE.into(), s(sortable(done, &e.id)));
        }
        if e.status.is_terminal() {
            item.insert(
                attr::ENDED_SHARD.into(),
                s(ended_shard(&e.id, self.buckets)),
            );
            if let Some(keep) = self.retention {
                let until = e
                    .created_at
                    .timestamp()
                    .saturating_add(keep.as_secs() as i64);
                item.insert(attr::EXPIRES_AT.into(), n(until));
            }
        }
        Ok(item)
    }

    /// An execution from its item.
    pub(crate) fn execution_from_item(&self, item: &Item) -> Result<Execution, StoreError> {
        let mut map = document(item, attr::DOC)?;
        put_native(&mut map, EXECUTION_NATIVE, item)?;
        serde_json::from_value(Value::Object(map)).map_err(|e| corrupt("execution", e))
    }
}

/// Whether an item's TTL has passed (DynamoDB deletes such items lazily; reads skip them).
pub(crate) fn expired(item: &Item, now: DateTime<Utc>) -> bool {
    item.get(attr::EXPIRES_AT)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse::<i64>().ok())
        .is_some_and(|t| t <= now.timestamp())
}

/// DynamoDB's size of an item: attribute names and values in bytes (numbers counted at
/// their most, 21 bytes).
pub(crate) fn item_size(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(text) => text.len(),
        AttributeValue::N(_) => 21,
        AttributeValue::B(blob) => blob.as_ref().len(),
        AttributeValue::L(list) => 3 + list.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(k, v)| 1 + k.len() + value_size(v))
                .sum::<usize>()
        }
        _ => 1,
    }
}

/// Refuses an item over DynamoDB's limit, naming the field that makes it large.
fn check_size(item: &Item, field: impl FnOnce() -> String) -> Result<(), StoreError> {
    let size = item_size(item);
    if size > MAX_ITEM_BYTES {
        return Err(StoreError::InvalidInput {
            field: field(),
            message: format!(
                "the record would take {size} bytes; DynamoDB items are limited to 400 KB"
            ),
        });
    }
    Ok(())
}

/// The JSON name of a record's largest field.
fn largest_field(record: &impl serde::Serialize) -> String {
    serde_json::to_value(record)
        .ok()
        .and_then(|v| match v {
            Value::Object(map) => map
                .into_iter()
                .max_by_key(|(_, v)| v.to_string().len())
                .map(|(k, _)| k),
            _ => None,
        })
        .unwrap_or_else(|| "record".into())
}

/// Refuses an execution record (as created by a claim or a manual start) over the limit.
pub(crate) fn check_execution_size(e: &Execution, item: &Item) -> Result<(), StoreError> {
    check_size(item, || largest_field(e))
}

/// The key under which a truncated record's metadata names what was cut.
pub const TRUNCATED_MARKER: &str = "chillTruncated";

/// An execution's final record made to fit an item: when it is too large, the response's
/// `result`, then `errorMessage`, `errorDetails` and the response's own `metadata` are cut
/// (at a character boundary) and the response's metadata records what was cut under
/// [`TRUNCATED_MARKER`]: `{"fields": {"result": <original bytes>, ...}, "limitBytes": ...}`.
pub(crate) fn fit_execution(codec: &Codec, e: &Execution) -> Result<Item, StoreError> {
    let item = codec.execution_item(e)?;
    if item_size(&item) <= MAX_ITEM_BYTES {
        return Ok(item);
    }
    let mut e = e.clone();
    let mut cut: Map<String, Value> = Map::new();
    for _ in 0..8 {
        let item = codec.execution_item(&e)?;
        let size = item_size(&item);
        if size <= MAX_ITEM_BYTES {
            return Ok(item);
        }
        // JSON escaping may make text larger in the document than in memory: cut at least
        // what is over, and more on each round.
        let over = size - MAX_ITEM_BYTES + 1024;
        let response = e.response.get_or_insert_with(empty_response);
        if !response.result.is_empty() {
            let original = response.result.len();
            cut.entry("result").or_insert(Value::from(original));
            truncate(
                &mut response.result,
                original.saturating_sub(over.max(original / 8)),
            );
        } else if e.error_message.as_ref().is_some_and(|m| !m.is_empty()) {
            let message = e.error_message.get_or_insert_default();
            let original = message.len();
            cut.entry("errorMessage").or_insert(Value::from(original));
            truncate(message, original.saturating_sub(over.max(original / 8)));
        } else if e.error_details.is_some() {
            let original = e.error_details.as_ref().map_or(0, |d| d.to_string().len());
            cut.entry("errorDetails").or_insert(Value::from(original));
            e.error_details = None;
        } else {
            let original = response.metadata.to_string().len();
            cut.entry("metadata").or_insert(Value::from(original));
            response.metadata = Value::Null;
        }
        let response = e.response.get_or_insert_with(empty_response);
        let mut metadata = match std::mem::take(&mut response.metadata) {
            Value::Object(map) => map,
            Value::Null => Map::new(),
            other => Map::from_iter([("value".to_string(), other)]),
        };
        metadata.insert(
            TRUNCATED_MARKER.into(),
            serde_json::json!({"fields": cut.clone(), "limitBytes": MAX_ITEM_BYTES}),
        );
        response.metadata = Value::Object(metadata);
    }
    let item = codec.execution_item(&e)?;
    check_size(&item, || "requestPayload".into())?;
    Ok(item)
}

fn empty_response() -> chill_core::ExecutionResponse {
    chill_core::ExecutionResponse {
        result: String::new(),
        tools_used: Vec::new(),
        conversation_turns: None,
        metadata: Value::Null,
    }
}

/// Cuts `text` to at most `len` bytes, at a character boundary.
fn truncate(text: &mut String, len: usize) {
    if len >= text.len() {
        return;
    }
    let mut end = len;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
}
