#!/usr/bin/env python3
"""Run the oracle's -object command-line cases against `qom` and compare
with QEMU 10.0.2's recorded outcomes.

The read-back of a created object is compared without our extra `sync`
property (QEMU does not have it); everything else (outcome, exit status,
exact stderr, every other property value) must be equal.

Usage: cli_cases_compare.py ORACLE_DIR PATH-TO-qom WORKDIR
Prints one line per differing case ("DIFFER name: column ...") and a final
"N matched, M differ"; exit status 0.
"""

import json
import os
import subprocess
import sys


def load(path):
    rows = {}
    with open(path) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            fields = line.rstrip("\n").split("\t")
            fields += [""] * (6 - len(fields))
            rows[fields[0]] = fields
    return rows


def without_sync(result):
    try:
        objs = json.loads(result)
    except ValueError:
        return result
    for props in objs.values():
        props.pop("sync", None)
    return json.dumps(objs, sort_keys=True)


def main():
    oracle, qom, work = (os.path.abspath(p) for p in sys.argv[1:4])
    mine = os.path.join(work, "cli-mine.tsv")
    subprocess.run(
        [sys.executable, "cli_cases.py", "run", "--server-cmd", f"{qom} -qmp stdio", "--out", mine],
        cwd=oracle, check=True, stdout=subprocess.DEVNULL)
    theirs = load(os.path.join(oracle, "cli-qemu-10.0.2.tsv"))
    ours = load(mine)
    matched, differ = 0, 0
    for name, a in theirs.items():
        b = ours.get(name)
        if b is None:
            print(f"DIFFER {name}: missing")
            differ += 1
            continue
        cols = [c for c, i in (("outcome", 2), ("exit_status", 3), ("stderr", 4)) if a[i] != b[i]]
        if without_sync(a[5]) != without_sync(b[5]):
            cols.append("result")
        if cols:
            print(f"DIFFER {name}: {' '.join(cols)}")
            differ += 1
        else:
            matched += 1
    print(f"{matched} matched, {differ} differ")


if __name__ == "__main__":
    main()
