#!/usr/bin/env python3
"""Parsing and aggregation for bench/run.sh (standard library only).

Two sub-commands:

  record     parse one client run (sysbench or pgbench output, plus pgbench's
             per-transaction log for the p95) and append it as one JSON line to
             the runs file. A run that failed is recorded too, with its exit
             code and the tail of its output, so a broken case shows up in the
             report instead of vanishing.
  summarize  read the runs file and the metadata, compute per case and target
             the medians over rounds and the ratio to the direct connection,
             print the table and write the result JSON.

The ratio to direct is computed per round (target and direct ran back to back
in that round) and the median of those per-round ratios is reported: on a
small shared machine absolute numbers drift, ratios of neighbouring runs much
less.
"""

import argparse
import glob
import json
import math
import os
import re
import statistics
import sys


# ------------------------------------------------------------------ parsing --

def parse_sysbench(text):
    """Numbers from `sysbench ... run` output (1.0.x layout)."""
    def grab(pattern, cast=float):
        m = re.search(pattern, text, re.MULTILINE)
        return cast(m.group(1)) if m else None

    return {
        "tps": grab(r"^\s*transactions:\s+\d+\s+\(([\d.]+) per sec\.\)"),
        "qps": grab(r"^\s*queries:\s+\d+\s+\(([\d.]+) per sec\.\)"),
        "transactions": grab(r"^\s*transactions:\s+(\d+)", int),
        "queries": grab(r"^\s*queries:\s+(\d+)", int),
        "errors": grab(r"^\s*ignored errors:\s+(\d+)", int),
        "reconnects": grab(r"^\s*reconnects:\s+(\d+)", int),
        "avg_ms": grab(r"^\s*avg:\s+([\d.]+)"),
        "p95_ms": grab(r"^\s*95th percentile:\s+([\d.]+)"),
    }


def parse_pgbench(text, log_prefix):
    """Numbers from `pgbench` output; p95 from its per-transaction log files.

    pgbench -S runs one SELECT per transaction, so queries == transactions.
    The log (`-l --log-prefix=P`, files P.<pid> and P.<pid>.<thread>) has one
    line per logged transaction: client_id transaction_no time_us script_no
    epoch epoch_us; time is "failed" / "skipped" for transactions that did
    not complete.
    """
    def grab(pattern, cast=float):
        m = re.search(pattern, text, re.MULTILINE)
        return cast(m.group(1)) if m else None

    tx = grab(r"^number of transactions actually processed:\s+(\d+)", int)
    failed = grab(r"^number of failed transactions:\s+(\d+)", int)
    tps = grab(r"^tps = ([\d.]+)")
    result = {
        "tps": tps,
        "qps": tps,
        "transactions": tx,
        "queries": tx,
        "errors": failed,
        "avg_ms": grab(r"^latency average = ([\d.]+) ms"),
        "p95_ms": None,
        "latency_samples": 0,
    }
    latencies = []
    bad = 0
    if log_prefix:
        for path in glob.glob(glob.escape(log_prefix) + ".*"):
            with open(path) as f:
                for line in f:
                    fields = line.split()
                    if len(fields) < 3:
                        continue
                    try:
                        latencies.append(int(fields[2]))
                    except ValueError:
                        bad += 1
            os.remove(path)  # large, and only the percentile is kept
    if latencies:
        latencies.sort()
        idx = max(0, math.ceil(0.95 * len(latencies)) - 1)
        result["p95_ms"] = latencies[idx] / 1000.0
        result["latency_samples"] = len(latencies)
    if bad:
        result["logged_failures"] = bad
    return result


def cmd_record(args):
    rec = {
        "case": args.case,
        "target": args.target,
        "round": args.round,
        "order": args.order,
        "status": args.status,
        "command": args.command,
    }
    if args.note:
        rec["note"] = args.note
    if args.status == "run":
        with open(args.output, errors="replace") as f:
            text = f.read()
        if args.tool == "sysbench":
            metrics = parse_sysbench(text)
        else:
            metrics = parse_pgbench(text, args.pg_log_prefix)
        rec.update(metrics)
        rec["exit_code"] = args.exit_code
        ok = (args.exit_code == 0 and metrics.get("qps") and metrics.get("queries"))
        if args.proxy_died:
            ok = False
            rec["proxy_died"] = True
        rec["status"] = "ok" if ok else "failed"
        if not ok:
            rec["output_tail"] = text.splitlines()[-25:]
        if args.proxy and args.cpu_ticks is not None:
            rec["proxy"] = args.proxy
            rec["proxy_cpu_s"] = args.cpu_ticks / args.clk_tck
            if rec.get("queries"):
                rec["proxy_cpu_s_per_10k"] = rec["proxy_cpu_s"] / rec["queries"] * 10000
            if args.hwm_kb:
                rec["proxy_peak_rss_kb"] = args.hwm_kb
    with open(args.runs, "a") as f:
        f.write(json.dumps(rec) + "\n")
    # One line for the live log.
    if rec["status"] == "ok":
        extra = ""
        if "proxy_cpu_s_per_10k" in rec:
            extra = "  %s cpu %.2f s/10k q" % (rec["proxy"], rec["proxy_cpu_s_per_10k"])
        p95 = rec.get("p95_ms")
        print("%10.0f qps  p95 %s ms%s" % (rec["qps"], "%.2f" % p95 if p95 is not None else "?", extra))
    elif rec["status"] == "failed":
        print("FAILED (exit %s%s); last lines:" % (
            rec.get("exit_code"), ", proxy died" if rec.get("proxy_died") else ""))
        for line in rec.get("output_tail", [])[-8:]:
            print("    | " + line)
    else:
        print(rec["status"] + (": " + rec["note"] if args.note else ""))


# -------------------------------------------------------------- aggregation --

def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summarize(runs, case_order, target_order):
    by_key = {}
    for r in runs:
        by_key.setdefault((r["case"], r["target"]), []).append(r)
    direct_qps = {}  # (case, round) -> qps
    for r in runs:
        if r["target"] == "direct" and r["status"] == "ok":
            direct_qps[(r["case"], r["round"])] = r["qps"]

    rows = []
    for case in case_order:
        for target in target_order:
            rs = by_key.get((case, target))
            if not rs:
                continue
            ok = [r for r in rs if r["status"] == "ok"]
            statuses = sorted({r["status"] for r in rs})
            ratios = []
            for r in ok:
                d = direct_qps.get((case, r["round"]))
                if d:
                    ratios.append(r["qps"] / d)
            row = {
                "case": case,
                "target": target,
                "runs": len(rs),
                "ok": len(ok),
                "status": "ok" if len(ok) == len(rs) else
                          ("failed" if "failed" in statuses else statuses[0]),
                "qps_median": median([r["qps"] for r in ok]),
                "qps_all": [round(r["qps"], 1) for r in ok],
                "p95_ms_median": median([r.get("p95_ms") for r in ok]),
                "ratio_to_direct_median": median(ratios) if target != "direct" else (1.0 if ok else None),
                "ratio_to_direct_all": [round(x, 3) for x in ratios] if target != "direct" else None,
                "proxy_cpu_s_per_10k_median": median([r.get("proxy_cpu_s_per_10k") for r in ok]),
                "proxy_peak_rss_mib_max": (max(r["proxy_peak_rss_kb"] for r in ok if r.get("proxy_peak_rss_kb")) / 1024.0
                                           if any(r.get("proxy_peak_rss_kb") for r in ok) else None),
            }
            notes = sorted({r["note"] for r in rs if r.get("note")})
            if notes:
                row["note"] = "; ".join(notes)
            rows.append(row)
    return rows


def fmt(x, spec):
    return "-" if x is None else format(x, spec)


def render_table(rows):
    """A Markdown table; pending and n/a rows say why in place of numbers."""
    head = ["case", "target", "qps", "x direct", "(min-max)", "p95 ms", "CPU s/10k q", "peak RSS MiB", "ok"]
    lines = []  # (cells, status text or None)
    prev_case = None
    for row in rows:
        case = row["case"] if row["case"] != prev_case else ""
        prev_case = row["case"]
        if row["status"] in ("pending", "n/a"):
            text = row["status"] + (" (" + row["note"] + ")" if row.get("note") else "")
            lines.append(([case, row["target"]] + [""] * (len(head) - 2), text))
            continue
        ratios = row["ratio_to_direct_all"] or []
        rng = "%.2f-%.2f" % (min(ratios), max(ratios)) if len(ratios) > 1 else ""
        lines.append(([
            case, row["target"],
            fmt(row["qps_median"], ".0f"),
            fmt(row["ratio_to_direct_median"], ".2f"),
            rng,
            fmt(row["p95_ms_median"], ".2f"),
            fmt(row["proxy_cpu_s_per_10k_median"], ".2f"),
            fmt(row["proxy_peak_rss_mib_max"], ".1f"),
            "%d/%d" % (row["ok"], row["runs"]) + ("" if row["status"] == "ok" else " FAILED"),
        ], None))
    widths = [len(h) for h in head]
    for cells, _ in lines:
        for i, cell in enumerate(cells):
            widths[i] = max(widths[i], len(cell))

    def emit(cells):
        return "| " + " | ".join(c.ljust(widths[i]) if i < 2 else c.rjust(widths[i])
                                 for i, c in enumerate(cells)) + " |"

    out = [emit(head),
           "|" + "|".join("-" * (w + 2) if i < 2 else "-" * (w + 1) + ":" for i, w in enumerate(widths)) + "|"]
    for cells, text in lines:
        if text is None:
            out.append(emit(cells))
        else:  # the status text overflows the metric columns
            out.append("| " + cells[0].ljust(widths[0]) + " | " + cells[1].ljust(widths[1]) + " | " + text
                       + " |" * (len(head) - 2))
    return "\n".join(out)


def cmd_summarize(args):
    with open(args.meta) as f:
        meta = json.load(f)
    runs = []
    with open(args.runs) as f:
        for line in f:
            if line.strip():
                runs.append(json.loads(line))
    case_order = []
    for r in runs:
        if r["case"] not in case_order:
            case_order.append(r["case"])
    rows = summarize(runs, case_order, ["direct", "dbmesh", "pgbouncer", "relay"])
    result = {"meta": meta, "summary": rows, "runs": runs}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print(render_table(rows))
    failed = [r for r in runs if r["status"] == "failed"]
    if failed:
        print("\n%d run(s) FAILED:" % len(failed))
        for r in failed:
            print("  %s / %s round %s: exit %s%s" % (r["case"], r["target"], r["round"], r.get("exit_code"),
                                                  ", proxy died" if r.get("proxy_died") else ""))
            print("    command: " + r["command"])
            for line in r.get("output_tail", [])[-10:]:
                print("    | " + line)
    return 1 if failed and args.fail_on_error else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("record")
    r.add_argument("--runs", required=True)
    r.add_argument("--case", required=True)
    r.add_argument("--target", required=True)
    r.add_argument("--round", type=int, required=True)
    r.add_argument("--order", type=int, default=0)
    r.add_argument("--status", default="run", choices=["run", "pending", "n/a"])
    r.add_argument("--note")
    r.add_argument("--command", default="")
    r.add_argument("--tool", choices=["sysbench", "pgbench"])
    r.add_argument("--output")
    r.add_argument("--exit-code", type=int, default=0)
    r.add_argument("--pg-log-prefix")
    r.add_argument("--proxy")
    r.add_argument("--cpu-ticks", type=int)
    r.add_argument("--clk-tck", type=int, default=100)
    r.add_argument("--hwm-kb", type=int)
    r.add_argument("--proxy-died", action="store_true")
    r.set_defaults(func=cmd_record)

    s = sub.add_parser("summarize")
    s.add_argument("--runs", required=True)
    s.add_argument("--meta", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--fail-on-error", action="store_true")
    s.set_defaults(func=cmd_summarize)

    args = p.parse_args()
    sys.exit(args.func(args) or 0)


if __name__ == "__main__":
    main()
