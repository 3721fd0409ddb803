#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Turn the lines of rust_klp_shadow_bench into a table, CSV, JSON and a plot.

    report.py RESULTS_TXT META_JSON OUT_DIR

RESULTS_TXT is /sys/kernel/debug/rust_klp_shadow_bench/results as the guest
saved it; META_JSON describes the machine (written by scripts/bench).  Writes
OUT_DIR/bench.json, bench.csv, bench.png and bench.rst (the numbers table for
Documentation/livepatch/rust-klp-shadow-bench.rst) and prints the table.

Every number is a median over the repetitions; the spread is min..max.  A
ratio ours/C is the median of the per-repetition ratios, with their min..max:
both tables are measured back to back in each repetition (in alternating
order), so a repetition's ratio cancels the host's load of that moment, which
the ratio of the two medians would not.  Exits 0 even
when a target is missed: a benchmark reports, it does not judge; exit 1 means
the results are unusable (errors reported by the module, missing lines).
"""

import csv
import json
import statistics
import sys
from collections import defaultdict

# (test, role) -> label, in display order.
SERIES = [
    (("get_hit", "read"), "get, hit (1 CPU)"),
    (("get_miss", "miss"), "get, miss (1 CPU)"),
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


def target_for(test, role, live):
    """The issue's target for ours/C, or None."""
    if test in ("get_hit", "get_miss"):
        return 1.1 if live <= 10000 else 0.01
    if test == "alloc_free":
        return 1.0
    if role == "write" and test in ("cpus_write", "cpus_mixed"):
        return 0.67
    return None


def parse(path):
    info, rows, mems, fills, done, tstats = {}, [], [], [], None, {}
    with open(path) as f:
        for line in f:
            kind, *kv = line.split()
            d = dict(x.split("=", 1) for x in kv)
            for k, v in d.items():
                try:
                    d[k] = int(v)
                except ValueError:
                    pass
            if kind == "info":
                info = d
            elif kind == "result":
                rows.append(d)
            elif kind == "mem":
                mems.append(d)
            elif kind == "fill":
                fills.append(d)
            elif kind == "tablestats":
                tstats[d["live"]] = d
            elif kind == "done":
                done = d.get("status")
    return info, rows, mems, fills, done, tstats


def summarize(values):
    return {
        "n": len(values),
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "samples": values,
    }


def aggregate(rows):
    """ns/op per (live, test, role, impl, rep): the mean over the CPUs of that role."""
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


def fmt_ns(v):
    if v is None:
        return "-"
    if v >= 10000:
        return f"{v / 1000:.1f} us"
    return f"{v:.0f} ns" if v >= 100 else f"{v:.1f} ns"


def fmt_live(n):
    return f"{n:,}"


def main():
    results, meta_path, out = sys.argv[1:4]
    info, rows, mems, fills, done, tstats = parse(results)
    with open(meta_path) as f:
        meta = json.load(f)
    if not rows:
        sys.exit(f"report: no result lines in {results}")
    reps, errors = aggregate(rows)
    lives = sorted({k[0] for k in reps})

    series, table = [], []
    for live in lives:
        for (test, role), label in SERIES:
            c, r = reps.get((live, test, role, "c")), reps.get((live, test, role, "rust"))
            if not c or not r:
                continue
            sc, sr = summarize(list(c.values())), summarize(list(r.values()))
            if not sc["median"] or not all(c.values()):
                continue
            paired = [r[k] / c[k] for k in r if k in c and c[k] > 0]
            ratio = statistics.median(paired)
            tgt = target_for(test, role, live)
            row = {
                "live": live, "test": test, "role": role, "label": label, "unit": "ns/op",
                "c": sc, "rust": sr, "ratio": ratio,
                "ratio_min": min(paired), "ratio_max": max(paired),
                "target": tgt,
                "met": None if tgt is None else ratio <= tgt,
            }
            table.append(row)
            for impl, s in (("c", sc), ("rust", sr)):
                series.append({"live": live, "test": test, "role": role, "impl": impl, **s})

    # Flat: our get at the largest size against our get at the smallest.
    flat = []
    if len(lives) > 1:
        for test, role in (("get_hit", "read"), ("get_miss", "miss")):
            lo, hi = reps.get((lives[0], test, role, "rust")), reps.get((lives[-1], test, role, "rust"))
            if lo and hi:
                f = statistics.median(hi.values()) / statistics.median(lo.values())
                flat.append({"test": test, "live_lo": lives[0], "live_hi": lives[-1],
                             "ratio": f, "target": 2.0, "met": f <= 2.0})

    memory = []
    by = {(m["live"], m["impl"]): m for m in mems}
    for live in lives:
        c, r = by.get((live, "c")), by.get((live, "rust"))
        if not c or not r:
            continue
        memory.append({
            "live": live,
            "c_slab_per_var": c["slab_bytes"] / live,
            "rust_slab_per_var": r["slab_bytes"] / live,
            "c_pages_per_var": c["pages_bytes"] / live,
            "rust_pages_per_var": r["pages_bytes"] / live,
            "c_model_per_var": c["model_bytes"] / live,
            # Our bucket arrays: a pointer per bucket (the table's debugfs).
            "rust_lines": tstats.get(live, {}).get("lines"),
            "rust_max_probe": tstats.get(live, {}).get("max_probe"),
            "rust_array_bytes": tstats.get(live, {}).get("array_bytes"),
            # Slab grows by whole slabs and frees lazily: a delta under
            # MEM_RESOLUTION is noise, not a measurement.
            "resolved": min(c["slab_bytes"], r["slab_bytes"]) >= MEM_RESOLUTION,
            "target": 1.0,
        })
        m = memory[-1]
        m["ratio"] = r["slab_bytes"] / c["slab_bytes"] if m["resolved"] else None
        m["met"] = None if m["ratio"] is None else m["ratio"] <= 1.0
    fill = [{"live": f["live"], "impl": f["impl"], "ns_per_alloc": f["ns"] / max(f["ops"], 1)}
            for f in fills]
    reference = []
    for live in lives:
        ref = {"live": live}
        for test, role in (("ref_call", "call"), ("ref_load", "load")):
            v = reps.get((live, test, role, "ref"))
            if v:
                ref[test] = summarize(list(v.values()))
        if len(ref) > 1:
            reference.append(ref)

    doc = {"meta": meta, "guest": info, "status": done, "errors": errors,
           "ops": table, "flat": flat, "memory": memory, "fill": fill,
           "reference": reference, "series": series}
    with open(f"{out}/bench.json", "w") as f:
        json.dump(doc, f, indent=1)
    write_csv(f"{out}/bench.csv", table, flat, memory)
    text = render_text(doc)
    print(text)
    with open(f"{out}/bench.rst", "w") as f:
        f.write(render_rst(doc))
    plot(doc, f"{out}/bench.png")
    if errors or done != 0:
        print(f"report: the module reported {errors} wrong results, status {done}", file=sys.stderr)
        sys.exit(1)


def write_csv(path, table, flat, memory):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["live", "test", "role", "unit", "c_median", "c_min", "c_max",
                    "rust_median", "rust_min", "rust_max", "reps", "ratio_rust_c",
                    "ratio_min", "ratio_max", "target", "met"])
        for t in table:
            w.writerow([t["live"], t["test"], t["role"], t["unit"],
                        f'{t["c"]["median"]:.1f}', f'{t["c"]["min"]:.1f}', f'{t["c"]["max"]:.1f}',
                        f'{t["rust"]["median"]:.1f}', f'{t["rust"]["min"]:.1f}',
                        f'{t["rust"]["max"]:.1f}', t["c"]["n"], f'{t["ratio"]:.4f}',
                        f'{t["ratio_min"]:.4f}', f'{t["ratio_max"]:.4f}',
                        t["target"] if t["target"] is not None else "", fmt_met(t["met"])])
        for m in memory:
            w.writerow([m["live"], "memory", "slab", "bytes/var",
                        f'{m["c_slab_per_var"]:.1f}', "", "", f'{m["rust_slab_per_var"]:.1f}',
                        "", "", 1, "" if m["ratio"] is None else f'{m["ratio"]:.4f}', "", "",
                        m["target"], fmt_met(m["met"])])
        for fl in flat:
            w.writerow([fl["live_hi"], fl["test"] + "_flat", "rust", f"ours@{fl['live_hi']}/ours@{fl['live_lo']}",
                        "", "", "", "", "", "", "", f'{fl["ratio"]:.4f}', "", "",
                        fl["target"], fmt_met(fl["met"])])


def fmt_met(m):
    return "" if m is None else ("met" if m else "MISSED")


def fmt_ratio(r):
    if r is None:
        return "-"
    return f"{r:.4f}" if r < 0.01 else f"{r:.3f}" if r < 1 else f"{r:.2f}"


def ops_rows(doc):
    for t in doc["ops"]:
        yield [fmt_live(t["live"]), t["label"],
               f'{fmt_ns(t["c"]["median"])} ({fmt_ns(t["c"]["min"])}..{fmt_ns(t["c"]["max"])})',
               f'{fmt_ns(t["rust"]["median"])} ({fmt_ns(t["rust"]["min"])}..{fmt_ns(t["rust"]["max"])})',
               f'{fmt_ratio(t["ratio"])} ({fmt_ratio(t["ratio_min"])}..{fmt_ratio(t["ratio_max"])})',
               "" if t["target"] is None else f'<= {t["target"]}', fmt_met(t["met"])]


def mem_rows(doc):
    for m in doc["memory"]:
        yield [fmt_live(m["live"]), f'{m["c_slab_per_var"]:.0f}', f'{m["c_model_per_var"]:.0f}',
               f'{m["rust_slab_per_var"]:.0f}', f'{m["c_pages_per_var"]:.0f}',
               f'{m["rust_pages_per_var"]:.0f}',
               fmt_ratio(m["ratio"]) if m["resolved"] else "(below resolution)",
               "<= 1.0", fmt_met(m["met"])]


OPS_HDR = ["live", "operation", "C klp_shadow (min..max)", "ours (min..max)",
           "ours/C (min..max)", "target", ""]
MEM_HDR = ["live", "C slab B/var", "C kzalloc B/var", "ours slab B/var", "C pages B/var",
           "ours pages B/var", "ours/C slab", "target", ""]


REF_HDR = ["live", "loop + call of an empty function", "loop + load from the parent object"]


def ref_rows(doc):
    def cell(r, k):
        s = r.get(k)
        return f'{fmt_ns(s["median"])} ({fmt_ns(s["min"])}..{fmt_ns(s["max"])})' if s else "-"
    for r in doc.get("reference", []):
        yield [fmt_live(r["live"]), cell(r, "ref_call"), cell(r, "ref_load")]


def text_table(hdr, rows):
    rows = [hdr] + [list(map(str, r)) for r in rows]
    w = [max(len(r[i]) for r in rows) for i in range(len(hdr))]
    lines = ["  ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * x for x in w))
    return "\n".join(lines)


def describe(doc):
    m, g = doc["meta"], doc["guest"]
    return (f'{m.get("flavour", "?")} kernel {g.get("kernel", "?")} (kasan={g.get("kasan")} '
            f'lockdep={g.get("lockdep")} kmemleak={g.get("kmemleak")}), {g.get("cpus")} vCPUs, '
            f'{m.get("accel", "?")} on {m.get("host_cpu", "?")} ({m.get("host_cores", "?")} cores, '
            f'load {m.get("load_before", "?")} before / {m.get("load_after", "?")} after), '
            f'{g.get("reps")} reps x {g.get("sample_ms")} ms, {m.get("date", "")}')


def render_text(doc):
    out = ["rust_klp_shadow vs klp_shadow: " + describe(doc), "",
           "ns per operation, median over repetitions (min..max); all-CPU rows: per CPU;",
           "ours/C: median of the per-repetition ratios (min..max)", "",
           text_table(OPS_HDR, ops_rows(doc)), ""]
    for fl in doc["flat"]:
        out.append(f'flat: ours {fl["test"]} at {fmt_live(fl["live_hi"])} / at {fmt_live(fl["live_lo"])}'
                   f' = {fl["ratio"]:.2f} (target <= 2) {fmt_met(fl["met"])}')
    out += ["", "memory per live variable (bytes; incremental: fixed tables not included)", "",
            text_table(MEM_HDR, mem_rows(doc)), ""]
    if doc.get("reference"):
        out += ["references: the benchmark's loop without a table (ns per iteration)", "",
                text_table(REF_HDR, ref_rows(doc)), ""]
    if "accel" in doc["meta"] and doc["meta"]["accel"] == "TCG":
        out.append("TCG (emulated CPU): absolute ns are not those of hardware; only the ratios mean anything.")
    return "\n".join(out)


def rst_table(hdr, rows):
    rows = [hdr] + [list(map(str, r)) for r in rows]
    w = [max(len(r[i]) for r in rows) for i in range(len(hdr))]
    sep = "  ".join("=" * x for x in w)
    lines = [sep, "  ".join(c.ljust(w[i]) for i, c in enumerate(rows[0])).rstrip(), sep]
    lines += ["  ".join((c or "..").ljust(w[i]) for i, c in enumerate(r)).rstrip() for r in rows[1:]]
    lines.append(sep)
    return "\n".join(lines)


def render_rst(doc):
    out = [describe(doc), "", rst_table(OPS_HDR, ops_rows(doc)), ""]
    for fl in doc["flat"]:
        out.append(f'- flat: ours {fl["test"]} at {fmt_live(fl["live_hi"])} / at '
                   f'{fmt_live(fl["live_lo"])} = {fl["ratio"]:.2f} (target <= 2) {fmt_met(fl["met"])}')
    out += ["", rst_table(MEM_HDR, mem_rows(doc)), ""]
    if doc.get("reference"):
        out += [rst_table(REF_HDR, ref_rows(doc)), ""]
    return "\n".join(out)


def plot(doc, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("one CPU", [("get_hit", "read"), ("get_miss", "miss"), ("alloc_free", "write"),
                     ("get_or_alloc", "getalloc")]),
        ("all CPUs at once (per CPU)", [("cpus_read", "read"), ("cpus_write", "write"),
                                        ("cpus_mixed", "read"), ("cpus_mixed", "write")]),
    ]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, axes = plt.subplots(1, 3, figsize=(18, 6))
    idx = {(s["test"], s["role"], s["impl"]): [] for s in doc["series"]}
    for s in doc["series"]:
        idx[(s["test"], s["role"], s["impl"])].append(s)
    for ax, (title, keys) in zip(axes, panels):
        for i, (test, role) in enumerate(keys):
            for impl, style, marker, name in (("c", "--", "o", "C klp_shadow"),
                                              ("rust", "-", "s", "ours")):
                pts = sorted(idx.get((test, role, impl), []), key=lambda s: s["live"])
                if not pts:
                    continue
                x = [p["live"] for p in pts]
                y = [p["median"] for p in pts]
                err = [[p["median"] - p["min"] for p in pts], [p["max"] - p["median"] for p in pts]]
                ax.errorbar(x, y, yerr=err, linestyle=style, marker=marker, capsize=3,
                            color=colors[i % len(colors)],
                            label=f"{LABEL[(test, role)]}: {name}")
        ref = [(r["live"], r["ref_load"]["median"]) for r in doc.get("reference", [])
               if "ref_load" in r]
        if ref and title == "one CPU":
            ax.plot([x for x, _ in ref], [y for _, y in ref], ":", color="gray", marker=".",
                    label="reference: one load from the parent object")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("live shadow variables")
        ax.set_ylabel("ns per operation (median, min..max)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    ax = axes[2]
    for i, (test, role) in enumerate([k for _, ks in panels for k in ks]):
        pts = sorted((t for t in doc["ops"] if (t["test"], t["role"]) == (test, role)),
                     key=lambda t: t["live"])
        if pts:
            x = [t["live"] for t in pts]
            ax.errorbar(x, [t["ratio"] for t in pts],
                        yerr=[[t["ratio"] - t["ratio_min"] for t in pts],
                              [t["ratio_max"] - t["ratio"] for t in pts]],
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
    fig.suptitle("rust_klp_shadow vs klp_shadow: " + describe(doc), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
