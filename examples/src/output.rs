//! What the CLI prints: tables for people, JSON for scripts.

use std::io::Write;

use chill_core::{Execution, Job};
use chrono::{DateTime, SecondsFormat, Utc};

use crate::AppError;

/// Write lines to standard output.
pub fn print(text: &str) -> Result<(), AppError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| {
            if text.ends_with('\n') {
                Ok(())
            } else {
                out.write_all(b"\n")
            }
        })
        .and_then(|()| out.flush())
        .map_err(|e| AppError::io("standard output", e))
}

/// A value as pretty JSON.
pub fn json<T: serde::Serialize>(value: &T) -> Result<String, AppError> {
    serde_json::to_string_pretty(value).map_err(|e| AppError::json("output", e))
}

/// Rows under headers, columns padded to their widest cell.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (cell, &w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        s.trim_end().to_string()
    };
    let mut out = line(headers.to_vec());
    out.push('\n');
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

/// An instant as RFC 3339 UTC, or `-`.
pub fn time(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "-".to_string(),
        |t| t.to_rfc3339_opts(SecondsFormat::Secs, true),
    )
}

/// Jobs as a table.
pub fn jobs_table(jobs: &[Job]) -> String {
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|j| {
            vec![
                j.id.to_string(),
                j.name.clone(),
                j.schedule.clone(),
                j.timezone.clone(),
                if j.is_deleted() {
                    "deleted".into()
                } else if j.enabled {
                    "enabled".into()
                } else {
                    "paused".into()
                },
                time(j.next_run_at),
                j.last_run_status.map_or("-".into(), |s| s.to_string()),
                format!("{}/{}/{}", j.total_runs, j.success_count, j.failure_count),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "NAME",
            "SCHEDULE",
            "TZ",
            "STATE",
            "NEXT RUN",
            "LAST",
            "RUNS/OK/FAILED",
        ],
        &rows,
    )
}

/// Executions as a table.
pub fn executions_table(executions: &[Execution]) -> String {
    let rows: Vec<Vec<String>> = executions
        .iter()
        .map(|e| {
            vec![
                e.id.to_string(),
                e.trigger.to_string(),
                e.status.to_string(),
                e.attempt.to_string(),
                time(Some(e.started_at)),
                e.duration_ms.map_or("-".into(), |d| format!("{d} ms")),
                e.error_message.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(
        &[
            "ID", "TRIGGER", "STATUS", "ATTEMPT", "STARTED", "DURATION", "ERROR",
        ],
        &rows,
    )
}
