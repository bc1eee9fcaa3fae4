#!/bin/busybox sh
# PID 1 of the dax-vm guest (xtask/src/dax_vm/init.sh, packed by xtask).
#
# Channels: ttyS0 = kernel console + our progress lines (for humans and for
# the host's crash detection); ttyS1/ttyS2 = the test binary's stdout/stderr;
# ttyS3 = "control": short "daxvm <word> ..." lines the host parses. Only
# this script writes to ttyS3, so kernel messages can never interleave with
# the exit status. Each `ctl` opens and closes the port, and closing a serial
# tty waits until its output has left the UART, so a line is out before the
# next step (poweroff) runs.

/bin/busybox mkdir -p /proc /sys /dev /tmp /root /mnt/dax /mnt/nodax /usr/bin /usr/sbin /sbin
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

ctl() { echo "daxvm $*" > /dev/ttyS3; }
say() { echo "daxvm-init: $*"; }
halt() { sync; poweroff -f; sleep 30; }
fail() {
    say "SETUP FAILED: $*"
    dmesg | grep -iE 'nvdimm|nfit|pmem|nd_|dax|ext4|xfs|jbd2|error|fail' | tail -n 40
    ctl "failed $*"
    halt
}

FS=ext4
PMEM=new
for word in $(cat /proc/cmdline); do
    case $word in
        daxvm.fs=*) FS=${word#*=} ;;
        daxvm.pmem=*) PMEM=${word#*=} ;;
        daxvm.probe=1)
            # accelerator probe: reaching user space is all we want to know
            ctl probe-ok
            halt
            ;;
    esac
done

# The host lists the modules in dependency order, so plain insmod is enough
# and the guest needs no modules.dep.
for list in /etc/daxvm/modules.common "/etc/daxvm/modules.$FS"; do
    [ -f "$list" ] || fail "no module list $list"
    while read -r ko; do
        name=${ko##*/}
        name=${name%.ko}
        [ -d "/sys/module/$(echo "$name" | tr - _)" ] && continue
        out=$(insmod "/lib/modules/$ko" 2>&1) || fail "insmod $ko: $out"
    done < "$list"
done

wait_for() { # wait_for PATH TENTHS
    n=0
    while [ ! -e "$1" ] && [ $n -lt "$2" ]; do sleep 0.1; n=$((n + 1)); done
    [ -e "$1" ]
}
wait_for /sys/bus/nd/devices/region0 100 || fail "no NVDIMM region0 (nfit not bound?)"

fs_on_pmem() {
    if [ "$(dd if=/dev/pmem0 bs=1 skip=1080 count=2 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 53ef ]; then
        echo ext4
    elif [ "$(dd if=/dev/pmem0 bs=4 count=1 2>/dev/null)" = XFSB ]; then
        echo xfs
    else
        echo none
    fi
}

if [ "$PMEM" = existing ]; then
    # The image was set up by an earlier boot: the kernel finds the labels and
    # the pfn info block itself. Never re-create anything here, or the data
    # the test wants to check would be gone.
    wait_for /dev/pmem0 100 || fail "existing image: no /dev/pmem0 came up"
    parent=$(readlink -f /sys/block/pmem0/device)
    case ${parent##*/} in
        pfn*) ;;
        *) fail "existing image: pmem0 is not an fsdax (pfn) namespace; delete the image to start over" ;;
    esac
    found=$(fs_on_pmem)
    [ "$found" = "$FS" ] || fail "existing image holds '$found', not $FS; delete the image to start over"
    say "existing fsdax namespace with $FS"
else
    # A fresh NVDIMM comes up as one raw namespace, which has no struct pages
    # and so cannot do fs-DAX; relabel it and make an fsdax namespace.
    out=$( (ndctl disable-region region0 && ndctl init-labels -f nmem0 &&
        ndctl enable-region region0 && ndctl create-namespace -r region0 -m fsdax) 2>&1) ||
        fail "ndctl: $out"
    wait_for /dev/pmem0 100 || fail "no /dev/pmem0 after create-namespace"
    case $FS in
        # -b 4096: mke2fs picks 1 KiB blocks for a device this small, and
        # ext4 refuses DAX unless the block size equals the page size.
        ext4) out=$(mkfs.ext4 -F -q -b 4096 /dev/pmem0 2>&1) || fail "mkfs.ext4: $out" ;;
        xfs) out=$(mkfs.xfs -f -q /dev/pmem0 2>&1) || fail "mkfs.xfs: $out" ;;
        *) fail "unknown file system $FS" ;;
    esac
    say "new fsdax namespace, $FS created"
fi

[ "$(cat /sys/block/pmem0/queue/dax 2>/dev/null)" = 1 ] || fail "/dev/pmem0 does not support DAX"
out=$(mount -t "$FS" -o dax=always /dev/pmem0 /mnt/dax 2>&1) || fail "mount -o dax=always: $out"
grep -q ' /mnt/dax .*dax' /proc/mounts || fail "/mnt/dax is mounted without dax: $(grep /mnt/dax /proc/mounts)"
# journal replay / log recovery shows up here; the host prints these lines
dmesg | grep -E 'EXT4-fs \(pmem0\)|XFS \(pmem0\)' | sed 's/^\[[^]]*\] */daxvm-init: kernel: /'
mount -t tmpfs -o size=40% nodax /mnt/nodax || fail "tmpfs on /mnt/nodax"
# /tmp stays the initramfs' own directory: the root file system is already
# a tmpfs (no root= on the command line), and files that the host packed at
# their /tmp/... paths (a test's CARGO_BIN_EXE_* in a target dir under /tmp)
# must stay visible.

export DAX_DIR=/mnt/dax NODAX_DIR=/mnt/nodax DAXVM_FS=$FS DAXVM_PMEM_STATE=$PMEM
export HOME=/root TMPDIR=/tmp
. /daxvm/env
. /daxvm/args

# Raw mode: no \n -> \r\n translation, so the bytes come back unchanged.
exec 3>/dev/ttyS1 4>/dev/ttyS2
stty raw -echo <&3
stty raw -echo <&4
say "running the binary"
ctl "started fs=$FS pmem=$PMEM"
cd /
"/daxvm/bin/$DAXVM_BIN" "$@" </dev/null >&3 2>&4
rc=$?
exec 3>&- 4>&-
say "binary exited with status $rc"
umount /mnt/dax || fail "umount /mnt/dax after the binary exited $rc"
sync
ctl "exit $rc"
halt
