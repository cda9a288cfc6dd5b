#!/usr/bin/env python3
"""Load on aiayn-translate --serve: N concurrent clients, each sending one
sentence per request for a bounded time, against the same server with
batching on and with it off (--serve-no-batching), alternated ROUNDS times in
one run. Every answer is checked against aiayn-translate's translation of the
same line with the same options: a failed request, or one that comes back
with another request's line, is counted and fails the run (exit 1).

The load comes from wrk (bench/serve_wrk.lua checks each answer; Debian's
wrk, a few percent of a core) when it is installed, else from Python threads
(--client python), which take a good share of a 2-core machine themselves.

Prints requests/s (= sentences/s: one sentence each), p50 and p99 latency per
mode (wrk: the median p50 and the largest p99 of the rounds), the ratio of
the two rates, and the date, CPU and commit.

    /usr/bin/python3 bench/serve.py --checkpoint runs/small-m30k -i ../shared/data/multi30k/val.en
"""
import argparse
import datetime
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cpu_name():
    info = open("/proc/cpuinfo").read()
    name = re.search(r"model name\s*: (.*)", info).group(1)
    family = re.search(r"cpu family\s*: (\d+)", info).group(1)
    model = re.search(r"\nmodel\s*: (\d+)", info).group(1)
    return f"{name} (family {family} model {model}), {os.cpu_count()} cores"


def start_server(binary, checkpoint, extra, log_path):
    log = open(log_path, "w")
    proc = subprocess.Popen([binary, "-c", checkpoint, "--serve", "127.0.0.1:0"] + extra,
                            stdout=subprocess.DEVNULL, stderr=log)
    for _ in range(1200):
        found = re.search(r"listening on http://127\.0\.0\.1:(\d+)", open(log_path).read())
        if found:
            return proc, int(found.group(1))
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    sys.exit(f"serve.py: the server did not start: {open(log_path).read()}")


def client(port, lines, expected, translated, beam, offset, stop_at, out):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    i = offset
    while time.monotonic() < stop_at:
        k = i % len(lines)
        i += 1
        body = json.dumps({"text": [lines[k]], "beam": beam})
        start = time.monotonic()
        try:
            conn.request("POST", "/v1/translate", body, {"Content-Type": "application/json"})
            res = conn.getresponse()
            answer = json.loads(res.read())
            took = time.monotonic() - start
            if res.status != 200:
                out["failed"] += 1
                continue
            out["latencies"].append(took)
            got = answer["translations"][0]["text"]
            if got != expected[k]:
                # Another line's translation is a mix-up; anything else, a
                # decoding difference (batch composition can move a near tie).
                out["mixed" if got in translated else "differs"] += 1
        except Exception:  # a dropped connection counts as a failure
            out["failed"] += 1
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)


def wrk_load(port, args, work, lines, expected, beam):
    """One wrk run; its summary as the Python clients' counters."""
    bodies, answers = os.path.join(work, "bodies.txt"), os.path.join(work, "answers.txt")
    with open(bodies, "w", encoding="utf-8") as b, open(answers, "w", encoding="utf-8") as a:
        for line, translation in zip(lines, expected):
            b.write(json.dumps({"text": [line], "beam": beam}, ensure_ascii=False) + "\n")
            # The server's exact answer (nlohmann::json's compact dump).
            a.write(json.dumps({"translations": [{"text": translation}]}, ensure_ascii=False,
                               separators=(",", ":")) + "\n")
    env = dict(os.environ, AIAYN_BODIES=bodies, AIAYN_ANSWERS=answers, AIAYN_CLIENTS=str(args.clients))
    run = subprocess.run(["wrk", "-t", str(args.clients), "-c", str(args.clients), "-d", f"{args.seconds:.0f}s",
                          "--timeout", "60s", "-s", os.path.join(ROOT, "bench", "serve_wrk.lua"),
                          f"http://127.0.0.1:{port}/v1/translate"],
                         capture_output=True, text=True, env=env, check=True)
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    return summary


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("-i", "--input", required=True, help="sentences to send, one per line")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--beam", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="the server's --threads (0: all cores)")
    ap.add_argument("--server-args", default="", help="more options for both servers, e.g. \"--serve-batch-wait 2000\"")
    ap.add_argument("--client", choices=["wrk", "python"],
                    default="wrk" if shutil.which("wrk") else "python")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    args = ap.parse_args()
    binary = os.path.join(args.bin, "aiayn-translate")
    lines = open(args.input, encoding="utf-8").read().split("\n")[:-1]
    work = tempfile.mkdtemp(prefix="serve-bench.")
    ref = subprocess.run([binary, "-c", args.checkpoint, "--beam", str(args.beam), "-i", args.input,
                          "--threads", str(args.threads)], capture_output=True, text=True, check=True)
    expected = ref.stdout.split("\n")[:-1]
    assert len(expected) == len(lines)
    translated = set(expected)  # an answer that is some line's translation, but not its own, is a mix-up
    modes = {"batching": [], "batch size 1": ["--serve-no-batching"]}
    results = {m: {"latencies": [], "failed": 0, "mixed": 0, "differs": 0, "seconds": 0.0, "requests": 0,
                   "p50": [], "p99": []} for m in modes}
    for r in range(args.rounds):
        for mode, extra in modes.items():
            print(f"round {r + 1}: {mode}, {args.clients} clients for {args.seconds:.0f} s", file=sys.stderr)
            proc, port = start_server(binary, args.checkpoint, extra + ["--threads", str(args.threads)] + args.server_args.split(),
                                      os.path.join(work, "server.log"))
            if args.client == "wrk":
                w = wrk_load(port, args, work, lines, expected, args.beam)
                results[mode]["seconds"] += w["seconds"]
                results[mode]["requests"] += w["requests"]
                results[mode]["p50"].append(w["p50_ms"] / 1000)
                results[mode]["p99"].append(w["p99_ms"] / 1000)
                results[mode]["failed"] += w["failed"] + w["socket_errors"]
                results[mode]["mixed"] += w["mixed"]
                results[mode]["differs"] += w["differs"]
            else:
                outs = [{"latencies": [], "failed": 0, "mixed": 0, "differs": 0} for _ in range(args.clients)]
                stop_at = time.monotonic() + args.seconds
                threads = [threading.Thread(target=client, args=(port, lines, expected, translated, args.beam,
                                                                  c * len(lines) // args.clients, stop_at,
                                                                  outs[c]))
                           for c in range(args.clients)]
                begin = time.monotonic()
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                results[mode]["seconds"] += time.monotonic() - begin
                for o in outs:
                    results[mode]["latencies"] += o["latencies"]
                    results[mode]["failed"] += o["failed"]
                    results[mode]["mixed"] += o["mixed"]
                    results[mode]["differs"] += o["differs"]
            proc.send_signal(signal.SIGTERM)
            if proc.wait(timeout=60) != 0:
                results[mode]["failed"] += 1
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    print(f"{datetime.date.today()}, {cpu_name()}, commit {commit}; {args.clients} clients, one sentence "
          f"each ({args.client} client), beam {args.beam}, {args.rounds} x {args.seconds:.0f} s per mode, "
          f"server --threads "
          f"{args.threads or os.cpu_count()} {args.server_args}".rstrip())
    print("| server | sentences/s | p50 latency ms | p99 latency ms | failed | mixed up | other decoding |")
    print("|---|---|---|---|---|---|---|")
    rate = {}
    for mode, res in results.items():
        if args.client == "wrk":
            rate[mode] = res["requests"] / res["seconds"]
            p50, p99 = statistics.median(res["p50"]), max(res["p99"])
        else:
            lat = res["latencies"]
            rate[mode] = len(lat) / res["seconds"]
            p50, p99 = percentile(lat, 50), percentile(lat, 99)
        print(f"| {mode} | {rate[mode]:.1f} | {1000 * p50:.1f} | {1000 * p99:.1f} "
              f"| {res['failed']} | {res['mixed']} | {res['differs']} |")
    print(f"batching / batch size 1: {rate['batching'] / rate['batch size 1']:.2f}x sentences/s")
    bad = sum(r["failed"] + r["mixed"] for r in results.values())
    subprocess.run(["rm", "-rf", work])
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
