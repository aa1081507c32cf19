//! An AI client whose answers and latencies are programmed per prompt.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::ai::{AiClient, AiError, AiRequest, AiResponse, TokenUsage};
use crate::clock::Clock;
use crate::model::{ExecutionId, JobId};

/// One programmed answer: wait `latency` on the clock, then answer `outcome`.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// How long the call takes (on the clock given to [`ScriptedAi::new`]).
    pub latency: Duration,
    /// What it returns.
    pub outcome: Result<AiResponse, AiError>,
}

impl Step {
    /// An immediate success answering `text`.
    pub fn ok(text: impl Into<String>) -> Step {
        Step {
            latency: Duration::ZERO,
            outcome: Ok(AiResponse {
                result: text.into(),
                usage: Some(TokenUsage {
                    input_tokens: 10,
                    output_tokens: 20,
                }),
                ..AiResponse::default()
            }),
        }
    }

    /// An immediate failure.
    pub fn err(error: AiError) -> Step {
        Step {
            latency: Duration::ZERO,
            outcome: Err(error),
        }
    }

    /// The same step after `latency`.
    pub fn after(mut self, latency: Duration) -> Step {
        self.latency = latency;
        self
    }
}

/// A call the client received.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// When it arrived (clock time).
    pub at: DateTime<Utc>,
    /// The prompt.
    pub prompt: String,
    /// The job.
    pub job_id: JobId,
    /// The execution.
    pub execution_id: ExecutionId,
}

/// An [`AiClient`] for tests: per prompt, a queue of [`Step`]s consumed in order (the last one
/// repeats); prompts without a script get the default step (an immediate success echoing the
/// prompt, 10 input and 20 output tokens). Every call is recorded.
///
/// ```
/// use std::sync::Arc;
/// use chill_core::testkit::{ScriptedAi, Step};
/// use chill_core::{AiError, ManualClock};
/// # use chrono::Utc;
/// let ai = ScriptedAi::new(Arc::new(ManualClock::new(Utc::now())));
/// ai.script("flaky", vec![
///     Step::err(AiError::Server { status: Some(503), message: "down".into() }),
///     Step::ok("fine now"),
/// ]);
/// ```
pub struct ScriptedAi {
    clock: Arc<dyn Clock>,
    scripts: Mutex<HashMap<String, VecDeque<Step>>>,
    default: Mutex<Option<Step>>,
    calls: Mutex<Vec<Call>>,
}

impl std::fmt::Debug for ScriptedAi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedAi")
            .field("calls", &lock(&self.calls).len())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ScriptedAi {
    /// A client that waits on `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> ScriptedAi {
        ScriptedAi {
            clock,
            scripts: Mutex::new(HashMap::new()),
            default: Mutex::new(None),
            calls: Mutex::new(Vec::new()),
        }
    }

    /// Program the answers to a prompt, in order; the last repeats.
    pub fn script(&self, prompt: impl Into<String>, steps: Vec<Step>) {
        lock(&self.scripts).insert(prompt.into(), steps.into());
    }

    /// The answer to prompts without a script (instead of echoing them).
    pub fn set_default(&self, step: Step) {
        *lock(&self.default) = Some(step);
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.calls).clone()
    }

    /// The calls for one prompt.
    pub fn calls_for(&self, prompt: &str) -> Vec<Call> {
        lock(&self.calls)
            .iter()
            .filter(|c| c.prompt == prompt)
            .cloned()
            .collect()
    }

    fn next_step(&self, prompt: &str) -> Step {
        if let Some(queue) = lock(&self.scripts).get_mut(prompt) {
            let step = if queue.len() > 1 {
                queue.pop_front()
            } else {
                queue.front().cloned()
            };
            if let Some(step) = step {
                return step;
            }
        }
        lock(&self.default)
            .clone()
            .unwrap_or_else(|| Step::ok(prompt))
    }
}

#[async_trait]
impl AiClient for ScriptedAi {
    async fn call(&self, request: &AiRequest) -> Result<AiResponse, AiError> {
        let prompt = request.payload.prompt.clone();
        lock(&self.calls).push(Call {
            at: self.clock.now(),
            prompt: prompt.clone(),
            job_id: request.job_id,
            execution_id: request.execution_id,
        });
        let step = self.next_step(&prompt);
        if !step.latency.is_zero() {
            self.clock.sleep(step.latency).await;
        }
        step.outcome
    }
}
