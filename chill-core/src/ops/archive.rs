//! Retention's archive hook: executions about to be deleted, handed to the host first.

use async_trait::async_trait;

use crate::model::Execution;

/// Receives each batch of executions that retention is about to delete (to copy them to cold
/// storage, say). When it fails, the batch is not deleted and retention tries again at its
/// next round.
///
/// ```
/// use async_trait::async_trait;
/// use chill_core::{ArchiveSink, Execution};
///
/// struct Discard;
///
/// #[async_trait]
/// impl ArchiveSink for Discard {
///     async fn archive(&self, executions: &[Execution]) -> Result<(), String> {
///         let _ = executions;
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait ArchiveSink: Send + Sync {
    /// Keep these executions somewhere; `Err` with a reason keeps them in the store.
    async fn archive(&self, executions: &[Execution]) -> Result<(), String>;
}
