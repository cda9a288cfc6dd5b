#!/usr/bin/env python3
"""The two LibTorch flavours against each other, on this CPU, in one run.

    /usr/bin/python3 bench/flavours.py OUT_DIR [--m30k ../shared/data/multi30k] [--repeat 3]

Needs both builds: build/ (Debian's LibTorch 1.13.1, OpenBLAS) and
build-pip/ (LibTorch 2.x from the package index, MKL); scripts/build.sh and
scripts/build.sh --torch pip make them. Measures, for each flavour, with the
same data, configs and thread count (2, each app's default BLAS setup):
  demo training     configs/demo.json on the dates corpus: target tokens/s
  small training    configs/small.json on Multi30k de->en: target tokens/s
  translation       the demo model (trained once, by the Debian build) on the
                    demo's test split, greedy and beam 4: sentences/s
Training figures are the median of the per-log-interval rates after the
first interval (warm-up), validation BLEU off; translation figures the
median of --repeat runs, as each run's own loop reports them (model
loading excluded), the two flavours alternating run by run so that a
machine slowing down mid-run touches both. Writes OUT_DIR/flavours.json and a markdown table on stdout.
"""
import argparse
import datetime
import json
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAVOURS = {"debian": os.path.join(ROOT, "build", "bin"), "pip": os.path.join(ROOT, "build-pip", "bin")}


def run(cmd, log=None):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"flavours.py: {' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    if log:
        with open(log, "w") as f:
            f.write(p.stdout + p.stderr)
    return p


def train_rate(flavour, save_dir, config, data, steps, log_every):
    cmd = [os.path.join(FLAVOURS[flavour], "aiayn-train"), "--config", config, "--save-dir", save_dir,
           "--set", f"data.train_src={data[0]}", "--set", f"data.train_tgt={data[1]}",
           "--set", f"data.valid_src={data[2]}", "--set", f"data.valid_tgt={data[3]}",
           "--set", f"train.max_steps={steps}", "--set", f"train.log_every={log_every}",
           "--set", f"train.valid_every={steps}", "--set", "train.valid_bleu=false", "--threads", "2"]
    run(cmd, save_dir + ".log")
    rates = []
    with open(os.path.join(save_dir, "metrics.jsonl")) as f:
        for line in f:
            j = json.loads(line)
            if j.get("kind") == "train":
                rates.append(j["tgt_tok_s"])
    if len(rates) < 2:
        sys.exit(f"flavours.py: {save_dir}: fewer than two logged intervals")
    return rates[1:]


def translate_rate(flavour, checkpoint, src, beam, out_dir):
    # A file of our own: aiayn-translate writes beside its output and renames.
    hyp = os.path.join(out_dir, f"hyp-{flavour}-beam{beam}.txt")
    cmd = [os.path.join(FLAVOURS[flavour], "aiayn-translate"), "--checkpoint", checkpoint, "--threads", "2",
           "--input", src, "--output", hyp] + (["--greedy"] if beam == 1 else ["--beam", str(beam)])
    err = run(cmd).stderr
    m = re.search(r"translated (\d+) sentences \((\d+) tokens\) in ([0-9.e+-]+) s", err)
    if not m:
        sys.exit(f"flavours.py: no timing line from {' '.join(cmd)}:\n{err}")
    return int(m.group(1)) / float(m.group(3))


def version_of(flavour):
    return run([os.path.join(FLAVOURS[flavour], "aiayn-translate"), "--version"]).stdout.strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--m30k", default=os.path.join(ROOT, "..", "shared", "data", "multi30k"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--demo-steps", type=int, default=1200, help="the translation model's updates")
    ap.add_argument("--train-steps", type=int, default=150, help="updates timed per flavour (demo)")
    ap.add_argument("--small-steps", type=int, default=40, help="updates timed per flavour (small)")
    args = ap.parse_args()
    for flavour, bin_dir in FLAVOURS.items():
        if not os.access(os.path.join(bin_dir, "aiayn-train"), os.X_OK):
            sys.exit(f"flavours.py: {bin_dir}/aiayn-train missing: bash scripts/build.sh"
                     + (" --torch pip" if flavour == "pip" else ""))
    for name in ("train.de", "train.en", "val.de", "val.en"):
        if not os.path.exists(os.path.join(args.m30k, name)):
            sys.exit(f"flavours.py: {os.path.join(args.m30k, name)} missing (--m30k names Multi30k's folder)")
    os.makedirs(args.out, exist_ok=True)
    out = os.path.abspath(args.out)
    data_dir = os.path.join(out, "dates")
    if not os.path.exists(os.path.join(data_dir, "test.src")):
        run([os.path.join(FLAVOURS["debian"], "aiayn-dates"), "--out", data_dir,
             "--train", "40000", "--valid", "500", "--test", "1000"])
    dates = [os.path.join(data_dir, n) for n in ("train.src", "train.tgt", "valid.src", "valid.tgt")]
    m30k = [os.path.join(args.m30k, n) for n in ("train.de", "train.en", "val.de", "val.en")]
    demo_cfg = os.path.join(ROOT, "configs", "demo.json")
    small_cfg = os.path.join(ROOT, "configs", "small.json")

    results = {"date": datetime.date.today().isoformat(),
               "commit": subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                                        capture_output=True, text=True).stdout.strip(),
               "dirty": bool(subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                                            capture_output=True, text=True).stdout.strip()),
               "versions": {f: version_of(f) for f in FLAVOURS}, "jobs": {}}
    print("flavours.py:", results["date"], "commit", results["commit"], file=sys.stderr)

    # The translation model, once (Debian build); both flavours load it.
    model_dir = os.path.join(out, "demo-model")
    if not os.path.exists(os.path.join(model_dir, "last")):
        print(f"training the demo model ({args.demo_steps} updates)", file=sys.stderr)
        train_rate("debian", model_dir, demo_cfg, dates, args.demo_steps, 100)
    checkpoint = os.path.join(model_dir, "last")

    jobs = {}
    for job, cfg, data, steps, every in [("demo training, tgt tok/s", demo_cfg, dates, args.train_steps, 25),
                                         ("small training, tgt tok/s", small_cfg, m30k, args.small_steps, 8)]:
        jobs[job] = {}
        for flavour in FLAVOURS:
            print(f"{job}: {flavour}", file=sys.stderr)
            save = os.path.join(out, f"{job.split(',')[0].replace(' ', '-')}-{flavour}")
            subprocess.run(["rm", "-rf", save])
            jobs[job][flavour] = train_rate(flavour, save, cfg, data, steps, every)
    for beam, name in [(1, "translation greedy, sent/s"), (4, "translation beam 4, sent/s")]:
        jobs[name] = {f: [] for f in FLAVOURS}
        for i in range(args.repeat):
            for flavour in FLAVOURS:
                print(f"{name}: {flavour} run {i + 1}", file=sys.stderr)
                jobs[name][flavour].append(translate_rate(flavour, checkpoint, os.path.join(data_dir, "test.src"), beam, out))
    results["jobs"] = jobs
    with open(os.path.join(out, "flavours.json"), "w") as f:
        json.dump(results, f, indent=1)

    cpu = [l for l in results["versions"]["debian"].splitlines() if l.startswith("CPU: ")]
    print(f"{results['date']}, commit {results['commit']}{' (modified)' if results['dirty'] else ''}, "
          f"{cpu[0][5:] if cpu else 'CPU unknown'}")
    for f in FLAVOURS:
        lines = results["versions"][f].splitlines()
        print(f"- {f}: {lines[1]}; BLAS: {lines[2][6:] if len(lines) > 2 else '?'}")
    print()
    print("| job | debian (1.13.1) | pip (2.x) | pip / debian | faster |")
    print("| --- | ---: | ---: | ---: | --- |")
    for job, by in jobs.items():
        d, p = statistics.median(by["debian"]), statistics.median(by["pip"])
        print(f"| {job} | {d:.1f} | {p:.1f} | {p / d:.2f}× | {'pip' if p > d else 'debian'} |")


if __name__ == "__main__":
    main()
