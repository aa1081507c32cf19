//! Filters and cursor pagination for listings.

use serde::{Deserialize, Serialize};

use crate::model::ExecutionStatus;

/// Which jobs [`super::Store::list_jobs`] returns. Empty filters match everything; soft
/// deleted jobs are left out unless `include_deleted`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct JobFilter {
    /// Only enabled (`true`) or paused (`false`) jobs.
    pub enabled: Option<bool>,
    /// Only jobs carrying this tag (exact match).
    pub tag: Option<String>,
    /// Only jobs whose name contains this text (case-sensitive, byte for byte).
    pub name_contains: Option<String>,
    /// Only jobs whose last run ended with this status.
    pub last_status: Option<ExecutionStatus>,
    /// Include soft-deleted jobs.
    pub include_deleted: bool,
}

/// An opaque position in a listing, from [`Page::next_cursor`]. Backends choose its content.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cursor(String);

impl Cursor {
    /// Wrap a backend's position.
    pub fn new(position: impl Into<String>) -> Cursor {
        Cursor(position.into())
    }

    /// The backend's position.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One page of a listing: at most `limit` items after `cursor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// At most this many items, 1 to [`PageRequest::MAX_LIMIT`].
    pub limit: u32,
    /// Continue after this position; `None` starts at the beginning.
    pub cursor: Option<Cursor>,
}

impl PageRequest {
    /// The largest page.
    pub const MAX_LIMIT: u32 = 1000;

    /// The first page of `limit` items (clamped to 1..=MAX_LIMIT).
    pub fn first(limit: u32) -> PageRequest {
        PageRequest {
            limit: limit.clamp(1, Self::MAX_LIMIT),
            cursor: None,
        }
    }

    /// The page after `cursor`.
    pub fn after(limit: u32, cursor: Cursor) -> PageRequest {
        PageRequest {
            limit: limit.clamp(1, Self::MAX_LIMIT),
            cursor: Some(cursor),
        }
    }

    /// The limit as a count, clamped.
    pub fn max_items(&self) -> usize {
        self.limit.clamp(1, Self::MAX_LIMIT) as usize
    }
}

impl Default for PageRequest {
    fn default() -> PageRequest {
        PageRequest::first(100)
    }
}

/// One page of results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items, in the listing's order.
    pub items: Vec<T>,
    /// Where the next page starts; `None` when this was the last.
    pub next_cursor: Option<Cursor>,
}
