//! An AI endpoint that answers after a few milliseconds, fails now and then, and counts its
//! calls per execution: what shows an execution that ran twice.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use crate::ai::{AiClient, AiError, AiRequest, AiResponse, TokenUsage};
use crate::model::ExecutionId;

/// An AI endpoint that answers after a few milliseconds: mostly successes, some 503s
/// (retried), a few 400s (not retried). It counts its calls per execution and its successes.
///
/// ```
/// use chill_core::testkit::multi_instance::CountingAi;
/// let ai = CountingAi::new(7);
/// assert_eq!((ai.server_errors, ai.invalid, ai.max_latency_ms), (10, 3, 20));
/// assert!(ai.calls().is_empty());
/// ```
#[derive(Debug)]
pub struct CountingAi {
    /// The xorshift state and the calls per execution.
    state: Mutex<(u64, HashMap<ExecutionId, u32>)>,
    successes: AtomicU64,
    /// Percent of calls answered 503.
    pub server_errors: u64,
    /// Percent of calls answered 400.
    pub invalid: u64,
    /// Longest answer time, in milliseconds.
    pub max_latency_ms: u64,
}

impl CountingAi {
    /// 10% of calls answered 503, 3% answered 400, answers within 20 ms; `seed` drives the
    /// rolls.
    pub fn new(seed: u64) -> CountingAi {
        CountingAi {
            state: Mutex::new((seed | 1, HashMap::new())),
            successes: AtomicU64::new(0),
            server_errors: 10,
            invalid: 3,
            max_latency_ms: 20,
        }
    }

    /// Calls per execution.
    pub fn calls(&self) -> HashMap<ExecutionId, u32> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .clone()
    }

    /// Calls answered with success.
    pub fn successes(&self) -> u64 {
        self.successes.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl AiClient for CountingAi {
    async fn call(&self, request: &AiRequest) -> Result<AiResponse, AiError> {
        let (roll, latency) = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            *state.1.entry(request.execution_id).or_default() += 1;
            // xorshift64
            let mut x = state.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            state.0 = x;
            (x % 100, (x >> 8) % (self.max_latency_ms + 1))
        };
        tokio::time::sleep(Duration::from_millis(latency)).await;
        if roll < self.server_errors {
            return Err(AiError::Server {
                status: Some(503),
                message: "overloaded".into(),
            });
        }
        if roll < self.server_errors + self.invalid {
            return Err(AiError::InvalidRequest {
                status: Some(400),
                message: "bad prompt".into(),
            });
        }
        self.successes.fetch_add(1, Ordering::SeqCst);
        Ok(AiResponse {
            result: format!("done: {}", request.payload.prompt),
            tools_used: vec!["slack".into()],
            usage: Some(TokenUsage {
                input_tokens: 10 + roll,
                output_tokens: 20 + latency,
            }),
            ..AiResponse::default()
        })
    }
}
