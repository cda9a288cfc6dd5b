"""Peak RSS of a benchmarked command, its own and nothing else's.

A child forked from the benchmark's Python process starts with that
process's pages, and Linux keeps the high-water mark across exec: os.wait4
on a child of a process that has imported torch reports at least ~230 MiB
for /bin/true. GNU time (Debian's `time`) forks the command from its own
small image, so its %M is the command's own peak.
"""
import os
import subprocess
import tempfile

TIME = "/usr/bin/time"


def run(cmd, env=None, stdout=None, stderr=None):
    """Runs cmd (env added to the environment) -> (exit code, peak RSS in MiB).
    stdout and stderr as for subprocess.run."""
    if not os.access(TIME, os.X_OK):
        raise SystemExit(f"peak_rss: {TIME} missing (Debian package 'time'; scripts/setup.sh installs it)")
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        proc = subprocess.run([TIME, "-f", "%M", "-o", rss.name] + list(cmd), stdout=stdout, stderr=stderr,
                              env=dict(os.environ, **(env or {})))
        lines = rss.read().split()
    # time writes "Command exited with non-zero status N" before %M on failure.
    mib = int(lines[-1]) / 1024 if lines and lines[-1].isdigit() else float("nan")
    return proc.returncode, mib


def run_captured(cmd, who, env=None):
    """Runs cmd -> (stdout, stderr, its own peak RSS in MiB); exits naming
    `who` and the command on failure."""
    import sys
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        code, mib = run(cmd, env, stdout=out, stderr=err)
        out.seek(0)
        err.seek(0)
        o, e = out.read(), err.read()
    if code != 0:
        sys.exit(f"{who}: {' '.join(cmd)} failed ({code}):\n{e}")
    return o, e, mib
