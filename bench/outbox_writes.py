"""Issue 17: what the outbox's two row updates per e-mail (the claim, then the mark) write,
by table layout, in PostgreSQL alone (no Python sender, no mail server).

For each layout a scratch copy of the outbox table (`CREATE TABLE ... (LIKE ...
INCLUDING ALL)`, so the same columns and indexes as the migrated schema) is filled with
ROWS pending rows of an escalation e-mail's size, then claimed CLAIM_BATCH at a time,
each transaction also marking the previous batch sent, as `consultations.outbox_send`
does. Per e-mail: WAL bytes (pg_current_wal_lsn), the database backend's CPU (read from
/proc, so PostgreSQL must run on this machine) and wall time; then the HOT share of the
updates and the table's size with its TOAST table. The rows' INSERT is timed too
(database CPU per row).

Layouts: "like" puts back the `varchar_pattern_ops` twin of the dedupe_key index that
`unique=True` made before migration 0013; "ffN" sets fillfactor N (100 = none);
"_nofk" drops the recipient and question indexes (what they cost; the portal needs
them to delete a user or a question); "_toastN" sets toast_tuple_target N (PostgreSQL
moves a body out of the row only when the row exceeds about 2 kB, whatever this says:
an e-mail's row does not).

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_x .venv/bin/python -m bench.outbox_writes \\
        [like_ff100 ff100 ff70 ff50 ff40 ff50_nofk ff50_toast128]

Needs the portal's schema in that database (any `make bench` run leaves it); writes only
its own scratch table, dropped at the end.
"""

import os
import sys
import time

from bench import environment

ROWS = int(os.environ.get("BENCH_OUTBOX_ROWS", 50_000))
CLAIM_BATCH = 250
LAYOUTS = ("like_ff100", "ff100", "ff70", "ff50", "ff40")
# An escalation e-mail as templates/emails/sla_breached.txt renders it (about 560 bytes),
# split at the question's number, which the INSERT puts in.
BODY = (
    "Hello,\n\nQuestion #",
    " (Cardiology, patient P-4821), flagged urgent, has passed its guaranteed answer time without a"
    ' doctor\'s answer.\n\nWas due: Monday 7 December 2026, 14:05 (Europe/Berlin)\n\nNo "at risk" warning'
    " went out before the deadline (the guarantee engine was catching up), so this is the first notice.\n\n"
    "Please make sure a doctor answers now, or reassign it: https://clinic.example/doctor/consultations/"
    "question/123456/change/\n\nYou receive this as a member of the SLA staff team or as a senior doctor of"
    " this specialty.\n\nAsk a Doctor\n",
)
SCRATCH = "outbox_writes_scratch"


def scratch(statement: str, **values):
    """`statement` with {table} naming the scratch table."""
    from psycopg import sql

    return sql.SQL(statement).format(table=sql.Identifier(SCRATCH), **values)


def backend_cpu(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(cursor, connection, pid: int, layout: str) -> str:
    from psycopg import sql

    cursor.execute(scratch("DROP TABLE IF EXISTS {table}"))
    cursor.execute(scratch("CREATE TABLE {table} (LIKE consultations_notification INCLUDING ALL)"))
    if layout.startswith("like"):
        cursor.execute(scratch("CREATE INDEX ON {table} (dedupe_key varchar_pattern_ops)"))
    fillfactor = int(layout.split("ff", 1)[1].split("_")[0])
    cursor.execute(scratch("ALTER TABLE {table} SET (fillfactor = {fillfactor})", fillfactor=sql.Literal(fillfactor)))
    if "_nofk" in layout:
        for (index,) in cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s AND indexdef ~ '(recipient_id|question_id)'",
            (SCRATCH,),
        ).fetchall():
            cursor.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(index)))
    if "_toast" in layout:
        target = int(layout.rsplit("_toast", 1)[1])
        cursor.execute(scratch("ALTER TABLE {table} SET (toast_tuple_target = {target})", target=sql.Literal(target)))
    insert_cpu = backend_cpu(pid)
    cursor.execute(
        scratch(
            "INSERT INTO {table} (id, to_email, kind, subject, body, dedupe_key, status, attempts, last_error,"
            " next_attempt_at, created_at, recipient_id, question_id)"
            " SELECT g, 'patient' || g || '@example.com', 'sla_breached', 'Question #' || g || ' passed its guarantee',"
            " %s || g || %s, 'bench:' || g, 'pending', 0, '', now() - interval '1 hour', now(),"
            " g %% 5000 + 1, g / 5 + 1"
            " FROM generate_series(1, %s) g"
        ),
        (*BODY, ROWS),
    )
    insert_cpu = backend_cpu(pid) - insert_cpu
    cursor.execute("CHECKPOINT")
    ids = [row[0] for row in cursor.execute(scratch("SELECT id FROM {table} ORDER BY id")).fetchall()]
    lsn = cursor.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    cpu, started = backend_cpu(pid), time.perf_counter()
    mark = scratch(
        "UPDATE {table} SET status = 'sent', sent_at = now(), locked_until = NULL, last_error = '' WHERE id = ANY(%s)"
    )
    previous = None
    for start in range(0, len(ids), CLAIM_BATCH):
        batch = ids[start : start + CLAIM_BATCH]
        with connection.transaction():
            if previous:
                cursor.execute(mark, (previous,))
            cursor.execute(
                scratch(
                    "UPDATE {table} SET locked_until = now() + interval '5 minutes', attempts = attempts + 1"
                    " WHERE id = ANY(%s) AND status = 'pending' AND (locked_until IS NULL OR locked_until < now())"
                    " RETURNING id, to_email, subject, body, attempts, dedupe_key, next_attempt_at"
                ),
                (batch,),
            )
            cursor.fetchall()
        previous = batch
    with connection.transaction():
        cursor.execute(mark, (previous,))
    wall, cpu = time.perf_counter() - started, backend_cpu(pid) - cpu
    wal = cursor.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", (lsn,)).fetchone()[0]
    cursor.execute("SELECT pg_stat_force_next_flush()")
    connection.commit()
    time.sleep(0.5)
    updated, hot = cursor.execute(
        "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = %s", (SCRATCH,)
    ).fetchone()
    heap = cursor.execute("SELECT pg_table_size(%s)", (SCRATCH,)).fetchone()[0]
    return (
        f"| {layout} | {insert_cpu / ROWS * 1e6:.1f} µs "
        f"| {float(wal) / ROWS:,.0f} B | {cpu / ROWS * 1e6:.1f} µs | {wall / ROWS * 1e6:.1f} µs "
        f"| {hot / updated:.0%} | {heap / 1e6:.0f} MB |"
    )


def main() -> None:
    environment.configure()
    import psycopg

    layouts = sys.argv[1:] or LAYOUTS
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as connection:
        cursor = connection.cursor()
        pid = cursor.execute("SELECT pg_backend_pid()").fetchone()[0]
        twins = cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'consultations_notification'"
            " AND indexdef LIKE '%%pattern_ops%%'"
        ).fetchall()
        if twins:
            raise SystemExit(f"The bench database is not migrated past consultations 0013 (it has {twins}).")
        print(f"{ROWS:,} e-mails, claimed {CLAIM_BATCH} per transaction with the previous batch's mark")
        print(
            "| layout | insert CPU per e-mail | WAL per e-mail | database CPU per e-mail | wall per e-mail"
            " | HOT updates | table after (with TOAST) |"
        )
        print("|---|---|---|---|---|---|---|")
        try:
            for layout in layouts:
                print(measure(cursor, connection, pid, layout), flush=True)
        finally:
            cursor.execute(scratch("DROP TABLE IF EXISTS {table}"))


if __name__ == "__main__":
    main()
