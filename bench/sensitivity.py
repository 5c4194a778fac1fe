#!/usr/bin/env python3
"""Judge step of bench/sensitivity.sh: forms runs inside the captured batches, puts every run
through `gate diff` (default policy), and prints one table beside the naive rule.

Standard library only. Reads $SENS_DATA/batch-NN/ (see sensitivity.sh), writes
$SENS_DATA/summary.json. Re-running it only re-runs the diffs (at most two at a time: the
machine has two cores), so it can follow every change of the statistics.

The naive rule is what teams script around `go tool pprof -diff_base`: all pods of a side summed,
fail when any function at >= 0.5% share (flat or cum, on either side) grows by more than 20% in
share (candidate_share / baseline_share > 1.2; a function absent from the baseline counts as
growth). The table's column uses the CPU profile only (sample type `cpu`); summary.json also
has it over the main sample type of every profile (`naive_all`).
"""

import argparse
import concurrent.futures
import gzip
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

PLANTED = "main.computeChecksum"
CPU_HZ = 100  # Go's CPU profiler samples at 100 Hz
# The main sample type of each profile (what `go tool pprof` shows by default).
MAIN_SAMPLE_TYPE = {"cpu": "cpu", "heap": "inuse_space", "allocs": "alloc_space",
                    "goroutine": "goroutine", "mutex": "delay", "block": "delay"}
NAIVE_MIN_SHARE = 0.005
NAIVE_GROWTH = 1.2


# ---------------------------------------------------------------------------------------------
# Runs formed inside one batch. Pods are taken by role, in order (stable-1, stable-2, ...).
# A/A, one pod a side: 3 disjoint pairs; three pods a side: 3 different splits of the six.
AA_PAIRS = [(0, 1), (2, 3), (4, 5)]
AA_SPLITS = [((0, 1, 2), (3, 4, 5)), ((0, 2, 4), (1, 3, 5)), ((0, 3, 4), (1, 2, 5))]
SCENARIO = {"aa": "A/A", "b15": "1.5x", "b2": "2x"}
CANDIDATE_ROLE = {"b15": "c15", "b2": "c2"}


def runs_of(batch):
    """(scenario, pods a side, baseline pods, candidate pods, label) for one batch."""
    kind = batch["kind"]
    stable = [p["name"] for p in batch["pods"] if p["role"] == "stable"]
    if kind == "aa":
        out = [("A/A", 1, [stable[a]], [stable[b]], f"pair {a + 1}v{b + 1}") for a, b in AA_PAIRS]
        out += [("A/A", 3, [stable[i] for i in a], [stable[i] for i in b],
                 "split " + "".join(str(i + 1) for i in a) + "v" + "".join(str(i + 1) for i in b))
                for a, b in AA_SPLITS]
        return out
    canary = [p["name"] for p in batch["pods"] if p["role"] == CANDIDATE_ROLE[kind]]
    out = [(SCENARIO[kind], 1, [s], [c], f"pair {i + 1}") for i, (s, c) in enumerate(zip(stable, canary))]
    out.append((SCENARIO[kind], 3, stable, canary, "3v3"))
    return out


# What issue 16 asks, per (scenario, pods a side): ("caught", fraction) or ("aa", None).
TARGETS = {("2x", 1): ("caught", 0.9), ("1.5x", 1): ("caught", 0.8), ("1.5x", 3): ("caught", 0.9),
           ("A/A", 1): ("aa", None), ("A/A", 3): ("aa", None)}
ROWS = [("A/A", 1), ("A/A", 3), ("2x", 1), ("2x", 3), ("1.5x", 1), ("1.5x", 3)]


# ---------------------------------------------------------------------------------------------
# A minimal pprof (protobuf) reader: the total of each sample type of a profile, to see how much
# CPU each pod got in each window (a starved process shows far fewer samples than planned).
def _varint(b, i):
    x = shift = 0
    while True:
        c = b[i]
        i += 1
        x |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return x, i


def _fields(b):
    i = 0
    while i < len(b):
        key, i = _varint(b, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(b, i)
        elif wire == 2:
            n, i = _varint(b, i)
            value, i = b[i:i + n], i + n
        elif wire == 1:
            value, i = b[i:i + 8], i + 8
        elif wire == 5:
            value, i = b[i:i + 4], i + 4
        else:
            raise ValueError(f"protobuf wire type {wire}")
        yield field, wire, value


def profile_totals(path):
    """{sample type name: total} of a .pb.gz profile (Profile: 1 sample_type, 2 sample,
    6 string_table; Sample: 2 value, packed or not)."""
    with gzip.open(path) as f:
        data = f.read()
    types, strings, samples = [], [], []
    for field, _, value in _fields(data):
        if field == 1:
            types.append(dict((f, v) for f, _, v in _fields(value)).get(1, 0))
        elif field == 2:
            samples.append(value)
        elif field == 6:
            strings.append(value.decode("utf-8", "replace"))
    totals = [0] * len(types)
    for sample in samples:
        k = 0
        for field, wire, value in _fields(sample):
            if field != 2:
                continue
            if wire == 2:
                j = 0
                while j < len(value):
                    x, j = _varint(value, j)
                    totals[k] += x
                    k += 1
            else:
                totals[k] += value
                k += 1
    return {strings[t]: v for t, v in zip(types, totals)}


def cpu_samples_per_window(batch_dir, batch):
    """{pod: [CPU samples in window 1, 2, ...]} from the captured cpu-W.pb.gz files."""
    out = {}
    for pod in batch["pods"]:
        d = os.path.join(batch_dir, "capture", "profiles", "baseline", pod["name"])
        out[pod["name"]] = [profile_totals(os.path.join(d, f"cpu-{w}.pb.gz")).get("samples", 0)
                            for w in range(1, batch["windows"] + 1)]
    return out


# ---------------------------------------------------------------------------------------------
def naive_fails(report, kinds):
    """The naive rule on report.json's per-function shares; returns the functions that trip it
    as "profile:function (flat|cum) b% -> c%"."""
    hits = []
    for comp in report.get("comparisons", []):
        kind = comp.get("kind")
        if kind not in kinds:
            continue
        for st in comp.get("sample_types", []):
            if st["sample_type"]["name"] != MAIN_SAMPLE_TYPE.get(kind):
                continue
            for fn in st.get("functions", []):
                for metric in ("flat", "cum"):
                    d = fn.get(metric) or {}
                    b, c = d.get("baseline_share") or 0.0, d.get("candidate_share") or 0.0
                    if max(b, c) >= NAIVE_MIN_SHARE and (c > NAIVE_GROWTH * b):
                        hits.append(f"{kind}:{fn['name']} ({metric}) {100 * b:.2f}% -> {100 * c:.2f}%")
    return hits


def cpu_noise(report):
    """The noise facts of the CPU profile's `cpu` sample type."""
    for comp in report.get("comparisons", []):
        if comp.get("kind") != "cpu":
            continue
        for st in comp.get("sample_types", []):
            if st["sample_type"]["name"] == "cpu":
                return st.get("noise") or {}
    return {}


def planted_raw_ratio(report):
    """Per-pod cumulative CPU of the planted function, candidate over baseline, before the gate's
    normalization: what a plain per-pod comparison of the profiles shows."""
    for comp in report.get("comparisons", []):
        if comp.get("kind") != "cpu":
            continue
        for st in comp.get("sample_types", []):
            if st["sample_type"]["name"] != "cpu":
                continue
            for fn in st.get("functions", []):
                if fn["name"] == PLANTED:
                    b, c = fn["cum"].get("baseline_per_pod"), fn["cum"].get("candidate_per_pod")
                    return c / b if b else None
    return None


def planted_finding(report):
    """The cpu-cumulative finding on the planted function, if the rule tested it."""
    for rule in report["verdict"]["rules"]:
        for f in rule.get("findings", []):
            if f["function"] == PLANTED and rule["rule"] == "cpu-cumulative":
                est = (f.get("delta") or {}).get("estimate") or {}
                ans = f.get("answer") or {}
                return {"ratio": est.get("ratio"), "lower": ans.get("lower"),
                        "upper": ans.get("upper"), "status": ans.get("status")}
    return None


def judge_run(gate, data, work, run):
    """One `gate diff` (default policy) of a run; returns what it showed."""
    batch_dir = os.path.join(data, run["batch"])
    rdir = tempfile.mkdtemp(dir=work, prefix=f"{run['batch']}-")
    # Each side: a directory of pod folders (symlinks to the captured ones), as gate diff reads.
    for side, pods in (("baseline", run["baseline"]), ("candidate", run["candidate"])):
        os.makedirs(os.path.join(rdir, side))
        for pod in pods:
            os.symlink(os.path.join(batch_dir, "capture", "profiles", "baseline", pod),
                       os.path.join(rdir, side, pod))
    out = os.path.join(rdir, "out")
    cmd = [gate, "diff", os.path.join(rdir, "baseline"), os.path.join(rdir, "candidate"),
           "--format", "json", "--out", out, "--no-github", "--quiet"]
    t0 = time.monotonic()
    for attempt in range(2):  # once more if the binary was being replaced by a rebuild
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=600)
            break
        except OSError:
            if attempt:
                raise
            time.sleep(5)
    result = dict(run, exit=proc.returncode, seconds=round(time.monotonic() - t0, 1))
    try:
        with open(os.path.join(out, "report.json")) as f:
            report = json.load(f)
        with open(os.path.join(out, "report.txt")) as f:
            text = f.read().splitlines()
        first_lines = text[:3]
    except (OSError, ValueError):
        result.update(outcome="error", error=proc.stderr.decode("utf-8", "replace")[-500:])
        return result
    verdict = report["verdict"]
    # A rule on a total has findings without a function: "total".
    regressed = sorted({(r["rule"], f.get("function") or "total") for r in verdict["rules"]
                        for f in r.get("findings", []) if (f.get("answer") or {}).get("status") == "regressed"})
    noise = cpu_noise(report)
    naive_cpu = naive_fails(report, {"cpu"})
    naive_all = naive_fails(report, set(MAIN_SAMPLE_TYPE))
    result.update(
        outcome=verdict["outcome"], summary=verdict["summary"],
        first_lines=first_lines,
        broken_rules=[r["rule"] for r in verdict["rules"] if r["status"] == "broken"],
        regressed=[{"rule": r, "function": f} for r, f in regressed],
        planted_regressed=any(f == PLANTED for _, f in regressed),
        named_first=any(PLANTED in line for line in first_lines),
        # Also: named on a broken rule's line of the text report's "Rules:" block.
        named_rules=any(PLANTED in line and "[BROKEN]" in line for line in text),
        planted_cum=planted_finding(report), planted_raw_ratio=planted_raw_ratio(report),
        naive_fail=bool(naive_cpu), naive_cpu=naive_cpu[:10],
        naive_all_fail=bool(naive_all), naive_all=naive_all[:10],
        dispersion=noise.get("dispersion"), noise_model=noise.get("model"))
    return result


def seconds(duration):
    """60s, 2m, 1m30s, 1h -> seconds."""
    return sum(int(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in re.findall(r"(\d+)([hms])", duration))


def read_batch(meta):
    """batch.json as capture writes it. Also reads the first draft's form (roles as a list, pods
    p1..p6, load averages as strings, no per-pod CPU), so batches captured by it still count."""
    if "pods" not in meta:
        meta = dict(meta, pods=[{"name": f"p{i}", "role": r, "cpu_cores": None}
                                for i, r in enumerate(meta["roles"], 1)],
                    loadavg_before=[float(x) for x in meta["load_before"].split()[:3]],
                    loadavg_after=[float(x) for x in meta["load_after"].split()[:3]],
                    nproc=meta["cores"], duration=meta.get("duration", "60s"),
                    windows=meta.get("windows", 6))
        meta.setdefault("capture_wall_seconds", None)
    return meta


# ---------------------------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gate", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    gate = os.path.abspath(args.gate)
    jobs = max(1, min(2, args.jobs))

    # Complete batches only (batch.json is written last by capture).
    batches = []
    for name in sorted(os.listdir(args.data)):
        path = os.path.join(args.data, name, "batch.json")
        if re.fullmatch(r"batch-\d+(-[a-z0-9]+)?", name) and os.path.isfile(path):
            with open(path) as f:
                batches.append(dict(read_batch(json.load(f)), name=name))
    if not batches:
        sys.exit(f"sensitivity: no complete batch in {args.data}; run `bench/sensitivity.sh capture`")

    # CPU samples per pod and window, against what the planned load gives.
    starved = []
    for b in batches:
        b["cpu_samples"] = cpu_samples_per_window(os.path.join(args.data, b["name"]), b)
        # Planned: load x 100 Hz x the window's length.
        window_s = seconds(b["duration"]) / b["windows"]
        b["expected_samples"] = round(b["load_per_process"] * CPU_HZ * window_s)
        for pod, counts in b["cpu_samples"].items():
            for w, n in enumerate(counts, 1):
                if n < 0.5 * b["expected_samples"]:
                    starved.append(f"{b['name']} {pod} window {w}: {n} samples")

    runs = [{"batch": b["name"], "kind": b["kind"], "scenario": s, "pods": k,
             "baseline": base, "candidate": cand, "label": label}
            for b in batches for s, k, base, cand, label in runs_of(b)]
    print(f"sensitivity: {len(runs)} runs from {len(batches)} batches through `{args.gate} diff`, "
          f"{jobs} at a time", file=sys.stderr)
    results = []
    with tempfile.TemporaryDirectory(prefix="sens-judge-") as work, \
            concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(judge_run, gate, args.data, work, r) for r in runs]
        for i, fut in enumerate(futures, 1):
            results.append(fut.result())
            if i % 10 == 0 or i == len(futures):
                print(f"sensitivity: judged {i}/{len(futures)}", file=sys.stderr)

    # --- the table --------------------------------------------------------------------------
    def frac(n, d):
        return f"{n}/{d} {100.0 * n / d:3.0f}%" if d else "-"

    rows, all_ok = [], True
    for scenario, pods in ROWS:
        v = [r for r in results if r["scenario"] == scenario and r["pods"] == pods]
        if not v:
            continue
        n = len(v)
        count = lambda pred: sum(1 for r in v if pred(r))  # noqa: E731
        row = {
            "scenario": scenario, "pods": pods, "runs": n,
            "batches": len({r["batch"] for r in v}),
            "caught": count(lambda r: r["outcome"] == "fail" and r["planted_regressed"]),
            "fail": count(lambda r: r["outcome"] == "fail"),
            "inconclusive": count(lambda r: r["outcome"] == "inconclusive"),
            "pass": count(lambda r: r["outcome"] in ("pass", "warn")),
            "warn": count(lambda r: r["outcome"] == "warn"),
            "error": count(lambda r: r["outcome"] == "error" or r["exit"] not in (0, 1)),
            "named_first": count(lambda r: r.get("named_first")),
            "named_rules": count(lambda r: r.get("named_rules")),
            "naive_fail": count(lambda r: r.get("naive_fail")),
            "naive_all_fail": count(lambda r: r.get("naive_all_fail")),
        }
        kind, need = TARGETS.get((scenario, pods), (None, None))
        if kind == "aa":
            row["target"] = "0 fail, <= 10% inconclusive"
            row["ok"] = row["fail"] == 0 and row["inconclusive"] <= 0.1 * n and row["error"] == 0
        elif kind == "caught":
            row["target"] = f"caught >= {100 * need:.0f}%, named"
            row["ok"] = row["caught"] >= need * n and row["named_first"] >= row["caught"]
        else:
            row["target"], row["ok"] = "-", None
        if row["ok"] is not None:
            all_ok &= row["ok"]
        rows.append(row)

    loads1 = [x for b in batches for x in (b["loadavg_before"][0], b["loadavg_after"][0])]
    loads5 = [x for b in batches for x in (b["loadavg_before"][1], b["loadavg_after"][1])]
    cores = [p["cpu_cores"] for b in batches for p in b["pods"] if p.get("cpu_cores") is not None]
    nprocs = sorted({b["nproc"] for b in batches})
    first = batches[0]
    print()
    kinds = ", ".join(f"{sum(b['kind'] == k for b in batches)} {k}" for k in ("aa", "b15", "b2"))
    print(f"Real captures of the example service: {len(batches)} batches ({kinds}) "
          f"of 6 processes captured together, {first['duration']} in {first['windows']} windows; "
          f"`gate diff`, default policy.")
    print(f"Machine: {'/'.join(map(str, nprocs))} cores; load average over the batches "
          f"1-min {min(loads1):.2f}-{max(loads1):.2f}, 5-min {min(loads5):.2f}-{max(loads5):.2f}; "
          f"each process planned at {first['load_per_process']} core, got "
          + (f"{min(cores):.3f}-{max(cores):.3f} (median {statistics.median(cores):.3f})."
             if cores else "(not measured by this capture; see the CPU samples below)."))
    print("caught = fail with main.computeChecksum regressed; named = in the text report's first 3 "
          "lines; naive = any CPU function >= 0.5% share grows > 20% in share (flat or cum), pods "
          "summed. A/A three pods a side: 3 different 3-vs-3 splits of each aa batch.")
    print()
    head = ["scenario", "pods", "runs", "caught", "fail total", "inconclusive", "pass",
            "named first lines", "naive fail", "target", "ok"]
    table = []
    for row in rows:
        aa = row["scenario"] == "A/A"
        runs_note = f"{row['runs']} ({row['batches']}x{row['runs'] // max(row['batches'], 1)})"
        table.append([row["scenario"], str(row["pods"]), runs_note,
                      "-" if aa else frac(row["caught"], row["runs"]),
                      frac(row["fail"], row["runs"]), frac(row["inconclusive"], row["runs"]),
                      frac(row["pass"], row["runs"]),
                      "-" if aa else frac(row["named_first"], row["runs"]),
                      frac(row["naive_fail"], row["runs"]), row["target"],
                      {True: "yes", False: "NO", None: "-"}[row["ok"]]])
    widths = [max(len(r[i]) for r in table + [head]) for i in range(len(head))]
    line = lambda cells: " | ".join(c.ljust(w) for c, w in zip(cells, widths))  # noqa: E731
    print(line(head))
    print("-+-".join("-" * w for w in widths))
    for r in table:
        print(line(r))
    print()
    def v_of(row):
        return [r for r in results if r["scenario"] == row["scenario"] and r["pods"] == row["pods"]]

    for row in rows:
        if row["scenario"] != "A/A":
            print(f"{row['scenario']} {row['pods']} pod(s): {PLANTED} on a [BROKEN] rule line of the "
                  f"text report in {row['named_rules']}/{row['runs']} runs (the first 3 lines: "
                  f"{row['named_first']})")
            est = [r["planted_cum"]["ratio"] for r in v_of(row) if (r.get("planted_cum") or {}).get("ratio")]
            raw = [r["planted_raw_ratio"] for r in v_of(row) if r.get("planted_raw_ratio")]
            if est and raw:
                print(f"    {PLANTED} cum, median over the runs: per pod x{statistics.median(raw):.2f} "
                      f"raw, x{statistics.median(est):.2f} as the gate estimates it")
            broken = {}
            for r in v_of(row):
                if r["outcome"] == "fail":
                    key = "+".join(r["broken_rules"])
                    broken[key] = broken.get(key, 0) + 1
            if broken:
                print("    fails by broken rules: " + ", ".join(f"{k} x{n}" for k, n in sorted(broken.items())))
        if row["warn"] or row["error"]:
            print(f"{row['scenario']} {row['pods']} pod(s): {row['warn']} warn (counted as pass), "
                  f"{row['error']} errors (exit other than 0 or 1)")

    # Noise the gate reported, A/A runs: the CPU sample type's dispersion.
    noise = {}
    for pods in (1, 3):
        d = [r["dispersion"] for r in results
             if r["scenario"] == "A/A" and r["pods"] == pods and r.get("dispersion") is not None]
        if d:
            noise[pods] = {"mean": statistics.mean(d), "median": statistics.median(d), "max": max(d),
                           "runs": len(d)}
            print(f"A/A {pods} pod(s) a side: reported cpu dispersion mean {statistics.mean(d):.4f}, "
                  f"median {statistics.median(d):.4f}, max {max(d):.4f} ({len(d)} runs)")

    # False findings in A/A, by function.
    false = {}
    for r in results:
        if r["scenario"] == "A/A":
            for f in r.get("regressed", []):
                key = f"{f['function']} ({f['rule']})"
                false[key] = false.get(key, 0) + 1
    print("A/A regressed findings (false), by function and rule: " + (", ".join(
        f"{k} x{v}" for k, v in sorted(false.items(), key=lambda kv: -kv[1])) or "none"))
    for r in results:
        if r["scenario"] == "A/A" and r["outcome"] not in ("pass", "warn"):
            print(f"  A/A {r['pods']}p {r['batch']} {r['label']}: {r['outcome']}: {r['summary'][:160]}")
    for r in results:
        if r["scenario"] != "A/A" and not (r["outcome"] == "fail" and r["planted_regressed"]):
            pc = r.get("planted_cum") or {}
            est = (f"cum x{pc['ratio']:.2f} [{pc['lower']:.2f}, {pc['upper']:.2f}] {pc['status']}"
                   if pc.get("ratio") and pc.get("lower") is not None else "no cum finding")
            print(f"  missed: {r['scenario']} {r['pods']}p {r['batch']} {r['label']}: "
                  f"{r['outcome']}; {PLANTED} {est}")

    # CPU the pods got, per batch: samples per pod-window against the plan.
    print("\nCPU samples per pod per window (planned ~%d):" % first["expected_samples"])
    for b in batches:
        counts = [n for c in b["cpu_samples"].values() for n in c]
        print(f"  {b['name']:<12} load {b['loadavg_before'][0]:5.2f} -> "
              f"{b['loadavg_after'][0]:5.2f}  samples min {min(counts)} median "
              f"{statistics.median(counts):.0f} max {max(counts)}  cores/pod "
              + " ".join("?" if p.get("cpu_cores") is None else f"{p['cpu_cores']:.2f}"
                         for p in b["pods"]))
    if starved:
        print(f"starved pod-windows (< half the planned samples): {len(starved)}")
        for s in starved[:20]:
            print("  " + s)
    else:
        print("no starved pod-window (all >= half the planned samples)")
    print("\nall targets met" if all_ok else "\nSOME TARGETS MISSED")

    summary = {
        "gate": args.gate, "gate_version": subprocess.run([gate, "--version"], capture_output=True,
                                                         text=True).stdout.strip(),
        "naive_rule": {"min_share": NAIVE_MIN_SHARE, "growth": NAIVE_GROWTH,
                       "naive_fail": "cpu profile, sample type cpu",
                       "naive_all_fail": "main sample type of every profile",
                       "sample_types": MAIN_SAMPLE_TYPE},
        "machine": {"nproc": nprocs, "loadavg_1min": [min(loads1), max(loads1)],
                    "loadavg_5min": [min(loads5), max(loads5)],
                    "cores_per_process": [min(cores), statistics.median(cores), max(cores)] if cores else None},
        "rows": rows, "all_ok": all_ok, "aa_cpu_dispersion": noise,
        "starved_pod_windows": starved,
        "batches": [{k: b[k] for k in b} for b in batches],
        "runs": results,
    }
    with open(os.path.join(args.data, "summary.json.tmp"), "w") as f:
        json.dump(summary, f, indent=1)
    os.replace(os.path.join(args.data, "summary.json.tmp"), os.path.join(args.data, "summary.json"))
    print(f"summary: {os.path.join(args.data, 'summary.json')}")


if __name__ == "__main__":
    main()
