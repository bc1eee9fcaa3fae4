#!/usr/bin/env python3
"""Drive the real `qom` binary with QEMU's own QMP client library.

The official client (PyPI package `qemu.qmp`: QMPClient and qmp-shell) must
work against our server unchanged. This script starts `qom` with one
memory backend and a Unix socket, then:

  1. connects with qemu.qmp.QMPClient, checks the greeting and the
     negotiated capabilities, runs the QOM commands and an error case, and
     quits (expecting the SHUTDOWN event);
  2. runs qmp-shell non-interactively over a second server.

Usage: VENV/bin/python3 qmp_client_e2e.py PATH-TO-qom (the virtual environment
that holds qemu.qmp; `cargo xtask python-client` makes it)
Exit status 0 on success; any failure raises with a message.
"""

import asyncio
import os
import subprocess
import sys
import tempfile
import time

from qemu.qmp import ExecuteError, QMPClient


def start(qom, tmp, name):
    sock = os.path.join(tmp, name + ".sock")
    mem = os.path.join(tmp, name + ".mem")
    proc = subprocess.Popen(
        [qom,
         "-object", f"memory-backend-file,id=mem0,size=4M,mem-path={mem},share=on",
         "-qmp", f"unix:{sock},server=on,wait=off"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while not os.path.exists(sock):
        if proc.poll() is not None:
            raise SystemExit(f"qom exited early: {proc.stderr.read().decode()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("qom did not create its socket in 20 s")
        time.sleep(0.02)
    mode = os.stat(sock).st_mode & 0o777
    assert mode == 0o600, f"socket mode {oct(mode)}"
    return proc, sock, mem


async def with_client(sock):
    qmp = QMPClient("qom-e2e")
    await qmp.connect(sock)
    assert qmp.greeting is not None, "no greeting"
    version = await qmp.execute("query-version")
    assert set(version["qemu"]) == {"major", "minor", "micro"}, version

    types = await qmp.execute("qom-list-types", {"implements": "memory-backend"})
    assert {"name": "memory-backend-file", "parent": "memory-backend"} in types, types
    sync = await qmp.execute("qom-get", {"path": "/objects/mem0", "property": "sync"})
    assert sync == "off", sync  # tmpfs or ext4 refuse MAP_SYNC; auto fell back
    await qmp.execute("object-add", {"qom-type": "memory-backend-file", "id": "mem1",
                                     "size": 2097152, "mem-path": "/dev/shm", "share": True})
    memdevs = await qmp.execute("query-memdev")
    assert sorted(m["id"] for m in memdevs) == ["mem0", "mem1"], memdevs
    try:
        await qmp.execute("qom-set", {"path": "/objects/mem1", "property": "size", "value": 1})
        raise AssertionError("a locked property was changed")
    except ExecuteError as e:
        assert e.error.error.class_ == "GenericError", e.error
        assert e.error.error.desc == "cannot change property size of memory-backend-file ", e.error.error.desc
    try:
        await qmp.execute("qom-get", {"path": "/nope", "property": "type"})
        raise AssertionError("a missing path was found")
    except ExecuteError as e:
        assert e.error.error.class_ == "DeviceNotFound", e.error
    await qmp.execute("object-del", {"id": "mem1"})

    events = []

    async def listen():
        async for event in qmp.events:
            events.append(event["event"])
            if event["event"] == "SHUTDOWN":
                return

    listener = asyncio.create_task(listen())
    await qmp.execute("quit")
    await asyncio.wait_for(listener, 10)
    assert "SHUTDOWN" in events, events
    try:
        await qmp.disconnect()
    except EOFError:
        pass  # the server closed the connection after quit, as QEMU does


def with_shell(qom, tmp):
    proc, sock, _ = start(qom, tmp, "shell")
    try:
        out = subprocess.run(
            # qmp-shell of the environment running this script (the
            # virtual environment of the tests), not whatever is on PATH
            [os.path.join(os.path.dirname(sys.executable), "qmp-shell"), sock],
            input="qom-get path=/objects/mem0 property=size\nqom-list path=/objects\n",
            capture_output=True, text=True, timeout=60)
        assert "4194304" in out.stdout, out.stdout + out.stderr
        assert "child<memory-backend-file>" in out.stdout, out.stdout + out.stderr
    finally:
        proc.kill()
        proc.wait()


def main():
    qom = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        proc, sock, mem = start(qom, tmp, "client")
        try:
            asyncio.run(asyncio.wait_for(with_client(sock), 60))
            rc = proc.wait(timeout=20)
            assert rc == 0, f"qom exited with {rc}"
            assert not os.path.exists(sock), "socket left behind after quit"
            assert os.path.exists(mem), "the backing file must stay"
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        with_shell(qom, tmp)
    print("qemu.qmp client e2e: OK")


if __name__ == "__main__":
    main()
