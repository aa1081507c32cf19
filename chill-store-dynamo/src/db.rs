//! The requests the store is made of, with DynamoDB's limits enforced here: 100 keys per
//! `BatchGetItem`, 25 requests per `BatchWriteItem`, 100 items per `TransactWriteItems`;
//! unprocessed keys and items sent again; query pages followed until there is no
//! `LastEvaluatedKey` (an empty page does not end a query).

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, KeysAndAttributes, Put, TransactWriteItem, Update, WriteRequest,
};
use chill_core::StoreError;

use crate::DynamoStore;
use crate::error::{build_error, store_error};
use crate::expr::Expr;
use crate::item::{Item, attr};

/// Most keys in one `BatchGetItem`.
pub(crate) const MAX_BATCH_GET: usize = 100;
/// Most requests in one `BatchWriteItem`.
pub(crate) const MAX_BATCH_WRITE: usize = 25;
/// Most items in one `TransactWriteItems`.
pub(crate) const MAX_TRANSACTION: usize = 100;
/// How often unprocessed batch keys/items are sent again before the store gives up.
const BATCH_ROUNDS: u32 = 10;

/// How a transaction ended.
#[derive(Debug)]
pub(crate) enum Tx {
    /// Written.
    Done,
    /// Cancelled; the cancellation reason code of each item, in order (`None` for the items
    /// that were fine).
    Cancelled(Vec<String>),
}

/// The reason code of a failed condition.
pub(crate) const CONDITION_FAILED: &str = "ConditionalCheckFailed";

impl Tx {
    /// Whether item `i` failed its condition.
    pub(crate) fn lost(codes: &[String], i: usize) -> bool {
        codes.get(i).is_some_and(|c| c == CONDITION_FAILED)
    }

    /// The error for cancellation reasons other than failed conditions, if any: conflicts
    /// with another transaction and throttling are `Unavailable`, the rest `Backend`.
    pub(crate) fn other_failure(op: &str, codes: &[String]) -> Option<StoreError> {
        let other: Vec<&String> = codes
            .iter()
            .filter(|c| !matches!(c.as_str(), "None" | "" | CONDITION_FAILED))
            .collect();
        if other.is_empty() {
            return None;
        }
        let transient = other.iter().all(|c| {
            matches!(
                c.as_str(),
                "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded"
            )
        });
        let message = format!("{op}: transaction cancelled: {codes:?}");
        Some(if transient {
            StoreError::Unavailable(message)
        } else {
            StoreError::Backend(message)
        })
    }
}

/// A key condition on an index's sort key: `#attr <op> :v`.
pub(crate) struct Range<'a> {
    pub(crate) attr: &'a str,
    pub(crate) op: &'a str,
    pub(crate) value: AttributeValue,
}

/// The upper bound of a `BETWEEN` range, if the query has one.
pub(crate) type Upper<'a> = Option<&'a str>;

/// A query of one index partition.
pub(crate) struct IndexQuery<'a> {
    pub(crate) index: &'a str,
    pub(crate) hash_attr: &'a str,
    pub(crate) hash: String,
    pub(crate) range: Option<Range<'a>>,
    pub(crate) forward: bool,
}

impl DynamoStore {
    pub(crate) fn table(&self) -> &str {
        &self.options.table_name
    }

    /// One item, read consistently.
    pub(crate) async fn get(&self, key: Item, op: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(self.table())
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error(op, e))?;
        Ok(out.item)
    }

    /// Items by key, read consistently, by their partition key; missing ones are left out.
    pub(crate) async fn batch_get(
        &self,
        keys: Vec<Item>,
        op: &str,
    ) -> Result<HashMap<String, Item>, StoreError> {
        let mut found = HashMap::new();
        for chunk in keys.chunks(MAX_BATCH_GET) {
            let mut pending = chunk.to_vec();
            for round in 0..=BATCH_ROUNDS {
                if pending.is_empty() {
                    break;
                }
                if round == BATCH_ROUNDS {
                    return Err(StoreError::Unavailable(format!(
                        "{op}: BatchGetItem left keys unprocessed {BATCH_ROUNDS} times"
                    )));
                }
                if round > 0 {
                    tokio::time::sleep(backoff(round)).await;
                }
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(true)
                    .build()
                    .map_err(build_error)?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(self.table(), request)
                    .send()
                    .await
                    .map_err(|e| store_error(op, e))?;
                for item in out
                    .responses
                    .and_then(|mut r| r.remove(self.table()))
                    .unwrap_or_default()
                {
                    if let Some(pk) = item.get(attr::PK).and_then(|v| v.as_s().ok()) {
                        found.insert(pk.clone(), item);
                    }
                }
                pending = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(self.table()))
                    .map(|k| k.keys)
                    .unwrap_or_default();
            }
        }
        Ok(found)
    }

    /// Deletes items by key, 25 per request, without conditions.
    pub(crate) async fn batch_delete(&self, keys: Vec<Item>, op: &str) -> Result<(), StoreError> {
        for chunk in keys.chunks(MAX_BATCH_WRITE) {
            let mut pending = Vec::with_capacity(chunk.len());
            for key in chunk {
                let delete = DeleteRequest::builder()
                    .set_key(Some(key.clone()))
                    .build()
                    .map_err(build_error)?;
                pending.push(WriteRequest::builder().delete_request(delete).build());
            }
            for round in 0..=BATCH_ROUNDS {
                if pending.is_empty() {
                    break;
                }
                if round == BATCH_ROUNDS {
                    return Err(StoreError::Unavailable(format!(
                        "{op}: BatchWriteItem left items unprocessed {BATCH_ROUNDS} times"
                    )));
                }
                if round > 0 {
                    tokio::time::sleep(backoff(round)).await;
                }
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(self.table(), std::mem::take(&mut pending))
                    .send()
                    .await
                    .map_err(|e| store_error(op, e))?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(self.table()))
                    .unwrap_or_default();
            }
        }
        Ok(())
    }

    /// Up to `limit` keys from one index partition, from `start` on (an exclusive start key),
    /// and where the next page starts (`None` when the partition is exhausted).
    pub(crate) async fn query(
        &self,
        q: &IndexQuery<'_>,
        limit: usize,
        start: Option<Item>,
        op: &str,
    ) -> Result<(Vec<Item>, Option<Item>), StoreError> {
        self.query_range(q, None, limit, start, op).await
    }

    /// [`DynamoStore::query`] with the range `BETWEEN` the query's value and `high`.
    pub(crate) async fn query_between(
        &self,
        q: &IndexQuery<'_>,
        high: &str,
        limit: usize,
        start: Option<Item>,
        op: &str,
    ) -> Result<(Vec<Item>, Option<Item>), StoreError> {
        self.query_range(q, Some(high), limit, start, op).await
    }

    async fn query_range(
        &self,
        q: &IndexQuery<'_>,
        high: Upper<'_>,
        limit: usize,
        start: Option<Item>,
        op: &str,
    ) -> Result<(Vec<Item>, Option<Item>), StoreError> {
        let mut x = Expr::default();
        let mut condition = x.eq(q.hash_attr, AttributeValue::S(q.hash.clone()));
        if let Some(range) = &q.range {
            let name = x.n(range.attr);
            let value = x.v(range.value.clone());
            condition = match high {
                Some(h) => {
                    let upper = x.v(AttributeValue::S(h.to_string()));
                    format!("{condition} AND {name} BETWEEN {value} AND {upper}")
                }
                None => format!("{condition} AND {name} {} {value}", range.op),
            };
        }
        let mut items = Vec::new();
        let mut next = start;
        loop {
            let page = (limit - items.len()).clamp(1, 1000) as i32;
            let out = self
                .client
                .query()
                .table_name(self.table())
                .index_name(q.index)
                .key_condition_expression(&condition)
                .set_expression_attribute_names(x.names())
                .set_expression_attribute_values(x.values())
                .scan_index_forward(q.forward)
                .limit(page)
                .set_exclusive_start_key(next.take())
                .send()
                .await
                .map_err(|e| store_error(op, e))?;
            items.extend(out.items.unwrap_or_default());
            next = out.last_evaluated_key.filter(|k| !k.is_empty());
            if next.is_none() || items.len() >= limit {
                return Ok((items, next));
            }
        }
    }

    /// One `TransactWriteItems`, at most 100 items.
    pub(crate) async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
        op: &str,
    ) -> Result<Tx, StoreError> {
        if items.len() > MAX_TRANSACTION {
            return Err(StoreError::InvalidInput {
                field: "executions".into(),
                message: format!(
                    "{op} would write {} items in one transaction; DynamoDB allows {MAX_TRANSACTION}",
                    items.len()
                ),
            });
        }
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(Tx::Done),
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c)) => {
                    Ok(Tx::Cancelled(
                        c.cancellation_reasons()
                            .iter()
                            .map(|r| r.code().unwrap_or("None").to_string())
                            .collect(),
                    ))
                }
                _ => Err(store_error(op, e)),
            },
        }
    }

    /// A transaction item that puts `item` under `condition`.
    pub(crate) fn put_item(
        &self,
        item: Item,
        condition: Option<String>,
        x: &Expr,
    ) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(self.table())
            .set_item(Some(item))
            .set_condition_expression(condition)
            .set_expression_attribute_names(x.names())
            .set_expression_attribute_values(x.values())
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// A transaction item that updates `key` under `condition`.
    pub(crate) fn update_item(
        &self,
        key: Item,
        update: String,
        condition: Option<String>,
        x: &Expr,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(self.table())
            .set_key(Some(key))
            .update_expression(update)
            .set_condition_expression(condition)
            .set_expression_attribute_names(x.names())
            .set_expression_attribute_values(x.values())
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

/// The wait before round `round` of a batch's unprocessed part: 50 ms doubling, at most 2 s.
fn backoff(round: u32) -> Duration {
    Duration::from_millis((50u64 << round.min(6)).min(2_000))
}
