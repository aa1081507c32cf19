//! Turning tokens into money: a price table per model.

use std::collections::BTreeMap;

use crate::ai::TokenUsage;

/// The price of one model, in millionths of a US dollar per million tokens (so $3 per million
/// input tokens is `3_000_000`). Integers keep costs exact.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ModelPrice {
    /// Per million input tokens.
    pub input_micro_usd_per_mtok: u64,
    /// Per million output tokens.
    pub output_micro_usd_per_mtok: u64,
}

impl ModelPrice {
    /// A price from US dollars per million input and output tokens (rounded to the
    /// micro-dollar; negative counts as zero).
    pub fn usd_per_mtok(input: f64, output: f64) -> ModelPrice {
        let micro = |usd: f64| (usd.max(0.0) * 1_000_000.0).round() as u64;
        ModelPrice {
            input_micro_usd_per_mtok: micro(input),
            output_micro_usd_per_mtok: micro(output),
        }
    }

    /// The cost of `usage`, in millionths of a US dollar, rounded to the nearest.
    ///
    /// ```
    /// use chill_core::{ModelPrice, TokenUsage};
    /// let price = ModelPrice::usd_per_mtok(3.0, 15.0);
    /// // 1,000 input tokens at $3/M = $0.003, 500 output tokens at $15/M = $0.0075
    /// assert_eq!(price.cost_micro_usd(&TokenUsage { input_tokens: 1_000, output_tokens: 500 }), 10_500);
    /// ```
    pub fn cost_micro_usd(&self, usage: &TokenUsage) -> u64 {
        let part = |tokens: u64, price: u64| u128::from(tokens) * u128::from(price);
        let total = part(usage.input_tokens, self.input_micro_usd_per_mtok)
            + part(usage.output_tokens, self.output_micro_usd_per_mtok);
        u64::try_from((total + 500_000) / 1_000_000).unwrap_or(u64::MAX)
    }
}

/// Prices per model name, with an optional default for models not listed. The model of an
/// execution is the one the AI response names ([`crate::AiResponse::model`]), else the job's
/// metadata `model` string, else the default.
///
/// ```
/// use chill_core::{ModelPrice, PriceTable};
/// let prices = PriceTable::default()
///     .with_model("claude-sonnet-4", ModelPrice::usd_per_mtok(3.0, 15.0))
///     .with_default(ModelPrice::usd_per_mtok(1.0, 5.0));
/// assert_eq!(prices.price("claude-sonnet-4").unwrap().input_micro_usd_per_mtok, 3_000_000);
/// assert_eq!(prices.price("unknown").unwrap().input_micro_usd_per_mtok, 1_000_000);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PriceTable {
    models: BTreeMap<String, ModelPrice>,
    default: Option<ModelPrice>,
}

impl PriceTable {
    /// Add (or replace) a model's price.
    pub fn with_model(mut self, model: impl Into<String>, price: ModelPrice) -> PriceTable {
        self.models.insert(model.into(), price);
        self
    }

    /// The price of models not listed.
    pub fn with_default(mut self, price: ModelPrice) -> PriceTable {
        self.default = Some(price);
        self
    }

    /// The price of a model: its own, else the default; `None` when neither is set.
    pub fn price(&self, model: &str) -> Option<ModelPrice> {
        self.models.get(model).copied().or(self.default)
    }

    /// Whether no price is set at all (costs are then not computed).
    pub fn is_empty(&self) -> bool {
        self.models.is_empty() && self.default.is_none()
    }

    /// The cost of `usage` by `model` (the default price when `None`); `None` when the table
    /// has no price for it.
    pub fn cost_micro_usd(&self, model: Option<&str>, usage: &TokenUsage) -> Option<u64> {
        let price = match model {
            Some(m) => self.price(m),
            None => self.default,
        }?;
        Some(price.cost_micro_usd(usage))
    }
}
