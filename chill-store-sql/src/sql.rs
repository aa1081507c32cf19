//! The statements, built once per store for its database and table prefix.

use crate::Backend;
use crate::codec::{EXECUTION_COLUMNS, JOB_COLUMNS, JOB_CONFIG_COLUMNS, STATS_COLUMNS};
use crate::script::Fragments;

/// Statements that do not depend on the arguments. `?` placeholders are already rewritten for
/// the database.
#[derive(Debug)]
pub(crate) struct Statements {
    pub(crate) backend: Backend,
    pub(crate) jobs: String,
    pub(crate) executions: String,
    pub(crate) job_columns: String,
    pub(crate) execution_columns: String,
    pub(crate) insert_job: String,
    pub(crate) get_job: String,
    pub(crate) update_job: String,
    pub(crate) job_version: String,
    pub(crate) job_state: String,
    pub(crate) delete_job: String,
    pub(crate) delete_job_executions: String,
    pub(crate) get_execution: String,
    pub(crate) get_execution_locked: String,
    pub(crate) execution_job: String,
    pub(crate) due_jobs: String,
    pub(crate) due_attempts: String,
    pub(crate) next_due_at: String,
    pub(crate) start_manual: String,
    pub(crate) start_manual_idle: String,
    pub(crate) claim_attempt: String,
    pub(crate) mark_started: String,
    pub(crate) renew_lease: String,
    pub(crate) job_stats_locked: String,
    pub(crate) update_stats: String,
    pub(crate) finish: String,
    pub(crate) finish_expired: String,
    pub(crate) start_buffered: String,
    pub(crate) expired_leases: String,
    pub(crate) retention_candidates: String,
    pub(crate) executions_before: String,
    /// The pieces of the claims' and finishes' text.
    pub(crate) fragments: Fragments,
}

impl Statements {
    pub(crate) fn new(backend: Backend, prefix: &str) -> Statements {
        let jobs = format!("{prefix}jobs");
        let executions = format!("{prefix}executions");
        let job_columns = JOB_COLUMNS.join(", ");
        let execution_columns = EXECUTION_COLUMNS.join(", ");
        let stats_columns = STATS_COLUMNS.join(", ");
        let assign = |columns: &[&str]| {
            columns
                .iter()
                .map(|c| format!("{c} = ?"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let marks = |n: usize| vec!["?"; n].join(", ");
        let for_update = backend.for_update();
        let p = |sql: String| backend.placeholders(&sql);
        Statements {
            insert_job: p(format!(
                "INSERT INTO {jobs} ({job_columns}) VALUES ({})",
                marks(JOB_COLUMNS.len())
            )),
            get_job: p(format!("SELECT {job_columns} FROM {jobs} WHERE id = ?")),
            update_job: p(format!(
                "UPDATE {jobs} SET {} WHERE id = ? AND version = ?",
                assign(&JOB_COLUMNS[1..=JOB_CONFIG_COLUMNS])
            )),
            job_version: p(format!("SELECT version FROM {jobs} WHERE id = ?")),
            job_state: p(format!(
                "SELECT enabled, deleted_at, running_count FROM {jobs} WHERE id = ?"
            )),
            delete_job: p(format!("DELETE FROM {jobs} WHERE id = ?")),
            delete_job_executions: p(format!("DELETE FROM {executions} WHERE job_id = ?")),
            get_execution: p(format!(
                "SELECT {execution_columns} FROM {executions} WHERE id = ?"
            )),
            get_execution_locked: p(format!(
                "SELECT {execution_columns} FROM {executions} WHERE id = ?{for_update}"
            )),
            execution_job: p(format!("SELECT job_id FROM {executions} WHERE id = ?")),
            due_jobs: p(format!(
                "SELECT {job_columns} FROM {jobs} WHERE due_at <= ? ORDER BY due_at, id LIMIT ?"
            )),
            due_attempts: p(format!(
                "SELECT {execution_columns} FROM {executions} WHERE attempt_due_at <= ? \
                 ORDER BY attempt_due_at, id LIMIT ?"
            )),
            next_due_at: format!(
                "SELECT (SELECT MIN(due_at) FROM {jobs}), \
                 (SELECT MIN(attempt_due_at) FROM {executions})"
            ),
            start_manual: p(format!(
                "UPDATE {jobs} SET running_count = running_count + 1, \
                 last_run_status = 'running', last_run_at = ? \
                 WHERE id = ? AND enabled = TRUE AND deleted_at IS NULL"
            )),
            start_manual_idle: p(format!(
                "UPDATE {jobs} SET running_count = running_count + 1, \
                 last_run_status = 'running', last_run_at = ? \
                 WHERE id = ? AND enabled = TRUE AND deleted_at IS NULL AND running_count = 0"
            )),
            claim_attempt: p(format!(
                "UPDATE {executions} SET status = 'running', started_at = ?, lease_owner = ?, \
                 lease_expires_at = ?, lease_until = ?, attempt_due_at = NULL \
                 WHERE id = ? AND status = 'pending' AND trigger_kind = 'retry'"
            )),
            mark_started: p(format!(
                "UPDATE {jobs} SET running_count = running_count + 1, \
                 last_run_status = 'running', last_run_at = ? WHERE id = ?"
            )),
            renew_lease: p(format!(
                "UPDATE {executions} SET lease_expires_at = ?, lease_until = ? \
                 WHERE id = ? AND status = 'running' AND lease_owner = ?"
            )),
            job_stats_locked: p(format!(
                "SELECT {stats_columns} FROM {jobs} WHERE id = ?{for_update}"
            )),
            update_stats: p(format!(
                "UPDATE {jobs} SET {} WHERE id = ?",
                assign(STATS_COLUMNS)
            )),
            finish: p(format!(
                "UPDATE {executions} SET {} WHERE id = ? AND status = 'running' AND lease_owner = ?",
                assign(&EXECUTION_COLUMNS[1..])
            )),
            finish_expired: p(format!(
                "UPDATE {executions} SET {} WHERE id = ? AND status = 'running' AND lease_owner = ? \
                 AND lease_expires_at IS NOT NULL AND lease_expires_at <= ?",
                assign(&EXECUTION_COLUMNS[1..])
            )),
            start_buffered: p(format!(
                "UPDATE {executions} SET status = ?, started_at = ?, lease_owner = ?, \
                 lease_expires_at = ?, lease_until = ?, attempt_due_at = ? WHERE id = ?"
            )),
            expired_leases: p(format!(
                "SELECT {execution_columns} FROM {executions} WHERE lease_until < ? \
                 ORDER BY lease_until, id LIMIT ?"
            )),
            retention_candidates: p(format!(
                "SELECT id FROM {executions} WHERE created_at < ? \
                 AND status <> 'running' AND status <> 'pending' \
                 ORDER BY created_at, id LIMIT ?{}",
                match backend {
                    Backend::Sqlite => "",
                    Backend::Postgres | Backend::MySql => " FOR UPDATE SKIP LOCKED",
                }
            )),
            executions_before: p(format!(
                "SELECT {execution_columns} FROM {executions} WHERE created_at < ? \
                 AND status <> 'running' AND status <> 'pending' \
                 ORDER BY created_at, id LIMIT ?"
            )),
            fragments: Fragments::new(&jobs, &executions),
            backend,
            jobs,
            executions,
            job_columns,
            execution_columns,
        }
    }

    /// `INSERT` of `rows` executions.
    pub(crate) fn insert_executions(&self, rows: usize) -> String {
        let row = format!("({})", vec!["?"; EXECUTION_COLUMNS.len()].join(", "));
        let values = vec![row.as_str(); rows].join(", ");
        self.backend.placeholders(&format!(
            "INSERT INTO {} ({}) VALUES {values}",
            self.executions, self.execution_columns
        ))
    }

    /// `DELETE` of `n` executions by id.
    pub(crate) fn delete_executions(&self, n: usize) -> String {
        self.backend.placeholders(&format!(
            "DELETE FROM {} WHERE id IN ({})",
            self.executions,
            vec!["?"; n].join(", ")
        ))
    }

    /// The ids of those of `n` jobs (by id) that are enabled and not deleted.
    pub(crate) fn active_jobs(&self, n: usize) -> String {
        self.backend.placeholders(&format!(
            "SELECT id FROM {} WHERE id IN ({}) AND enabled = TRUE AND deleted_at IS NULL",
            self.jobs,
            vec!["?"; n].join(", ")
        ))
    }

    /// `DELETE` of those of `n` executions by id that ended.
    pub(crate) fn delete_ended_executions(&self, n: usize) -> String {
        self.backend.placeholders(&format!(
            "DELETE FROM {} WHERE id IN ({}) AND status <> 'running' AND status <> 'pending'",
            self.executions,
            vec!["?"; n].join(", ")
        ))
    }
}
