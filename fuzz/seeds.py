#!/usr/bin/env python3
"""Writes the seed corpora of fuzz/corpus/ from the project's tests and the
QEMU oracle's scenarios and command-line cases (tests/oracle of the
repository, or the directory given as the first argument). Run from anywhere; it replaces
fuzz/corpus/ entirely. File names are content hashes, as libFuzzer names
its own inputs, so regenerating is stable."""

import hashlib
import json
import pathlib
import re
import shutil
import struct
import sys

FUZZ = pathlib.Path(__file__).resolve().parent
ROOT = FUZZ.parent
ORACLE = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "tests" / "oracle"
VALUE = ROOT / "crates" / "qom" / "src" / "value"
# libFuzzer reads every file of a corpus at start; a few dozen per target
# keep CI's 30 s runs about fuzzing, not loading.
MAX_PER_TARGET = 80


def literals(path):
    """The plain string literals of a Rust file, unescaped."""
    text = path.read_text()
    out = []
    for m in re.finditer(r'"((?:[^"\\\n]|\\.)*)"', text):
        s = m.group(1)
        try:
            s = bytes(s, "utf-8").decode("unicode_escape").encode("latin-1").decode("utf-8")
        except (UnicodeDecodeError, UnicodeEncodeError):
            continue
        out.append(s)
    return out


def write(target, items):
    d = FUZZ / "corpus" / target
    seen = []
    for data in items:
        if isinstance(data, str):
            data = data.encode()
        if data and data not in seen:
            seen.append(data)
    d.mkdir(parents=True)
    for data in seen[:MAX_PER_TARGET]:
        (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def object_strings():
    rows = []
    for line in (ORACLE / "cli_cases.tsv").read_text().splitlines():
        if line.startswith("#") or "\t" not in line:
            continue
        rows += [s.replace("{TMP}", "/dev/shm/t") for s in line.split("\t")[1:]]
    return rows


def scenarios():
    return json.loads((ORACLE / "scenarios.json").read_text())


def step_text(step):
    if "raw" in step:
        return step["raw"]
    if "execute" in step:
        msg = {k: step[k] for k in ("execute", "arguments") if k in step}
        return json.dumps(msg).replace("{TMP}", "/dev/shm/t")
    return None


def main():
    shutil.rmtree(FUZZ / "corpus", ignore_errors=True)
    objects = object_strings()
    kv = [s for s in literals(VALUE / "keyval" / "tests.rs") + literals(VALUE / "spec" / "tests.rs")
          if "=" in s or "," in s]
    write("keyval", objects[:40] + kv)
    opts = [s for s in literals(VALUE / "opts" / "tests.rs") + literals(VALUE / "de_opts" / "tests.rs")
            if "=" in s or "," in s]
    write("opts", objects[:40] + opts)

    nums = literals(VALUE / "number" / "tests.rs")
    words = [struct.pack("<QB", v, u) for v, u in
             [(0, 0), (1, 1), (1023, 2), (1 << 30, 3), (2**64 - 1, 4), (1536 << 20, 5), (1000, 63)]]
    write("numbers", words + [s for s in nums if len(s) < 40])

    messages = []
    sessions = []
    for sc in scenarios():
        texts = [t for t in map(step_text, sc["steps"]) if t is not None]
        messages += texts
        # One seed byte (how the server's reads are cut), then the client.
        body = "".join(t + "\n" for t in texts)
        if '"qmp_capabilities"' not in body.split("\n")[0]:
            body = '{"execute": "qmp_capabilities"}\n' + body
        sessions.append(b"\x07" + body.encode())
    # Two control bytes: the limits (0 = defaults) and where reads are cut.
    write("json_stream", [b"\x00\x05" + m.encode() for m in messages]
          + [b"\x15\x01" + m.encode() for m in messages[:10]])
    write("qmp_session", sessions)


main()
