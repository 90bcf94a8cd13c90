//! Numbered, append-only schema migrations; `user_version` is the schema version.
//!
//! Never edit a migration that has shipped: add one. Each runs in the same
//! IMMEDIATE transaction as the version bump, so concurrent openers migrate once
//! and a crash leaves the old version intact. A database whose version is newer
//! than [`LATEST_VERSION`] is refused, never "downgraded".

use anyhow::Result;
use rusqlite::{Connection, TransactionBehavior};

use crate::error::LabError;

/// Each entry: why it exists, then its SQL. Index + 1 is the version it creates.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "1: the research memory: hypotheses -> experiments -> results. Results are
         append-only; an amendment adds a row and points the old one at it, so the
         unique partial index allows exactly one current result per experiment.",
        r"
        CREATE TABLE hypotheses (
            id          INTEGER PRIMARY KEY,
            leaf        TEXT,
            title       TEXT NOT NULL CHECK (length(trim(title)) > 0),
            mechanism   TEXT NOT NULL,
            prediction  TEXT,
            status      TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'confirmed', 'refuted')),
            created_at  TEXT NOT NULL
        );
        CREATE INDEX hypotheses_by_leaf ON hypotheses (leaf, status, id);

        CREATE TABLE experiments (
            id            INTEGER PRIMARY KEY,
            hypothesis_id INTEGER NOT NULL REFERENCES hypotheses (id),
            leaf          TEXT,
            git_commit    TEXT,
            dirty         INTEGER NOT NULL DEFAULT 0,
            diff_sha256   TEXT,
            host          TEXT NOT NULL,
            pid           INTEGER,
            watch_pid     INTEGER NOT NULL DEFAULT 0,
            budget_s      REAL,
            status        TEXT NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'finished', 'crashed')),
            started_at    TEXT NOT NULL,
            finished_at   TEXT
        );
        CREATE INDEX experiments_by_leaf ON experiments (leaf, id);
        CREATE INDEX experiments_by_hypothesis ON experiments (hypothesis_id);
        CREATE INDEX experiments_running ON experiments (status) WHERE status = 'running';

        CREATE TABLE results (
            id              INTEGER PRIMARY KEY,
            experiment_id   INTEGER NOT NULL REFERENCES experiments (id),
            verdict         TEXT NOT NULL CHECK (verdict IN ('keep', 'discard', 'crash')),
            metrics         TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metrics)),
            mechanism       TEXT CHECK (mechanism IN ('confirmed', 'refuted')),
            theory_revision TEXT,
            note            TEXT,
            created_at      TEXT NOT NULL,
            superseded_by   INTEGER REFERENCES results (id) DEFERRABLE INITIALLY DEFERRED
        );
        CREATE UNIQUE INDEX results_current ON results (experiment_id) WHERE superseded_by IS NULL;
        ",
    ),
    (
        "2: read speed at 100k experiments. `lab context` must not scan every row:
         a derived index of the current results' metrics (best value per leaf and
         metric is one index probe), the leaf and verdict copied onto results, and
         running tallies per leaf kept exact by triggers inside the writing
         transaction. All backfilled from the rows already there.",
        r"
        ALTER TABLE results ADD COLUMN leaf TEXT;
        UPDATE results SET leaf = (SELECT leaf FROM experiments e WHERE e.id = results.experiment_id);
        CREATE INDEX results_by_leaf ON results (leaf, verdict) WHERE superseded_by IS NULL;

        CREATE TABLE metrics (
            result_id     INTEGER NOT NULL REFERENCES results (id),
            experiment_id INTEGER NOT NULL,
            leaf          TEXT,
            verdict       TEXT NOT NULL,
            name          TEXT NOT NULL,
            value         REAL NOT NULL,
            PRIMARY KEY (result_id, name)
        ) WITHOUT ROWID;
        CREATE INDEX metrics_best ON metrics (leaf, name, verdict, value);
        CREATE INDEX metrics_sorted ON metrics (leaf, name, value);
        CREATE INDEX metrics_sorted_all ON metrics (name, value);
        INSERT INTO metrics (result_id, experiment_id, leaf, verdict, name, value)
            SELECT r.id, r.experiment_id, r.leaf, r.verdict, j.key, j.value
            FROM results r, json_each(r.metrics) j
            WHERE r.superseded_by IS NULL AND j.type IN ('integer', 'real');

        -- kind: 'hypotheses:<status>', 'experiments', 'results:<verdict>',
        -- 'kept-metric:<name>'; leaf '' stands for experiments with no leaf.
        CREATE TABLE tallies (
            leaf TEXT NOT NULL,
            kind TEXT NOT NULL,
            n    INTEGER NOT NULL,
            PRIMARY KEY (leaf, kind)
        ) WITHOUT ROWID;
        INSERT INTO tallies SELECT coalesce(leaf, ''), 'hypotheses:' || status, COUNT(*) FROM hypotheses GROUP BY 1, 2;
        INSERT INTO tallies SELECT coalesce(leaf, ''), 'experiments', COUNT(*) FROM experiments GROUP BY 1;
        INSERT INTO tallies SELECT coalesce(leaf, ''), 'results:' || verdict, COUNT(*) FROM results
            WHERE superseded_by IS NULL GROUP BY 1, 2;
        INSERT INTO tallies SELECT coalesce(leaf, ''), 'kept-metric:' || name, COUNT(*) FROM metrics
            WHERE verdict = 'keep' GROUP BY 1, 2;

        CREATE TRIGGER tally_hypothesis AFTER INSERT ON hypotheses BEGIN
            INSERT INTO tallies VALUES (coalesce(new.leaf, ''), 'hypotheses:' || new.status, 1)
                ON CONFLICT DO UPDATE SET n = n + 1;
        END;
        CREATE TRIGGER tally_hypothesis_status AFTER UPDATE OF status ON hypotheses
        WHEN old.status != new.status BEGIN
            UPDATE tallies SET n = n - 1 WHERE leaf = coalesce(old.leaf, '') AND kind = 'hypotheses:' || old.status;
            INSERT INTO tallies VALUES (coalesce(new.leaf, ''), 'hypotheses:' || new.status, 1)
                ON CONFLICT DO UPDATE SET n = n + 1;
        END;
        CREATE TRIGGER tally_experiment AFTER INSERT ON experiments BEGIN
            INSERT INTO tallies VALUES (coalesce(new.leaf, ''), 'experiments', 1)
                ON CONFLICT DO UPDATE SET n = n + 1;
        END;
        CREATE TRIGGER tally_result AFTER INSERT ON results WHEN new.superseded_by IS NULL BEGIN
            INSERT INTO tallies VALUES (coalesce(new.leaf, ''), 'results:' || new.verdict, 1)
                ON CONFLICT DO UPDATE SET n = n + 1;
        END;
        CREATE TRIGGER tally_result_superseded AFTER UPDATE OF superseded_by ON results
        WHEN old.superseded_by IS NULL AND new.superseded_by IS NOT NULL BEGIN
            UPDATE tallies SET n = n - 1 WHERE leaf = coalesce(old.leaf, '') AND kind = 'results:' || old.verdict;
        END;
        CREATE TRIGGER tally_kept_metric AFTER INSERT ON metrics WHEN new.verdict = 'keep' BEGIN
            INSERT INTO tallies VALUES (coalesce(new.leaf, ''), 'kept-metric:' || new.name, 1)
                ON CONFLICT DO UPDATE SET n = n + 1;
        END;
        CREATE TRIGGER untally_kept_metric AFTER DELETE ON metrics WHEN old.verdict = 'keep' BEGIN
            UPDATE tallies SET n = n - 1 WHERE leaf = coalesce(old.leaf, '') AND kind = 'kept-metric:' || old.name;
        END;
        ",
    ),
    (
        "3: the candidate queue. Ideas wait here with a priority until an agent
         claims one; a claim is an UPDATE inside an IMMEDIATE transaction, so two
         agents never get the same item. Closed items stay, for duplicate checks.",
        r"
        CREATE TABLE queue (
            id          INTEGER PRIMARY KEY,
            leaf        TEXT,
            title       TEXT NOT NULL CHECK (length(trim(title)) > 0),
            mechanism   TEXT NOT NULL,
            priority    INTEGER NOT NULL DEFAULT 0,
            link        TEXT,
            status      TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'claimed', 'done', 'dropped')),
            claimed_by  TEXT,
            claimed_at  TEXT,
            closed_at   TEXT,
            note        TEXT,
            created_at  TEXT NOT NULL
        );
        CREATE INDEX queue_next ON queue (status, priority DESC, id) WHERE status = 'queued';
        ",
    ),
    (
        "4: runs executed by `lab run`. An experiment has one run per tier it went
         through (a smoke run, then maybe a full one), each with how it ended, its
         seed, device, budget and wall time, where its metric came from (the frozen
         evaluate or the harness scoring predictions), the leaf.lock it ran under
         (only runs under the same lock are compared), and its log tail. Files a
         run produced (predictions, labels, per-sample errors) are a child table
         with their sha256. `experiments.smoke` marks experiments that were only a
         smoke check, so readers can leave them out of failures.",
        r"
        ALTER TABLE experiments ADD COLUMN smoke INTEGER NOT NULL DEFAULT 0;
        CREATE TABLE runs (
            id                 INTEGER PRIMARY KEY,
            experiment_id      INTEGER NOT NULL REFERENCES experiments (id),
            tier               TEXT NOT NULL CHECK (tier IN ('smoke', 'full')),
            seed               INTEGER NOT NULL,
            device             TEXT,
            budget_s           REAL NOT NULL,
            wall_s             REAL NOT NULL,
            exit_reason        TEXT NOT NULL,
            detail             TEXT,
            exit_code          INTEGER,
            signal             INTEGER,
            metric_source      TEXT NOT NULL CHECK (metric_source IN ('evaluate', 'harness')),
            frozen_lock_sha256 TEXT,
            metrics            TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metrics)),
            log_path           TEXT,
            log_tail           TEXT,
            started_at         TEXT NOT NULL,
            finished_at        TEXT NOT NULL
        );
        CREATE INDEX runs_by_experiment ON runs (experiment_id, tier);
        CREATE TABLE run_files (
            run_id  INTEGER NOT NULL REFERENCES runs (id),
            kind    TEXT NOT NULL CHECK (kind IN ('predictions', 'labels', 'errors')),
            name    TEXT NOT NULL,
            path    TEXT NOT NULL,
            sha256  TEXT NOT NULL,
            len     INTEGER,
            PRIMARY KEY (run_id, kind, name)
        ) WITHOUT ROWID;
        ",
    ),
    (
        "5: submissions written by `lab submit`: which leader's predictions went
         into which file, with the file's sha256, so a leaderboard entry can be
         traced back to the experiment and the code that made it.",
        r"
        CREATE TABLE submissions (
            id            INTEGER PRIMARY KEY,
            leaf          TEXT NOT NULL,
            experiment_id INTEGER NOT NULL REFERENCES experiments (id),
            path          TEXT NOT NULL,
            sha256        TEXT NOT NULL,
            rows          INTEGER NOT NULL,
            created_at    TEXT NOT NULL
        );
        CREATE INDEX submissions_by_leaf ON submissions (leaf, id);
        ",
    ),
    (
        "6: the honest gate's records. `gate_reports`: what the gate said about a
         candidate (improvement, interval, verdict, flags) against which leader.
         `baselines`: the leader's run-to-run noise measured by `lab baseline`,
         per leaf and leaf.lock. `sealed_holdout`: in-process held-out metrics,
         read only by `lab holdout` and `lab checkpoint`, never by a decision;
         `holdout_reads` counts those reads. `archives`: where a discarded or
         crashed candidate's patch and artifacts were kept.",
        r"
        CREATE TABLE gate_reports (
            id                   INTEGER PRIMARY KEY,
            experiment_id        INTEGER NOT NULL REFERENCES experiments (id),
            leaf                 TEXT NOT NULL,
            leader_experiment_id INTEGER REFERENCES experiments (id),
            mode                 TEXT NOT NULL CHECK (mode IN ('predictions', 'scalar')),
            verdict              TEXT NOT NULL,
            improvement          REAL,
            ci_low               REAL,
            ci_high              REAL,
            prob_better          REAL,
            n                    INTEGER NOT NULL,
            reason               TEXT NOT NULL,
            flags                TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(flags)),
            min_improvement      REAL NOT NULL,
            confidence           REAL NOT NULL,
            created_at           TEXT NOT NULL
        );
        CREATE INDEX gate_reports_by_experiment ON gate_reports (experiment_id, id);
        CREATE TABLE baselines (
            id                   INTEGER PRIMARY KEY,
            leaf                 TEXT NOT NULL,
            lock_sha256          TEXT NOT NULL,
            leader_experiment_id INTEGER NOT NULL REFERENCES experiments (id),
            n                    INTEGER NOT NULL,
            mean                 REAL NOT NULL,
            sd                   REAL NOT NULL,
            seeds                TEXT NOT NULL CHECK (json_valid(seeds)),
            created_at           TEXT NOT NULL
        );
        CREATE INDEX baselines_by_leaf ON baselines (leaf, lock_sha256, id);
        CREATE TABLE sealed_holdout (
            run_id        INTEGER PRIMARY KEY REFERENCES runs (id),
            experiment_id INTEGER NOT NULL REFERENCES experiments (id),
            metrics       TEXT NOT NULL CHECK (json_valid(metrics))
        );
        CREATE TABLE holdout_reads (
            id          INTEGER PRIMARY KEY,
            leaf        TEXT NOT NULL,
            experiments TEXT NOT NULL CHECK (json_valid(experiments)),
            purpose     TEXT NOT NULL,
            created_at  TEXT NOT NULL
        );
        CREATE TABLE archives (
            experiment_id INTEGER PRIMARY KEY REFERENCES experiments (id),
            verdict       TEXT NOT NULL,
            path          TEXT NOT NULL
        );
        ",
    ),
    (
        "7: inputs between leaves. A leaf may start from a file of another leaf's
         leader (leaf.yaml `inputs`); each run records which file it got, with its
         sha256 ('none' when the leaf ran on its fallback), and the upstream leader.
         For such a leaf `runs.frozen_lock_sha256` holds the comparability key
         (the lock's sha256 hashed with the inputs' sha256s), so the leader,
         baselines and the gate never compare runs from different inputs.",
        r"
        CREATE TABLE run_inputs (
            run_id        INTEGER NOT NULL REFERENCES runs (id),
            name          TEXT NOT NULL,
            leaf          TEXT NOT NULL,
            file          TEXT NOT NULL,
            experiment_id INTEGER REFERENCES experiments (id),
            path          TEXT,
            sha256        TEXT NOT NULL,
            PRIMARY KEY (run_id, name)
        );
        ",
    ),
    (
        "8: sealed evaluation, provenance, comparisons per lock, tamper evidence.
         Each run records what the sandbox enforced on the code under judgement
         (a run that could read its answers is shown as such), the environment
         its workers got, and the sha256 of the prepared data it was scored on
         (candidate and leader are compared on the same targets only); run files
         gain the kinds of artifact mode (outputs, per-item scores, the code
         snapshot, the artifact), which rebuilds that table. `results.source`:
         the harness's (recorded by `lab run`, `lab baseline`, `lab blend`, `lab
         sweep`) or an agent's (typed with `lab result`, imported); agent results
         never become a leader or a best. `results.amends` makes an amendment
         name what it replaced; `results.comparison` (and the derived `metrics`
         copies of both) the key it was recorded under, so leaders and bests are
         ranked within one comparison by one index probe. `comparisons`: the
         frozen files, gate settings and inputs behind each key a leaf ran under,
         so a re-lock is visible with what it changed. `chain`: every inserted
         row of the records, hashed and linked by triggers that call functions
         only lab registers; `lab verify` re-derives it. All backfilled.",
        include_str!("migrations/8.sql"),
    ),
    (
        "9: smoke runs are checks, not research. A smoke-only experiment
         (`experiments.smoke`) is counted under `checks:<verdict>` instead of
         `results:<verdict>`, so it is never a discard or a failure of an idea in
         the counts. The flag is set in the transaction that inserts the
         experiment, before any result, so the trigger can read it. Backfilled.",
        r"
        DROP TRIGGER tally_result;
        DROP TRIGGER tally_result_superseded;
        CREATE TRIGGER tally_result AFTER INSERT ON results WHEN new.superseded_by IS NULL BEGIN
            INSERT INTO tallies VALUES (coalesce(new.leaf, ''),
                CASE WHEN (SELECT smoke FROM experiments WHERE id = new.experiment_id) THEN 'checks:' ELSE 'results:' END
                    || new.verdict, 1)
                ON CONFLICT DO UPDATE SET n = n + 1;
        END;
        CREATE TRIGGER tally_result_superseded AFTER UPDATE OF superseded_by ON results
        WHEN old.superseded_by IS NULL AND new.superseded_by IS NOT NULL BEGIN
            UPDATE tallies SET n = n - 1 WHERE leaf = coalesce(old.leaf, '') AND kind =
                CASE WHEN (SELECT smoke FROM experiments WHERE id = old.experiment_id) THEN 'checks:' ELSE 'results:' END
                    || old.verdict;
        END;
        DELETE FROM tallies WHERE kind LIKE 'results:%';
        INSERT INTO tallies SELECT coalesce(r.leaf, ''), CASE WHEN e.smoke THEN 'checks:' ELSE 'results:' END || r.verdict,
            COUNT(*) FROM results r JOIN experiments e ON e.id = r.experiment_id
            WHERE r.superseded_by IS NULL GROUP BY 1, 2;
        ",
    ),
    (
        "10: imports, recorded. Importing the same PraxLab database (or results.tsv)
         twice doubled every row. Each import records the sha256 of the bytes it
         read, with its format, path, leaf and counts, in the same transaction as
         its rows; a second import of the same bytes in the same format finds it
         and imports nothing. Chained like the records, so deleting an import's
         row to import the same file again shows in `lab verify`.",
        r"
        CREATE TABLE imports (
            id          INTEGER PRIMARY KEY,
            format      TEXT NOT NULL CHECK (format IN ('praxlab', 'results-tsv')),
            sha256      TEXT NOT NULL,
            path        TEXT NOT NULL,
            leaf        TEXT,
            hypotheses  INTEGER NOT NULL,
            experiments INTEGER NOT NULL,
            results     INTEGER NOT NULL,
            created_at  TEXT NOT NULL,
            UNIQUE (format, sha256)
        );
        CREATE TRIGGER chain_imports AFTER INSERT ON imports BEGIN
    INSERT INTO chain (table_name, row_id, row_sha256, column_digests, prev_hash, hash)
    SELECT 'imports', k, substr(d, 1, 64), substr(d, 66), p, lab_chain_link(p, 'imports', k, substr(d, 1, 64))
    FROM (SELECT CAST(new.id AS TEXT) AS k, lab_chain_digest(new.id, new.format, new.sha256, new.path, new.leaf, new.hypotheses, new.experiments, new.results, new.created_at) AS d,
                 coalesce((SELECT hash FROM chain ORDER BY seq DESC LIMIT 1), '') AS p);
END;
        ",
    ),
    (
        "11: what the gate can detect. Each gate report's sensitivity: the
         standard error of the improvement with every run the gate allows, and
         the smallest true gain it keeps four times in five, so `lab context`,
         `lab show` and `lab gate` can say what a leaf's noise lets through and
         when a leaf is at its ceiling. A table of its own, chained from its
         first row (adding columns to chained `gate_reports` would change the
         digest of every report already hashed).",
        r"
        CREATE TABLE gate_sensitivity (
            report_id  INTEGER PRIMARY KEY REFERENCES gate_reports (id),
            se         REAL NOT NULL,
            detectable REAL NOT NULL
        );
        CREATE INDEX gate_reports_by_leaf ON gate_reports (leaf, id);
        CREATE TRIGGER chain_gate_sensitivity AFTER INSERT ON gate_sensitivity BEGIN
    INSERT INTO chain (table_name, row_id, row_sha256, column_digests, prev_hash, hash)
    SELECT 'gate_sensitivity', k, substr(d, 1, 64), substr(d, 66), p, lab_chain_link(p, 'gate_sensitivity', k, substr(d, 1, 64))
    FROM (SELECT CAST(new.report_id AS TEXT) AS k, lab_chain_digest(new.report_id, new.se, new.detectable) AS d,
                 coalesce((SELECT hash FROM chain ORDER BY seq DESC LIMIT 1), '') AS p);
END;
        ",
    ),
    (
        "12: queue items name their hypothesis. An item claimed by `lab queue
         next` becomes a hypothesis (or was queued under one with --hypothesis),
         so the agent gets the exact `lab run --hypothesis` to test it and the
         result is traceable to the idea. Backfilled where an item's title is a
         hypothesis's title in the same leaf (the earliest such). `queue` is not
         a chained table (its rows change status as they are worked; it is a
         to-do list, not evidence), so the new column changes no digest.",
        r"
        ALTER TABLE queue ADD COLUMN hypothesis_id INTEGER REFERENCES hypotheses (id);
        UPDATE queue SET hypothesis_id = (
            SELECT min(h.id) FROM hypotheses h
            WHERE h.leaf IS queue.leaf AND lower(trim(h.title)) = lower(trim(queue.title))
        );
        ",
    ),
    (
        "13: the packages each run ran with. `run_packages`: the installed
         version of every package the leaf declares in `python.requires`, per
         run, so a result names its stack (two machines set up apart could run
         different ones). A table of its own, chained from its first row, for
         the reason `gate_sensitivity` is.",
        r"
        CREATE TABLE run_packages (
            run_id  INTEGER NOT NULL REFERENCES runs (id),
            name    TEXT NOT NULL,
            version TEXT NOT NULL,
            PRIMARY KEY (run_id, name)
        ) WITHOUT ROWID;
        CREATE TRIGGER chain_run_packages AFTER INSERT ON run_packages BEGIN
    INSERT INTO chain (table_name, row_id, row_sha256, column_digests, prev_hash, hash)
    SELECT 'run_packages', k, substr(d, 1, 64), substr(d, 66), p, lab_chain_link(p, 'run_packages', k, substr(d, 1, 64))
    FROM (SELECT new.run_id || '/' || new.name AS k, lab_chain_digest(new.run_id, new.name, new.version) AS d,
                 coalesce((SELECT hash FROM chain ORDER BY seq DESC LIMIT 1), '') AS p);
END;
        ",
    ),
    (
        "14: hypotheses that a run has tested. `hypotheses.tested` is set by a
         trigger when a result is recorded for one of its experiments (a smoke
         check tests the code, not the idea, so it does not count), so the open
         hypotheses `lab context` lists are the untried ones; a tested
         hypothesis whose mechanism nobody judged was listed as open forever.
         Derived, so not chained (the chain covers what was recorded).
         Backfilled.",
        r"
        ALTER TABLE hypotheses ADD COLUMN tested INTEGER NOT NULL DEFAULT 0;
        UPDATE hypotheses SET tested = 1 WHERE id IN
            (SELECT e.hypothesis_id FROM experiments e JOIN results r ON r.experiment_id = e.id WHERE e.smoke = 0);
        CREATE INDEX hypotheses_untested ON hypotheses (id) WHERE status = 'open' AND tested = 0;
        CREATE INDEX hypotheses_untested_by_leaf ON hypotheses (leaf, id) WHERE status = 'open' AND tested = 0;
        CREATE TRIGGER hypothesis_tested AFTER INSERT ON results
        WHEN (SELECT smoke FROM experiments WHERE id = new.experiment_id) = 0 BEGIN
            UPDATE hypotheses SET tested = 1
            WHERE tested = 0 AND id = (SELECT hypothesis_id FROM experiments WHERE id = new.experiment_id);
        END;
        ",
    ),
    (
        "15: what each held-out read found. `holdout_transfers`: per read of
         the held-out split by `lab holdout` or `lab checkpoint`, the leader it
         scored, its held-out score and the transfer verdict, so `lab report`
         and `lab plot` show the leader's held-out score where it was read
         without reading the split again (a read is counted; showing one is
         not). A table of its own, chained from its first row, for the reason
         `gate_sensitivity` is.",
        r"
        CREATE TABLE holdout_transfers (
            read_id              INTEGER PRIMARY KEY REFERENCES holdout_reads (id),
            leader_experiment_id INTEGER NOT NULL REFERENCES experiments (id),
            holdout              REAL,
            holdout_gain         REAL,
            verdict              TEXT
        );
        CREATE TRIGGER chain_holdout_transfers AFTER INSERT ON holdout_transfers BEGIN
    INSERT INTO chain (table_name, row_id, row_sha256, column_digests, prev_hash, hash)
    SELECT 'holdout_transfers', k, substr(d, 1, 64), substr(d, 66), p, lab_chain_link(p, 'holdout_transfers', k, substr(d, 1, 64))
    FROM (SELECT CAST(new.read_id AS TEXT) AS k, lab_chain_digest(new.read_id, new.leader_experiment_id, new.holdout, new.holdout_gain, new.verdict) AS d,
                 coalesce((SELECT hash FROM chain ORDER BY seq DESC LIMIT 1), '') AS p);
END;
        ",
    ),
];

pub const LATEST_VERSION: u32 = MIGRATIONS.len() as u32;

pub fn migrate(conn: &mut Connection) -> Result<()> {
    migrate_to(conn, LATEST_VERSION)
}

/// Migrate up to `target` (tests build old databases with a lower target).
pub fn migrate_to(conn: &mut Connection, target: u32) -> Result<()> {
    let current: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if current > LATEST_VERSION {
        return Err(newer_schema(current).into());
    }
    if current >= target {
        return Ok(());
    }
    // Migration 8's backfill and triggers call the chain's functions.
    super::chain::register(conn)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Another process may have migrated while we waited for the write lock.
    let current: u32 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if current > LATEST_VERSION {
        return Err(newer_schema(current).into());
    }
    for (version, (_why, sql)) in MIGRATIONS.iter().enumerate().take(target as usize).skip(current as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version as u32 + 1)?;
    }
    tx.commit()?;
    Ok(())
}

fn newer_schema(found: u32) -> LabError {
    LabError::refused(format!(
        "the database has schema version {found}, newer than this lab understands ({LATEST_VERSION})"
    ))
    .hint("upgrade lab; this binary will not touch a newer database")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(conn: &Connection) -> u32 {
        conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap()
    }

    #[test]
    fn migrating_twice_is_a_no_op() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        assert_eq!(version(&conn), LATEST_VERSION);
    }

    #[test]
    fn a_first_schema_database_is_upgraded_with_its_rows() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate_to(&mut conn, 1).unwrap();
        conn.execute_batch(
            "INSERT INTO hypotheses (title, mechanism, leaf, created_at) VALUES ('lr', 'faster', 'pretrain', 't');
             INSERT INTO experiments (hypothesis_id, leaf, host, started_at) VALUES (1, 'pretrain', 'h', 't');
             INSERT INTO results (experiment_id, verdict, metrics, created_at)
                 VALUES (1, 'keep', '{\"val_bpb\": 0.99, \"note\": \"x\"}', 't');",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        assert_eq!(version(&conn), LATEST_VERSION);
        let row: (String, String, f64) = conn
            .query_row("SELECT leaf, name, value FROM metrics", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap();
        assert_eq!(row, ("pretrain".into(), "val_bpb".into(), 0.99));
        let leaf: String = conn.query_row("SELECT leaf FROM results", [], |r| r.get(0)).unwrap();
        assert_eq!(leaf, "pretrain");
    }

    #[test]
    fn a_newer_database_is_refused_untouched() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", LATEST_VERSION + 1).unwrap();
        let err = migrate(&mut conn).unwrap_err();
        assert!(err.to_string().contains("newer than this lab understands"), "{err}");
        assert_eq!(version(&conn), LATEST_VERSION + 1);
    }

    #[test]
    fn every_migration_says_why() {
        for (i, (why, _)) in MIGRATIONS.iter().enumerate() {
            assert!(why.starts_with(&format!("{}:", i + 1)), "migration {} must start with its number", i + 1);
        }
    }
}

#[cfg(test)]
mod upgrade_tests;
