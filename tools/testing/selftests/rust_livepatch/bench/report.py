#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Turn the lines of rust_klp_shadow_bench into tables, CSV, JSON and plots.

    report.py OUT_DIR RUN_DIR [RUN_DIR ...]

Each RUN_DIR holds one guest run: results.txt (/sys/kernel/debug/
rust_klp_shadow_bench/results as the guest saved it) and meta.json (the
machine and the mode, "tcg" or "icount", written by scripts/bench).  Writes
OUT_DIR/bench.json, bench.csv, bench.rst (the tables of
Documentation/livepatch/rust-klp-shadow-bench.rst) and bench-<mode>.png, and
prints the tables.

Every figure is per repetition first, then the median over the repetitions
with the spread min..max:

- ns/op of a row = its median chunk / operations per chunk, *minus the empty
  loop* of the same row in the same repetition (the same loop over the same
  access stream without the table call; the module's impl "empty").
- ours/C = ours net / C net in each repetition: both tables (and the empty
  loop) were measured seconds apart, so a repetition's ratio cancels the
  host's load of that moment, which the ratio of two medians would not.
- flatness = (our net get at the largest size - at the smallest) / (one
  cold load there - one here), per repetition; one cold load is a step of
  the dependent pointer chase through a buffer of the table's footprint.
- live bytes per variable = (entries + arrays + records + fixed) / N, each
  computed exactly (entries: kmalloc_size_roundup(48 + size); our arrays:
  the table's debugfs array_bytes; fixed: the symbols' sizes in the binaries,
  from meta.json), next to the slab increase the module measured.

Exits 0 even when a target is missed: a benchmark reports, it does not
judge; exit 1 means the results are unusable (errors reported by the module,
missing lines).
"""

import csv
import json
import os
import statistics
import sys
from collections import defaultdict

# (test, role) -> label, in display order.
SERIES = [
    (("get_hit", "read"), "get, hit (1 CPU)"),
    (("get_miss", "miss"), "get, miss (1 CPU)"),
    (("get_read", "data"), "get, hit + read data (1 CPU)"),
    (("get_or_alloc", "getalloc"), "get_or_alloc, existing (1 CPU)"),
    (("alloc_free", "write"), "alloc+free (1 CPU)"),
    (("free_all", "freeall"), "free_all, per variable freed"),
    (("cpus_read", "read"), "all CPUs: get, hit"),
    (("cpus_write", "write"), "all CPUs: alloc+free"),
    (("cpus_mixed", "read"), "mixed: readers, get hit"),
    (("cpus_mixed", "write"), "mixed: writers, alloc+free"),
]
LABEL = dict(SERIES)
MEM_RESOLUTION = 512 << 10
# Targets of issue 18.
FLAT_TARGET = {"get_hit": 1.25, "get_miss": 1.5}
MEM_TARGET_LIVES = (10000, 1000000)
# Estimates used when meta.json has no sizes from the binaries.
RUST_FIXED_ESTIMATE = 64 * 3 * 64
C_FIXED_ESTIMATE = 4096 * 8


def target_for(test, role, live, mode):
    """The issue's target for ours/C, or None."""
    if test in ("get_hit", "get_miss") and live <= 10000:
        return 0.9
    if test == "alloc_free":
        return 1.0
    if test == "cpus_write" and live <= 100 and mode != "icount":
        return 1.0
    return None


def parse(path):
    run = {"info": {}, "rows": [], "mems": {}, "memfree": {}, "fills": [], "done": None,
           "tstats": {}, "cold": {}}
    with open(path) as f:
        for line in f:
            kind, *kv = line.split()
            d = dict(x.split("=", 1) for x in kv if "=" in x)
            for k, v in d.items():
                try:
                    d[k] = int(v)
                except ValueError:
                    pass
            if kind == "info":
                run["info"] = d
            elif kind == "result":
                run["rows"].append(d)
            elif kind == "mem":
                run["mems"][(d["live"], d["impl"])] = d
            elif kind == "memfree":
                run["memfree"][(d["live"], d["impl"])] = d
            elif kind == "fill":
                run["fills"].append(d)
            elif kind == "tablestats":
                run["tstats"][(d["live"], d.get("when", "filled"))] = d
            elif kind == "cold":
                run["cold"][d["live"]] = d
            elif kind == "done":
                run["done"] = d.get("status")
    return run


def summarize(values):
    return {
        "n": len(values),
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "samples": values,
    }


def aggregate(rows):
    """ns/op per (live, test, role, impl) and rep: the mean over the CPUs of that role."""
    per = defaultdict(list)
    errors = 0
    for r in rows:
        errors += r["errors"]
        if r.get("chunk_ops") and r.get("chunk_ns_med"):
            v = r["chunk_ns_med"] / r["chunk_ops"]
        elif r["ops"]:
            v = r["ns"] / r["ops"]
        else:
            continue
        per[(r["live"], r["test"], r["role"], r["impl"], r["rep"])].append(v)
    reps = defaultdict(dict)
    for (live, test, role, impl, rep), v in per.items():
        reps[(live, test, role, impl)][rep] = sum(v) / len(v)
    return reps, errors


def net(reps, live, test, role, impl):
    """Per repetition: the row minus its empty loop (the raw row where there is none)."""
    raw = reps.get((live, test, role, impl))
    if not raw:
        return None
    empty = reps.get((live, test, role, "empty"), {})
    return {k: v - empty.get(k, 0.0) for k, v in raw.items()}


# The unit of the run being rendered: under -icount a guest ns is one instruction.
UNIT = {"icount": False}


def fmt_ns(v):
    if v is None:
        return "-"
    if UNIT["icount"]:
        if abs(v) >= 10000:
            return f"{v / 1000:.1f}k insn"
        return f"{v:.0f} insn" if abs(v) >= 100 else f"{v:.1f} insn"
    if abs(v) >= 10000:
        return f"{v / 1000:.1f} us"
    return f"{v:.0f} ns" if abs(v) >= 100 else f"{v:.1f} ns"


def fmt_live(n):
    return f"{n:,}"


def fmt_ratio(r):
    if r is None:
        return "-"
    return f"{r:.4f}" if abs(r) < 0.01 else f"{r:.3f}" if abs(r) < 1 else f"{r:.2f}"


def fmt_met(m):
    return "" if m is None else ("met" if m else "MISSED")


def spread(s, f=fmt_ns):
    return f'{f(s["median"])} ({f(s["min"])}..{f(s["max"])})' if s else "-"


def analyse(run, meta):
    mode = meta.get("mode", "tcg")
    reps, errors = aggregate(run["rows"])
    lives = sorted({k[0] for k in reps})
    table, series = [], []
    for live in lives:
        for (test, role), label in SERIES:
            c, r = net(reps, live, test, role, "c"), net(reps, live, test, role, "rust")
            if not c or not r:
                continue
            sc, sr = summarize(list(c.values())), summarize(list(r.values()))
            paired = [r[k] / c[k] for k in r if k in c and c[k] > 0]
            if not paired:
                continue
            empty = reps.get((live, test, role, "empty"))
            ratio = statistics.median(paired)
            tgt = target_for(test, role, live, mode)
            table.append({
                "live": live, "test": test, "role": role, "label": label, "unit": "ns/op",
                "c": sc, "rust": sr, "empty": summarize(list(empty.values())) if empty else None,
                "ratio": ratio, "ratio_min": min(paired), "ratio_max": max(paired),
                "target": tgt, "met": None if tgt is None else ratio <= tgt,
            })
            for impl, s in (("c", sc), ("rust", sr)):
                series.append({"live": live, "test": test, "role": role, "impl": impl, **s})

    # References, per live: the loop, a call, one random load, one chased load.
    reference = []
    for live in lives:
        ref = {"live": live}
        for key, (test, role, impl, sub) in {
            "loop_get": ("get_hit", "read", "empty", False),
            "call": ("ref_call", "read", "ref", True),
            "load": ("cold_load", "load", "ref", True),
            "chase": ("cold_chase", "chase", "ref", False),
        }.items():
            v = net(reps, live, test, role, impl) if sub else reps.get((live, test, role, impl))
            if v:
                ref[key] = summarize(list(v.values()))
                ref[key + "_reps"] = v
        if run["cold"].get(live):
            ref["cold_bytes"] = run["cold"][live]["bytes"]
        if len(ref) > 1:
            reference.append(ref)

    # Flatness: per repetition, in cold loads (chase steps) and in random loads.
    flat = []
    refs = {r["live"]: r for r in reference}
    if len(lives) > 1:
        lo, hi = lives[0], lives[-1]
        for test, role in (("get_hit", "read"), ("get_miss", "miss")):
            for impl in ("rust", "c"):
                a, b = net(reps, lo, test, role, impl), net(reps, hi, test, role, impl)
                if not a or not b:
                    continue
                delta = {k: b[k] - a[k] for k in a if k in b}
                entry = {"test": test, "impl": impl, "live_lo": lo, "live_hi": hi,
                         "delta": summarize(list(delta.values()))}
                for unit in ("chase", "load"):
                    ua, ub = refs.get(lo, {}).get(unit + "_reps"), refs.get(hi, {}).get(unit + "_reps")
                    if not ua or not ub:
                        continue
                    u = {k: ub[k] - ua[k] for k in ua if k in ub}
                    entry[unit + "_unit"] = summarize(list(u.values()))
                    # A unit under 1 ns is no cold load: under -icount a load is one
                    # instruction wherever it goes.
                    per = [delta[k] / u[k] for k in delta if k in u and u[k] >= 1.0]
                    if per:
                        entry[unit] = summarize(per)
                        # And the ratio of the medians, less sensitive to one bad unit.
                        mu = entry[unit + "_unit"]["median"]
                        if mu >= 1.0:
                            entry[unit + "_of_medians"] = entry["delta"]["median"] / mu
                tgt = FLAT_TARGET[test] if impl == "rust" else None
                entry["target"] = tgt
                entry["met"] = (None if tgt is None or "chase" not in entry
                                else entry["chase"]["median"] <= tgt)
                flat.append(entry)

    # Live bytes per variable.
    memory = []
    rust_fixed = meta.get("rust_fixed_bytes") or RUST_FIXED_ESTIMATE
    c_fixed = meta.get("c_fixed_bytes") or C_FIXED_ESTIMATE
    for live in lives:
        c, r = run["mems"].get((live, "c")), run["mems"].get((live, "rust"))
        ts = run["tstats"].get((live, "filled"), {})
        if not c or not r:
            continue
        c_entries = c.get("entry_bytes", c.get("model_bytes", 0))
        r_entries = r.get("entry_bytes", c_entries)
        arrays = ts.get("array_bytes")
        nr_arrays = ts.get("shards", 64) + ts.get("resizes_migrating", 0)
        records = r.get("record_bytes", 32) * nr_arrays
        c_live = c_entries + c_fixed
        r_live = None if arrays is None else r_entries + arrays + records + rust_fixed
        m = {
            "live": live,
            "c_entries": c_entries, "c_fixed": c_fixed, "c_live": c_live,
            "c_live_per_var": c_live / live,
            "c_slab": c["slab_bytes"], "c_pages": c["pages_bytes"],
            "c_kept": c["slab_bytes"] - c_entries,
            "rust_entries": r_entries, "rust_arrays": arrays, "rust_records": records,
            "rust_fixed": rust_fixed, "rust_live": r_live,
            "rust_live_per_var": None if r_live is None else r_live / live,
            "rust_slab": r["slab_bytes"], "rust_pages": r["pages_bytes"],
            "rust_kept": None if arrays is None else r["slab_bytes"] - (r_entries + arrays + records),
            "rust_lines": ts.get("lines"), "rust_max_probe": ts.get("max_probe"),
            "rust_grows": ts.get("grows"),
            "c_freed": run["memfree"].get((live, "c"), {}).get("slab_bytes"),
            "rust_freed": run["memfree"].get((live, "rust"), {}).get("slab_bytes"),
            "resolved": min(c["slab_bytes"], r["slab_bytes"]) >= MEM_RESOLUTION,
        }
        m["ratio"] = None if r_live is None else r_live / c_live
        m["target"] = 1.0 if live in MEM_TARGET_LIVES else None
        m["met"] = None if m["target"] is None or m["ratio"] is None else m["ratio"] <= 1.0
        memory.append(m)

    fill = [{"live": f["live"], "impl": f["impl"], "ns_per_alloc": f["ns"] / max(f["ops"], 1)}
            for f in run["fills"]]
    return {"meta": meta, "mode": mode, "guest": run["info"], "status": run["done"],
            "errors": errors, "ops": table, "flat": flat, "memory": memory,
            "fill": fill, "reference": [{k: v for k, v in r.items() if not k.endswith("_reps")}
                                        for r in reference],
            "tablestats": {f"{k[0]}:{k[1]}": v for k, v in run["tstats"].items()},
            "series": series}


# --- Rendering.

OPS_HDR = ["live", "operation", "loop", "C klp_shadow (min..max)", "ours (min..max)",
           "ours/C (min..max)", "target", ""]


def ops_rows(doc):
    for t in doc["ops"]:
        yield [fmt_live(t["live"]), t["label"],
               fmt_ns(t["empty"]["median"]) if t["empty"] else "-",
               spread(t["c"]), spread(t["rust"]),
               f'{fmt_ratio(t["ratio"])} ({fmt_ratio(t["ratio_min"])}..{fmt_ratio(t["ratio_max"])})',
               "" if t["target"] is None else f'<= {t["target"]}', fmt_met(t["met"])]


REF_HDR = ["live", "loop of get (empty)", "call + return", "one random load (net)",
           "one chased load", "buffer"]


def ref_rows(doc):
    for r in doc["reference"]:
        yield [fmt_live(r["live"]), spread(r.get("loop_get")), spread(r.get("call")),
               spread(r.get("load")), spread(r.get("chase")),
               f'{r["cold_bytes"] / 1e6:.2f} MB' if r.get("cold_bytes") else "-"]


FLAT_HDR = ["lookup", "table", "get at hi - at lo", "cold load at hi - at lo",
            "in cold loads (min..max)", "of medians", "in random loads", "target", ""]


def flat_rows(doc):
    for f in doc["flat"]:
        yield [f'{f["test"]} {fmt_live(f["live_hi"])} vs {fmt_live(f["live_lo"])}',
               "ours" if f["impl"] == "rust" else "C", spread(f["delta"]),
               spread(f.get("chase_unit")),
               spread(f.get("chase"), fmt_ratio) if f.get("chase") else "n/a",
               fmt_ratio(f.get("chase_of_medians")),
               spread(f.get("load"), fmt_ratio) if f.get("load") else "n/a",
               "" if f["target"] is None else f'<= {f["target"]}', fmt_met(f["met"])]


MEM_HDR = ["live", "table", "entries B/var", "arrays B/var", "fixed B/var", "live B/var",
           "slab measured B/var", "slab kept B/var", "ours/C live", "target", ""]


def mem_rows(doc):
    for m in doc["memory"]:
        n = m["live"]
        # Slab grows by whole slabs and frees lazily: an increase under
        # MEM_RESOLUTION says nothing per variable.
        res = m["resolved"]
        yield [fmt_live(n), "C", f'{m["c_entries"] / n:.1f}', "0",
               f'{m["c_fixed"] / n:.2f}', f'{m["c_live_per_var"]:.1f}',
               f'{m["c_slab"] / n:.1f}' if res else "(below resolution)",
               f'{m["c_kept"] / n:.1f}' if res else "-", "", "", ""]
        arr = "-" if m["rust_arrays"] is None else f'{(m["rust_arrays"] + m["rust_records"]) / n:.1f}'
        yield [fmt_live(n), "ours", f'{m["rust_entries"] / n:.1f}', arr,
               f'{m["rust_fixed"] / n:.2f}',
               "-" if m["rust_live_per_var"] is None else f'{m["rust_live_per_var"]:.1f}',
               f'{m["rust_slab"] / n:.1f}' if res else "(below resolution)",
               "-" if m["rust_kept"] is None or not res else f'{m["rust_kept"] / n:.1f}',
               fmt_ratio(m["ratio"]), "" if m["target"] is None else "<= 1.0",
               fmt_met(m["met"])]


def describe(doc):
    m, g = doc["meta"], doc["guest"]
    mode = {"icount": "TCG -icount shift=0 (1 instruction = 1 ns), single-threaded",
            "tcg": "TCG multi-threaded"}.get(doc["mode"], doc["mode"])
    kcfg = m.get("kernel_config", {})
    cfg = ", ".join(f"{k}={v}" for k, v in kcfg.items()) if kcfg else "no .config read"
    return (f'{m.get("flavour", "?")} kernel {g.get("kernel", "?")}: preempt={g.get("preempt")}'
            f' (PREEMPT_DYNAMIC={"yes" if g.get("preempt_dynamic") else "no"}, running'
            f' {g.get("preempt_now")}), RCU={g.get("rcu")}, HZ={g.get("hz")},'
            f' nohz={g.get("nohz")}, kasan={g.get("kasan")} lockdep={g.get("lockdep")}'
            f' kmemleak={g.get("kmemleak")} [.config: {cfg}]; {g.get("cpus")} vCPUs, {mode}'
            f' on {m.get("host_cpu", "?")} ({m.get("host_cores", "?")} cores, load'
            f' {m.get("load_before", "?")} before / {m.get("load_after", "?")} after,'
            f' guest {m.get("guest_seconds", "?")} s), {g.get("reps")} reps x'
            f' {g.get("sample_ms")} ms, tsc_khz={g.get("tsc_khz")}, {m.get("date", "")}')


NOTES = [
    "Per operation: median over repetitions (min..max) of the row minus its empty loop",
    "(the same loop over the same access stream with no table call, column \"loop\",",
    "measured in the same repetition); all-CPU rows: per CPU; free_all: one timed call,",
    "nothing subtracted.  ours/C: median of the per-repetition ratios of the net figures.",
]


def text_table(hdr, rows):
    rows = [hdr] + [list(map(str, r)) for r in rows]
    w = [max(len(r[i]) for r in rows) for i in range(len(hdr))]
    lines = ["  ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * x for x in w))
    return "\n".join(lines)


def rst_table(hdr, rows):
    rows = [hdr] + [list(map(str, r)) for r in rows]
    # At least 2 wide: an empty cell is written "..", and a column needs a width.
    w = [max(2, max(len(r[i]) for r in rows)) for i in range(len(hdr))]
    sep = "  ".join("=" * x for x in w)
    lines = [sep, "  ".join(c.ljust(w[i]) for i, c in enumerate(rows[0])).rstrip(), sep]
    lines += ["  ".join((c or "..").ljust(w[i]) for i, c in enumerate(r)).rstrip() for r in rows[1:]]
    lines.append(sep)
    return "\n".join(lines)


def render_run(doc, table):
    UNIT["icount"] = doc["mode"] == "icount"
    unit = "instructions" if doc["mode"] == "icount" else "ns"
    out = [f'[{doc["mode"]}] ' + describe(doc), ""] + NOTES
    if doc["mode"] == "icount":
        out.append("Under -icount shift=0 a guest ns is one instruction: the figures are instructions (insn).")
    out += ["", table(OPS_HDR, list(ops_rows(doc))), ""]
    if doc["reference"]:
        out += [f"references ({unit} per iteration; call and random load net of their empty loop):",
                "", table(REF_HDR, list(ref_rows(doc))), ""]
    if doc["flat"]:
        out += ["flatness: (get at the largest size - at the smallest) per repetition, in units of",
                "one cold load (a chase step at the largest size - at the smallest); n/a: no unit",
                "(under -icount a load costs one instruction wherever it goes)", "",
                table(FLAT_HDR, list(flat_rows(doc))), ""]
    if doc["memory"]:
        out += ["live bytes per variable: entries (kmalloc_size_roundup of header + data) + arrays",
                "(ours: debugfs array_bytes + one retire record per array) + fixed tables (from the",
                "binaries), against the slab increase measured while the table was filled; kept =",
                "measured - live entries and arrays (slab held by freed arrays and partial slabs)", "",
                table(MEM_HDR, list(mem_rows(doc))), ""]
    return "\n".join(out)


def targets(docs):
    """One line per target: the verdict in each mode."""
    rows = []
    for d in docs:
        UNIT["icount"] = d["mode"] == "icount"
        for t in d["ops"]:
            if t["target"] is not None:
                rows.append([d["mode"], f'{t["label"]} at {fmt_live(t["live"])}',
                             f'<= {t["target"]}',
                             f'{fmt_ratio(t["ratio"])} ({fmt_ratio(t["ratio_min"])}..{fmt_ratio(t["ratio_max"])})',
                             fmt_met(t["met"]), margin(t["ratio"], t["target"])])
        for f in d["flat"]:
            if f["target"] is not None:
                v = f.get("chase")
                c = next((g for g in d["flat"] if g["test"] == f["test"] and g["impl"] == "c"), None)
                # No unit (icount): what the lookup does more at the largest size instead.
                extra = (f'n/a: +{fmt_ns(f["delta"]["median"])}'
                         + (f' (C +{fmt_ns(c["delta"]["median"])})' if c else ""))
                rows.append([d["mode"], f'flat {f["test"]} {fmt_live(f["live_hi"])} vs {fmt_live(f["live_lo"])} (cold loads)',
                             f'<= {f["target"]}', spread(v, fmt_ratio) if v else extra,
                             fmt_met(f["met"]), margin(v["median"], f["target"]) if v else ""])
        for m in d["memory"]:
            if m["target"] is not None and m["ratio"] is not None:
                rows.append([d["mode"], f'live bytes per variable at {fmt_live(m["live"])}', "<= 1.0",
                             f'{fmt_ratio(m["ratio"])} ({m["rust_live_per_var"]:.1f} / {m["c_live_per_var"]:.1f} B)',
                             fmt_met(m["met"]), margin(m["ratio"], 1.0)])
    return rows


def margin(v, tgt):
    if v is None or tgt is None:
        return ""
    return f"{(v / tgt - 1) * 100:+.0f} %"


TGT_HDR = ["mode", "target", "wanted", "measured (min..max)", "", "vs target"]


def write_csv(path, docs):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["mode", "live", "test", "role", "unit", "loop_median", "c_median", "c_min",
                    "c_max", "rust_median", "rust_min", "rust_max", "reps", "ratio_rust_c",
                    "ratio_min", "ratio_max", "target", "met"])
        for d in docs:
            for t in d["ops"]:
                w.writerow([d["mode"], t["live"], t["test"], t["role"], t["unit"] + " net",
                            f'{t["empty"]["median"]:.2f}' if t["empty"] else "",
                            f'{t["c"]["median"]:.2f}', f'{t["c"]["min"]:.2f}', f'{t["c"]["max"]:.2f}',
                            f'{t["rust"]["median"]:.2f}', f'{t["rust"]["min"]:.2f}',
                            f'{t["rust"]["max"]:.2f}', t["c"]["n"], f'{t["ratio"]:.4f}',
                            f'{t["ratio_min"]:.4f}', f'{t["ratio_max"]:.4f}',
                            "" if t["target"] is None else t["target"], fmt_met(t["met"])])
            for fl in d["flat"]:
                v = fl.get("chase")
                w.writerow([d["mode"], fl["live_hi"], fl["test"] + "_flat", fl["impl"], "cold loads",
                            "", "", "", "", "", "", "", v["n"] if v else "",
                            f'{v["median"]:.4f}' if v else "", f'{v["min"]:.4f}' if v else "",
                            f'{v["max"]:.4f}' if v else "",
                            "" if fl["target"] is None else fl["target"], fmt_met(fl["met"])])
            for m in d["memory"]:
                w.writerow([d["mode"], m["live"], "live_bytes", "per_var", "bytes/var", "",
                            f'{m["c_live_per_var"]:.2f}', "", "",
                            "" if m["rust_live_per_var"] is None else f'{m["rust_live_per_var"]:.2f}',
                            "", "", 1, "" if m["ratio"] is None else f'{m["ratio"]:.4f}', "", "",
                            "" if m["target"] is None else m["target"], fmt_met(m["met"])])


def plot(doc, path):
    try:
        import matplotlib
    except ImportError:
        print(f"report: no matplotlib in {sys.executable}: {path} not drawn", file=sys.stderr)
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("one CPU", [("get_hit", "read"), ("get_miss", "miss"), ("get_read", "data"),
                     ("alloc_free", "write"), ("get_or_alloc", "getalloc")]),
        ("all CPUs at once (per CPU)", [("cpus_read", "read"), ("cpus_write", "write"),
                                        ("cpus_mixed", "read"), ("cpus_mixed", "write")]),
    ]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, axes = plt.subplots(1, 3, figsize=(18, 6))
    idx = defaultdict(list)
    for s in doc["series"]:
        idx[(s["test"], s["role"], s["impl"])].append(s)
    for ax, (title, keys) in zip(axes, panels):
        for i, (test, role) in enumerate(keys):
            for impl, style, marker, name in (("c", "--", "o", "C klp_shadow"),
                                              ("rust", "-", "s", "ours")):
                pts = sorted(idx.get((test, role, impl), []), key=lambda s: s["live"])
                pts = [p for p in pts if p["median"] > 0]
                if not pts:
                    continue
                x = [p["live"] for p in pts]
                y = [p["median"] for p in pts]
                err = [[max(p["median"] - p["min"], 0) for p in pts],
                       [max(p["max"] - p["median"], 0) for p in pts]]
                ax.errorbar(x, y, yerr=err, linestyle=style, marker=marker, capsize=3,
                            color=colors[i % len(colors)],
                            label=f"{LABEL[(test, role)]}: {name}")
        ref = [(r["live"], r["chase"]["median"]) for r in doc.get("reference", [])
               if "chase" in r and r["chase"]["median"] > 0]
        if ref and title == "one CPU":
            ax.plot([x for x, _ in ref], [y for _, y in ref], ":", color="gray", marker=".",
                    label="reference: one chased (cold) load")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("live shadow variables")
        ax.set_ylabel(("instructions" if doc["mode"] == "icount" else "ns")
                      + " per operation, net of the loop (median, min..max)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    ax = axes[2]
    for i, (test, role) in enumerate([k for _, ks in panels for k in ks]):
        pts = sorted((t for t in doc["ops"] if (t["test"], t["role"]) == (test, role)),
                     key=lambda t: t["live"])
        if pts:
            x = [t["live"] for t in pts]
            ax.errorbar(x, [t["ratio"] for t in pts],
                        yerr=[[max(t["ratio"] - t["ratio_min"], 0) for t in pts],
                              [max(t["ratio_max"] - t["ratio"], 0) for t in pts]],
                        marker="s", capsize=3, color=colors[i % len(colors)],
                        linestyle="-" if not test.startswith("cpus") else ":",
                        label=LABEL[(test, role)])
    ax.axhline(1.0, color="k", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("live shadow variables")
    ax.set_ylabel("ours / C (median; per-rep range)")
    ax.set_title("ratio: below 1 is faster than the kernel's")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.suptitle("rust_klp_shadow vs klp_shadow: " + describe(doc)[:400], fontsize=7, wrap=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out, run_dirs = sys.argv[1], sys.argv[2:]
    docs, bad = [], False
    for rd in run_dirs:
        results = os.path.join(rd, "results.txt")
        with open(os.path.join(rd, "meta.json")) as f:
            meta = json.load(f)
        run = parse(results)
        if not run["rows"]:
            sys.exit(f"report: no result lines in {results}")
        doc = analyse(run, meta)
        docs.append(doc)
        if doc["errors"] or doc["status"] != 0:
            print(f'report: {results}: the module reported {doc["errors"]} wrong results,'
                  f' status {doc["status"]}', file=sys.stderr)
            bad = True
    tgt = targets(docs)
    text = [render_run(d, text_table) for d in docs]
    text.append("targets (issue 18), ours/C unless stated:\n\n" + text_table(TGT_HDR, tgt))
    if any(d["meta"].get("accel") == "TCG" for d in docs):
        text.append("TCG (emulated CPU): absolute ns are not those of hardware; read the ratios.")
    print("\n\n".join(text))
    rst = [render_run(d, rst_table) for d in docs] + [rst_table(TGT_HDR, tgt)]
    with open(os.path.join(out, "bench.rst"), "w") as f:
        f.write("\n\n".join(rst) + "\n")
    with open(os.path.join(out, "bench.json"), "w") as f:
        json.dump({"runs": docs, "targets": [dict(zip(TGT_HDR, r)) for r in tgt]}, f, indent=1)
    write_csv(os.path.join(out, "bench.csv"), docs)
    for d in docs:
        plot(d, os.path.join(out, f'bench-{d["mode"]}.png'))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
