//! The two writes the engine makes per execution, a claim and a finish, in one round trip to
//! the database.
//!
//! - SQLite: statements that the writer connection's thread runs in one go (instead of one
//!   hand-off per statement), inside `BEGIN IMMEDIATE; SAVEPOINT w; ...; RELEASE w; COMMIT`
//!   with other writes queued at the same time (see `batch`). Every statement carries the
//!   write's condition (an `EXISTS` over the row that decides it) and the deciding row is
//!   updated last, so every statement sees that row as it was; the writer lock taken by
//!   `BEGIN IMMEDIATE` keeps every other writer out until `COMMIT`. A new execution whose id
//!   exists fails its `INSERT`, and the write is rolled back to its savepoint: nothing of it
//!   is written.
//! - PostgreSQL: one statement of data-modifying `WITH` queries (atomic on its own, one
//!   commit): the deciding `UPDATE` comes first and the others depend on what it returns.
//! - MySQL has neither `UPDATE ... RETURNING` nor writing `WITH` queries: it keeps a
//!   transaction of several statements (see `store`).
//!
//! A job's statistics are computed by the database (`total_runs = total_runs + 1`, ...), so
//! the finish does not read them first. Sums stop at the largest integer the databases store
//! instead of overflowing.

use chill_core::store::{Finish, SlotClaim, StatsDelta};
use chill_core::{ExecutionStatus, Spend, StoreError};

use crate::Backend;
use crate::codec::{EXECUTION_COLUMNS, Limits, execution_args, execution_id, int, job_id, ms};
use crate::db::Arg;
use crate::sql::Statements;

/// Most executions a claim writes in one round trip; larger claims (a long catch-up) take a
/// transaction of several statements, which no limit on bound parameters constrains.
pub(crate) const MAX_SCRIPT_EXECUTIONS: usize = 512;

/// Rows in one `VALUES` list.
const ROWS_PER_INSERT: usize = 64;

/// Indexed columns of an execution that a finish does not change in practice. On SQLite the
/// finish writes them in a statement of their own that changes the row only when one of them
/// differs, so that a finish does not rewrite their indexes (SQLite rewrites the index entries
/// of every column a `SET` names, changed or not).
const STABLE_COLUMNS: [&str; 3] = ["job_id", "created_at", "attempt_due_at"];

/// The largest integer every database stores (`BIGINT`).
const MAX_INT: &str = "9223372036854775807";

/// The largest failure streak, `u32::MAX`, as SQL.
const U32_MAX: &str = "4294967295";

/// SQL text with `?` placeholders and its arguments, in order.
#[derive(Debug, Default, Clone)]
pub(crate) struct Sql {
    pub(crate) text: String,
    pub(crate) args: Vec<Arg>,
    /// How many statements the text holds (set by [`Sql::statements`] and by the writes).
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) statements: usize,
    /// Whether a statement after the first may fail while the transaction goes on (an
    /// `INSERT` of an execution that exists): then the write needs a savepoint to be undone
    /// alone. The first statement fails alone anyway; nothing else is expected to fail
    /// without ending the transaction.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) may_fail_late: bool,
}

impl Sql {
    /// An empty text with room for `text` bytes and `args` arguments (building a write's text
    /// is on every claim's and finish's path: no regrowing).
    fn with_capacity(text: usize, args: usize) -> Sql {
        Sql {
            text: String::with_capacity(text),
            args: Vec::with_capacity(args),
            ..Sql::default()
        }
    }

    fn push(&mut self, text: &str) -> &mut Sql {
        self.text.push_str(text);
        self
    }

    fn push_all(&mut self, parts: &[&str]) -> &mut Sql {
        for part in parts {
            self.text.push_str(part);
        }
        self
    }

    fn arg(&mut self, arg: Arg) -> &mut Sql {
        self.args.push(arg);
        self
    }

    fn append(&mut self, other: Sql) -> &mut Sql {
        self.text.push_str(&other.text);
        self.args.extend(other.args);
        self
    }

    /// `col = ` (after a comma unless it is the first assignment), for the expression to
    /// follow.
    fn assign(&mut self, column: &str) -> &mut Sql {
        if !self.text.is_empty() {
            self.text.push_str(", ");
        }
        self.push_all(&[column, " = "])
    }

    /// `col = <expr>` (after a comma unless it is the first assignment).
    fn set(&mut self, column: &str, expr: &str, args: impl IntoIterator<Item = Arg>) {
        self.assign(column).push(expr).args.extend(args);
    }

    /// The text for the database (`$n` placeholders on PostgreSQL) and the arguments.
    pub(crate) fn build(self, backend: Backend) -> (String, Vec<Arg>) {
        (backend.placeholders(&self.text), self.args)
    }

    /// The same for a write: the text rewritten for the database (PostgreSQL's placeholders),
    /// with its arguments and statement count.
    pub(crate) fn for_backend(mut self, backend: Backend) -> Sql {
        if backend == Backend::Postgres {
            self.text = backend.placeholders(&self.text);
        }
        self
    }

    /// Statements run one after the other: `a; b; c`.
    fn statements(statements: Vec<Sql>) -> Sql {
        let mut out = Sql::with_capacity(
            statements.iter().map(|s| s.text.len() + 2).sum(),
            statements.iter().map(|s| s.args.len()).sum(),
        );
        out.statements = statements.len();
        for (i, s) in statements.into_iter().enumerate() {
            if i > 0 {
                out.text.push_str("; ");
            }
            out.append(s);
        }
        out
    }
}

/// The pieces of the writes' text that depend on the table names only, made once per store.
#[derive(Debug)]
pub(crate) struct Fragments {
    /// `UPDATE <jobs> SET `
    update_jobs: String,
    /// `UPDATE <executions> SET `
    update_executions: String,
    /// `EXISTS (SELECT 1 FROM <jobs> WHERE `
    job_exists: String,
    /// `EXISTS (SELECT 1 FROM <executions> WHERE `
    execution_exists: String,
    /// ` INTO <executions> (<columns>) SELECT * FROM (VALUES `
    insert_values: String,
    /// `(?, ?, ...)`: one execution's values.
    execution_row: String,
    /// SQLite: the condition that holds when a finish started the job's buffered execution.
    buffered_started: String,
    /// SQLite: ` WHERE id = (SELECT buffered_execution_id FROM <jobs> WHERE id = ?) AND `
    buffered_of_job: String,
    /// ` RETURNING <execution columns>`
    returning_execution: String,
}

impl Fragments {
    pub(crate) fn new(jobs: &str, executions: &str) -> Fragments {
        let columns = EXECUTION_COLUMNS.join(", ");
        Fragments {
            update_jobs: format!("UPDATE {jobs} SET "),
            update_executions: format!("UPDATE {executions} SET "),
            job_exists: format!("EXISTS (SELECT 1 FROM {jobs} WHERE "),
            execution_exists: format!("EXISTS (SELECT 1 FROM {executions} WHERE "),
            insert_values: format!(" INTO {executions} ({columns}) SELECT * FROM (VALUES "),
            execution_row: format!("({})", vec!["?"; EXECUTION_COLUMNS.len()].join(", ")),
            buffered_started: format!(
                "buffered_execution_id IS NOT NULL AND EXISTS (SELECT 1 FROM {executions} \
                 WHERE id = {jobs}.buffered_execution_id)"
            ),
            buffered_of_job: format!(
                " WHERE id = (SELECT buffered_execution_id FROM {jobs} WHERE id = ?) AND "
            ),
            returning_execution: format!(" RETURNING {columns}"),
        }
    }
}

/// The job update of a claim: what it sets and the condition it holds on.
#[derive(Debug)]
pub(crate) struct ClaimUpdate {
    /// `col = ?, ...`
    pub(crate) set: Sql,
    /// `id = ? AND version = ? AND ...`
    pub(crate) condition: Sql,
}

impl ClaimUpdate {
    pub(crate) fn new(claim: &SlotClaim) -> Result<ClaimUpdate, StoreError> {
        let next = Arg::Int(claim.next_run_at.map(ms));
        let mut set = Sql::with_capacity(256, 8);
        set.set("next_run_at", "?", [next.clone()]);
        set.set("due_at", "?", [next]);
        set.set("version", "version + 1", []);
        set.set(
            "running_count",
            "running_count + ?",
            [Arg::Int(Some(i64::from(claim.started)))],
        );
        if claim.started > 0 {
            set.set("last_run_status", "'running'", []);
            set.set("last_run_at", "?", [Arg::Int(Some(ms(claim.started_at)))]);
        }
        if let Some(buffered) = &claim.buffered {
            set.set("buffered_execution_id", "?", [execution_id(buffered)]);
        }
        let mut condition = Sql::with_capacity(160, 4);
        condition
            .push("id = ? AND version = ? AND next_run_at = ? AND enabled = TRUE AND deleted_at IS NULL")
            .arg(job_id(&claim.job_id))
            .arg(Arg::Int(Some(int("version", claim.expected_version)?)))
            .arg(Arg::Int(Some(ms(claim.expected_next_run_at))));
        if let Some(running) = claim.expected_running {
            condition
                .push(" AND running_count = ?")
                .arg(Arg::Int(Some(i64::from(running))));
        }
        if claim.buffered.is_some() {
            condition.push(" AND buffered_execution_id IS NULL");
        }
        Ok(ClaimUpdate { set, condition })
    }

    /// `UPDATE jobs SET ... WHERE ...` (the transaction path).
    pub(crate) fn update(self, sql: &Statements) -> Sql {
        let mut out = Sql::with_capacity(512, self.set.args.len() + self.condition.args.len());
        out.push(&sql.fragments.update_jobs)
            .append(self.set)
            .push(" WHERE ")
            .append(self.condition);
        out
    }
}

/// `INSERT INTO executions (...) SELECT * FROM (VALUES (...), ...) [AS v] WHERE <guard>` for
/// each run of up to [`ROWS_PER_INSERT`] rows, each guard made by `guard`.
fn guarded_inserts(
    sql: &Statements,
    rows: &[Vec<Arg>],
    verb: &str,
    mut guard: impl FnMut(&mut Sql),
) -> Vec<Sql> {
    let f = &sql.fragments;
    let alias = match sql.backend {
        Backend::Postgres => " AS v",
        Backend::Sqlite | Backend::MySql => "",
    };
    rows.chunks(ROWS_PER_INSERT)
        .map(|chunk| {
            let mut s = Sql::with_capacity(
                f.insert_values.len() + (f.execution_row.len() + 2) * chunk.len() + 512,
                EXECUTION_COLUMNS.len() * chunk.len() + 8,
            );
            s.push_all(&[verb, &f.insert_values]);
            for (i, r) in chunk.iter().enumerate() {
                if i > 0 {
                    s.push(", ");
                }
                s.push(&f.execution_row);
                s.args.extend(r.iter().cloned());
            }
            s.push_all(&[")", alias, " WHERE "]);
            guard(&mut s);
            s
        })
        .collect()
}

/// A claim in one round trip. PostgreSQL: one statement that returns a row when the job was
/// claimed, none when its condition no longer held. SQLite: the statements of the claim, which
/// the writer runs in a transaction (see `batch`); its last statement changes the job's row
/// when the job was claimed, none when not. An execution that exists already fails its
/// `INSERT`.
pub(crate) fn claim(sql: &Statements, update: ClaimUpdate, rows: &[Vec<Arg>]) -> Sql {
    let jobs = &sql.jobs;
    match sql.backend {
        Backend::Postgres => {
            let mut out = Sql {
                statements: 1,
                ..Sql::default()
            };
            out.push(&format!("WITH claimed AS (UPDATE {jobs} SET "))
                .append(update.set)
                .push(" WHERE ")
                .append(update.condition)
                .push(" RETURNING 1)");
            let inserts = guarded_inserts(sql, rows, "INSERT", |s| {
                s.push("EXISTS (SELECT 1 FROM claimed)");
            });
            for (i, insert) in inserts.into_iter().enumerate() {
                out.push(&format!(", i{i} AS (")).append(insert).push(")");
            }
            out.push(" SELECT 1 FROM claimed");
            out
        }
        Backend::Sqlite | Backend::MySql => {
            let mut statements = guarded_inserts(sql, rows, "INSERT", |s| {
                s.push(&sql.fragments.job_exists)
                    .append(update.condition.clone())
                    .push(")");
            });
            let may_fail_late = statements.len() > 1;
            // Last: the conditional write that decides, its changed row count the outcome.
            let mut last =
                Sql::with_capacity(512, update.set.args.len() + update.condition.args.len());
            last.push(&sql.fragments.update_jobs)
                .append(update.set)
                .push(" WHERE ")
                .append(update.condition);
            statements.push(last);
            Sql {
                may_fail_late,
                ..Sql::statements(statements)
            }
        }
    }
}

/// The fence of a finish: `id = ? AND status = 'running' AND lease_owner = ? ...`.
pub(crate) fn fence(finish: &Finish) -> Sql {
    let mut s = Sql::with_capacity(128, 3);
    s.push("id = ? AND status = 'running' AND lease_owner = ?")
        .arg(execution_id(&finish.execution.id))
        .arg(Arg::Bytes(Some(finish.owner.as_bytes().to_vec())));
    if let Some(t) = finish.expired_by {
        s.push(" AND lease_expires_at IS NOT NULL AND lease_expires_at <= ?")
            .arg(Arg::Int(Some(ms(t))));
    }
    s
}

/// `x + min(?, MAX - x)`: a sum that stops at the largest integer.
fn saturating_add(backend: Backend, column: &str) -> [&str; 8] {
    [
        column,
        " + ",
        backend.least(),
        "(?, ",
        MAX_INT,
        " - ",
        column,
        ")",
    ]
}

/// The assignments of a finish to its job's statistics (the in-memory store's rule), computed
/// by the database from the stored values. `promoted`: an SQL condition that holds when the
/// finish starts the job's buffered execution, and the start time.
fn stats_set(
    backend: Backend,
    d: &StatsDelta,
    promoted: Option<(&str, i64)>,
    limits: &Limits,
) -> Result<Sql, StoreError> {
    let mut s = Sql::with_capacity(2048, 24);
    let (greatest, least) = (backend.greatest(), backend.least());
    let status = Arg::Text(Some(d.status.as_str().to_string()));
    match promoted {
        Some((p, now)) => {
            s.assign("running_count").push_all(&[
                greatest,
                "(running_count - 1, 0) + CASE WHEN ",
                p,
                " THEN 1 ELSE 0 END",
            ]);
            s.assign("last_run_status")
                .push_all(&["CASE WHEN ", p, " THEN 'running' ELSE ? END"])
                .arg(status);
            s.assign("last_run_at")
                .push_all(&["CASE WHEN ", p, " THEN ? ELSE last_run_at END"])
                .arg(Arg::Int(Some(now)));
            s.set("buffered_execution_id", "NULL", []);
        }
        None => {
            s.assign("running_count")
                .push_all(&[greatest, "(running_count - 1, 0)"]);
            s.set("last_run_status", "?", [status]);
        }
    }
    // The failure streak: chill-core's rule says whether this end resets it, adds one or
    // leaves it.
    match (
        d.consecutive_failures_after(0),
        d.consecutive_failures_after(1),
    ) {
        (0, 0) => s.set("consecutive_failures", "0", []),
        (1, 2) => {
            s.assign("consecutive_failures").push_all(&[
                least,
                "(consecutive_failures + 1, ",
                U32_MAX,
                ")",
            ]);
        }
        _ => {}
    }
    if !d.counted {
        return Ok(s);
    }
    // The spend: the day and month keys come from chill-core (`Spend::keys`); as in
    // `Spend::add`, a later period starts from zero, the same period adds. Each amount is
    // written before the key it reads.
    let cost = Arg::Int(Some(int("costMicroUsd", d.cost_micro_usd)?));
    let (day, month) = Spend::keys(d.completed_at);
    for (key_column, amount_column, key) in [
        ("spend_day", "spend_day_micro_usd", day),
        ("spend_month", "spend_month_micro_usd", month),
    ] {
        let key = Arg::Int(Some(i64::from(key)));
        s.assign(amount_column)
            .push_all(&["CASE WHEN ? > ", key_column, " THEN ? ELSE "])
            .push_all(&saturating_add(backend, amount_column))
            .push(" END");
        s.args.extend([key.clone(), cost.clone(), cost.clone()]);
        s.assign(key_column)
            .push_all(&[greatest, "(", key_column, ", ?)"])
            .arg(key);
    }
    let duration = Arg::Int(Some(int("durationMs", d.duration_ms)?));
    s.set("last_run_duration", "?", [duration.clone()]);
    s.set(
        "last_run_error",
        "?",
        [limits.opt_bytes("lastRunError", d.error.as_deref())?],
    );
    // Every expression reads the values as stored before this update (MySQL would read the
    // ones assigned to its left): the average is written before the totals it reads.
    let total_duration = saturating_add(backend, "total_duration_ms");
    s.assign("average_duration")
        .push("(")
        .push_all(&total_duration)
        .push_all(&[") ", backend.int_div(), " (total_runs + 1)"])
        .arg(duration.clone());
    s.assign("total_duration_ms")
        .push_all(&total_duration)
        .arg(duration);
    s.set("total_runs", "total_runs + 1", []);
    if d.status == ExecutionStatus::Success {
        s.set("success_count", "success_count + 1", []);
    } else {
        s.set("failure_count", "failure_count + 1", []);
    }
    let tokens = d.input_tokens.saturating_add(d.output_tokens);
    for (column, field, value) in [
        ("total_input_tokens", "inputTokens", d.input_tokens),
        ("total_output_tokens", "outputTokens", d.output_tokens),
        ("total_tokens", "tokensUsed", tokens),
        ("total_cost_micro_usd", "costMicroUsd", d.cost_micro_usd),
    ] {
        s.assign(column)
            .push_all(&saturating_add(backend, column))
            .arg(Arg::Int(Some(int(field, value)?)));
    }
    Ok(s)
}

/// A finish in one round trip (SQLite and PostgreSQL). PostgreSQL: one statement that returns
/// one row, the promoted execution's columns (all `NULL` when none started) when a promotion
/// was asked for, then how many executions were finished (0 when fenced). SQLite: the
/// statements of the finish, which the writer runs in a transaction (see `batch`): the
/// promoted execution's row when one started, and a last statement that changes the
/// execution's row when it was finished, none when fenced. A next attempt whose id exists
/// fails its `INSERT`.
pub(crate) fn finish(
    sql: &Statements,
    finish: &Finish,
    limits: &Limits,
) -> Result<Sql, StoreError> {
    let (jobs, executions) = (&sql.jobs, &sql.executions);
    let f = &sql.fragments;
    let record = &finish.execution;
    let backend = sql.backend;
    // Every column but the id; on SQLite the stable ones in a statement of their own.
    let mut assign = Sql::with_capacity(1024, EXECUTION_COLUMNS.len());
    let mut stable = Sql::with_capacity(128, STABLE_COLUMNS.len());
    let mut changed = Sql::with_capacity(128, STABLE_COLUMNS.len());
    for (column, arg) in EXECUTION_COLUMNS
        .iter()
        .zip(execution_args(record, limits)?)
        .skip(1)
    {
        if backend == Backend::Sqlite && STABLE_COLUMNS.contains(column) {
            if !changed.text.is_empty() {
                changed.push(" OR ");
            }
            changed.push_all(&[column, " IS NOT ?"]).arg(arg.clone());
            stable.set(column, "?", [arg]);
        } else {
            assign.set(column, "?", [arg]);
        }
    }
    let next = finish
        .next_attempt
        .as_ref()
        .map(|n| execution_args(n, limits))
        .transpose()?;
    let now = ms(record.completed_at.unwrap_or(record.started_at));
    let promote = match &finish.promote {
        Some(lease) => {
            let mut s = Sql::with_capacity(256, 4);
            s.set("status", "'running'", []);
            s.set("started_at", "?", [Arg::Int(Some(now))]);
            s.set(
                "lease_owner",
                "?",
                [limits.bytes("leaseOwner", &lease.owner)?],
            );
            let expires = Arg::Int(Some(ms(lease.expires_at)));
            s.set("lease_expires_at", "?", [expires.clone()]);
            s.set("lease_until", "?", [expires]);
            s.set("attempt_due_at", "NULL", []);
            Some(s)
        }
        None => None,
    };
    let mut out = Sql {
        statements: 1,
        ..Sql::default()
    };
    match backend {
        Backend::Postgres => {
            out.push(&format!("WITH fin AS (UPDATE {executions} SET "))
                .append(assign)
                .push(" WHERE ")
                .append(fence(finish))
                .push(" RETURNING job_id), ")
                .push(&format!(
                    "old AS (SELECT id, buffered_execution_id AS buffered FROM {jobs} \
                     WHERE id = (SELECT job_id FROM fin) FOR UPDATE)"
                ));
            if let Some(next) = &next {
                for (i, insert) in guarded_inserts(sql, std::slice::from_ref(next), "INSERT", |s| {
                    s.push("EXISTS (SELECT 1 FROM fin)");
                })
                .into_iter()
                .enumerate()
                {
                    out.push(&format!(", n{i} AS (")).append(insert).push(")");
                }
            }
            if let Some(promote) = promote {
                let returning = EXECUTION_COLUMNS
                    .iter()
                    .map(|c| format!("e.{c}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                out.push(&format!(", prom AS (UPDATE {executions} AS e SET "))
                    .append(promote)
                    .push(&format!(
                        " FROM old WHERE e.id = old.buffered RETURNING {returning})"
                    ));
            }
            let p = "EXISTS (SELECT 1 FROM prom)";
            let stats = stats_set(
                backend,
                &finish.stats,
                finish.promote.as_ref().map(|_| (p, now)),
                limits,
            )?;
            out.push(&format!(", job AS (UPDATE {jobs} AS j SET "))
                .append(stats)
                .push(" FROM old WHERE j.id = old.id)");
            if finish.promote.is_some() {
                out.push(
                    " SELECT p.*, (SELECT count(*) FROM fin) FROM (SELECT 1) AS one \
                     LEFT JOIN prom AS p ON TRUE",
                );
            } else {
                out.push(" SELECT count(*) FROM fin");
            }
        }
        Backend::Sqlite | Backend::MySql => {
            let fenced = |s: &mut Sql| {
                s.push(&f.execution_exists).append(fence(finish)).push(")");
            };
            let mut statements = Vec::with_capacity(5);
            if let Some(promote) = promote {
                let mut s = Sql::with_capacity(1024, 8);
                s.push(&f.update_executions)
                    .append(promote)
                    .push(&f.buffered_of_job)
                    .arg(job_id(&record.job_id));
                fenced(&mut s);
                s.push(&f.returning_execution);
                statements.push(s);
            }
            let stats = stats_set(
                backend,
                &finish.stats,
                finish
                    .promote
                    .as_ref()
                    .map(|_| (f.buffered_started.as_str(), now)),
                limits,
            )?;
            let mut s = Sql::with_capacity(stats.text.len() + 256, stats.args.len() + 4);
            s.push(&f.update_jobs)
                .append(stats)
                .push(" WHERE id = ? AND ")
                .arg(job_id(&record.job_id));
            fenced(&mut s);
            statements.push(s);
            if let Some(next) = &next {
                statements.extend(guarded_inserts(
                    sql,
                    std::slice::from_ref(next),
                    "INSERT",
                    fenced,
                ));
            }
            let mut s = Sql::with_capacity(512, 12);
            s.push(&f.update_executions)
                .append(stable)
                .push(" WHERE ")
                .append(fence(finish))
                .push(" AND (")
                .append(changed)
                .push(")");
            statements.push(s);
            // Last: the fenced write that decides, its changed row count the outcome.
            let mut s = Sql::with_capacity(assign.text.len() + 256, assign.args.len() + 3);
            s.push(&f.update_executions)
                .append(assign)
                .push(" WHERE ")
                .append(fence(finish));
            statements.push(s);
            out = Sql {
                may_fail_late: next.is_some(),
                ..Sql::statements(statements)
            };
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_written_as_sql_are_the_integer_limits() {
        assert_eq!(MAX_INT, i64::MAX.to_string());
        assert_eq!(U32_MAX, u32::MAX.to_string());
    }
}
