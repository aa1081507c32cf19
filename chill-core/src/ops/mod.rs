//! Operations: prices and costs, window statistics and summaries, alerts, and retention's
//! archive hook. The engine's maintenance uses them; hosts configure them through
//! [`crate::ChillOptions`] and [`crate::ChillBuilder`].

mod alerts;
mod archive;
mod pricing;
mod summary;

pub use alerts::{Alert, AlertKind, AlertRules, AlertSink};
pub use archive::ArchiveSink;
pub use pricing::{ModelPrice, PriceTable};
pub use summary::{Summary, WindowStats};
