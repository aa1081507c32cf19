//! Provisioning: the table, its indexes (on-demand billing) and its TTL attribute.

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};

use crate::DynamoError;
use crate::error::{build_error, service_code, store_error};
use crate::item::{attr, index};

/// The indexes: name, partition key, sort key (with its type). All project keys only: the
/// store reads the base items (consistently) after an index query.
const INDEXES: &[(&str, &str, &str, ScalarAttributeType)] = &[
    (
        index::DUE,
        attr::DUE_SHARD,
        attr::DUE_AT,
        ScalarAttributeType::N,
    ),
    (
        index::LEASE,
        attr::LEASE_SHARD,
        attr::LEASE_EXPIRES_AT,
        ScalarAttributeType::N,
    ),
    (
        index::JOBS,
        attr::LIST_SHARD,
        attr::LIST_KEY,
        ScalarAttributeType::S,
    ),
    (
        index::BY_JOB,
        attr::JOB_ID,
        attr::CREATED,
        ScalarAttributeType::S,
    ),
    (
        index::ENDED,
        attr::ENDED_SHARD,
        attr::CREATED,
        ScalarAttributeType::S,
    ),
    (
        index::FINISHED,
        attr::DONE_HOUR,
        attr::DONE,
        ScalarAttributeType::S,
    ),
];

fn request_error(operation: &'static str) -> impl Fn(chill_core::StoreError) -> DynamoError {
    move |source| DynamoError::Request { operation, source }
}

fn key(name: &str, key_type: KeyType) -> Result<KeySchemaElement, DynamoError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .map_err(|e| request_error("CreateTable")(build_error(e)))
}

fn definition(name: &str, kind: ScalarAttributeType) -> Result<AttributeDefinition, DynamoError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(kind)
        .build()
        .map_err(|e| request_error("CreateTable")(build_error(e)))
}

/// Creates the table when it does not exist (on-demand billing, every index), waits until it
/// is active, and enables TTL on `expiresAt`. An existing table is checked for the indexes.
pub(crate) async fn ensure_table(client: &Client, table: &str) -> Result<(), DynamoError> {
    match client.describe_table().table_name(table).send().await {
        Ok(described) => {
            let present: Vec<String> = described
                .table()
                .map(|t| {
                    t.global_secondary_indexes()
                        .iter()
                        .filter_map(|i| i.index_name().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let missing: Vec<&str> = INDEXES
                .iter()
                .map(|(name, ..)| *name)
                .filter(|name| !present.iter().any(|p| p == name))
                .collect();
            if !missing.is_empty() {
                return Err(DynamoError::TableMismatch {
                    table: table.to_string(),
                    message: format!(
                        "the global secondary indexes {missing:?} are missing; this table was not made by ensure_table"
                    ),
                });
            }
        }
        Err(e) if service_code(&e) == Some("ResourceNotFoundException") => {
            create(client, table).await?;
        }
        Err(e) => {
            return Err(request_error("DescribeTable")(store_error(
                "DescribeTable",
                e,
            )));
        }
    }
    wait_active(client, table).await?;
    enable_ttl(client, table).await
}

async fn create(client: &Client, table: &str) -> Result<(), DynamoError> {
    let mut request = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(attr::PK, KeyType::Hash)?)
        .key_schema(key(attr::SK, KeyType::Range)?)
        .attribute_definitions(definition(attr::PK, ScalarAttributeType::S)?)
        .attribute_definitions(definition(attr::SK, ScalarAttributeType::S)?);
    let mut defined = vec![attr::PK, attr::SK];
    for (name, hash, range, range_type) in INDEXES {
        for (attribute, kind) in [
            (*hash, ScalarAttributeType::S),
            (*range, range_type.clone()),
        ] {
            if !defined.contains(&attribute) {
                defined.push(attribute);
                request = request.attribute_definitions(definition(attribute, kind)?);
            }
        }
        let gsi = GlobalSecondaryIndex::builder()
            .index_name(*name)
            .key_schema(key(hash, KeyType::Hash)?)
            .key_schema(key(range, KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::KeysOnly)
                    .build(),
            )
            .build()
            .map_err(|e| request_error("CreateTable")(build_error(e)))?;
        request = request.global_secondary_indexes(gsi);
    }
    match request.send().await {
        Ok(_) => Ok(()),
        // Another instance created it first.
        Err(e) if service_code(&e) == Some("ResourceInUseException") => Ok(()),
        Err(e) => Err(request_error("CreateTable")(store_error("CreateTable", e))),
    }
}

async fn wait_active(client: &Client, table: &str) -> Result<(), DynamoError> {
    for _ in 0..600 {
        let described = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| request_error("DescribeTable")(store_error("DescribeTable", e)))?;
        let t = described.table();
        let table_active = t.and_then(|t| t.table_status()) == Some(&TableStatus::Active);
        let indexes_active = t.is_some_and(|t| {
            t.global_secondary_indexes().iter().all(|i| {
                i.index_status()
                    .is_none_or(|s| *s == aws_sdk_dynamodb::types::IndexStatus::Active)
            })
        });
        if table_active && indexes_active {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(DynamoError::TableMismatch {
        table: table.to_string(),
        message: "did not become ACTIVE within 5 minutes".into(),
    })
}

async fn enable_ttl(client: &Client, table: &str) -> Result<(), DynamoError> {
    let described = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(|e| request_error("DescribeTimeToLive")(store_error("DescribeTimeToLive", e)))?;
    let status = described
        .time_to_live_description()
        .and_then(|d| d.time_to_live_status());
    if matches!(
        status,
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
    ) {
        return Ok(());
    }
    let spec = TimeToLiveSpecification::builder()
        .enabled(true)
        .attribute_name(attr::EXPIRES_AT)
        .build()
        .map_err(|e| request_error("UpdateTimeToLive")(build_error(e)))?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(spec)
        .send()
        .await
        .map_err(|e| request_error("UpdateTimeToLive")(store_error("UpdateTimeToLive", e)))?;
    Ok(())
}

/// Deletes the table (for tests and tear-down).
pub(crate) async fn delete_table(client: &Client, table: &str) -> Result<(), DynamoError> {
    match client.delete_table().table_name(table).send().await {
        Ok(_) => Ok(()),
        Err(e) if service_code(&e) == Some("ResourceNotFoundException") => Ok(()),
        Err(e) => Err(request_error("DeleteTable")(store_error("DeleteTable", e))),
    }
}
