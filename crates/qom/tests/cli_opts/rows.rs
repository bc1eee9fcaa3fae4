// The oracle rows of `cli_cases.tsv` with QEMU 10.0.2's outcome and stderr
// (`cli-qemu-10.0.2.tsv`); `{TMP}` and `{PROG}` are placeholders.

/// `(name, -object strings, QEMU's outcome, QEMU's stderr)`, from the oracle.
const ROWS: &[(&str, &[&str], &str, &str)] = &[
    (
        r##"basic-share-on"##,
        &[r##"memory-backend-file,id=m,size=4M,mem-path={TMP}/f,share=on"##],
        r##"OK"##,
        r##""##,
    ),
    (
        r##"size-4M"##,
        &[r##"memory-backend-file,id=m,size=4M,mem-path={TMP}/f"##],
        r##"OK"##,
        r##""##,
    ),
    (
        r##"size-1G"##,
        &[r##"memory-backend-file,id=m,size=1G,mem-path={TMP}/f"##],
        r##"OK"##,
        r##""##,
    ),
    (
        r##"size-hex"##,
        &[r##"memory-backend-file,id=m,size=0x400000,mem-path={TMP}/f"##],
        r##"OK"##,
        r##""##,
    ),
    (
        r##"size-1.5M"##,
        &[r##"memory-backend-file,id=m,size=1.5M,mem-path={TMP}/f"##],
        r##"OK"##,
        r##""##,
    ),
    (
        r##"size-plain-bytes"##,
        &[r##"memory-backend-file,id=m,size=4194304,mem-path={TMP}/f"##],
        r##"OK"##,
        r##""##,
    ),
    (
        r##"size-4096k"##,
        &[r##"memory-backend-file,id=m,size=4096k,mem-path={TMP}/f"##],
        r##"OK"##,
        r##""##,
    ),
    (
        r##"size-B-suffix"##,
        &[r##"memory-backend-file,id=m,size=4194304B,mem-path={TMP}/f"##],
        r##"OK"##,
        r##""##,
    ),
    (
        r##"size-octal-looking"##,
        &[r##"memory-backend-file,id=m,size=010M,mem-path={TMP}/f"##],
        r##"OK"##,
        r##""##,
    ),
    (
        r##"size-1.5-no-suffix"##,
        &[r##"memory-backend-file,id=m,size=1.5,mem-path={TMP}/f"##],
        r##"ERROR"##,
        r##"{PROG}: -object memory-backend-file,id=m,size=1.5,mem-path={TMP}/f: Parameter 'size' expects a size value
"##,
    ),
    (
        r##"size-MiB"##,
        &[r##"memory-backend-file,id=m,size=4MiB,mem-path={TMP}/f"##],
        r##"ERROR"##,
        r##"{PROG}: -object memory-backend-file,id=m,size=4MiB,mem-path={TMP}/f: Parameter 'size' expects a size value
"##,
    ),
    (
        r##"size-bad-suffix"##,
        &[r##"memory-backend-file,id=m,size=4X,mem-path={TMP}/f"##],
        r##"ERROR"##,
        r##"{PROG}: -object memory-backend-file,id=m,size=4X,mem-path={TMP}/f: Parameter 'size' expects a size value
"##,
    ),
    (
        r##"size-zero"##,
        &[r##"memory-backend-file,id=m,size=0,mem-path={TMP}/f"##],
        r##"ERROR"##,
        r##"{PROG}: property 'size' of memory-backend-file doesn't take value '0'
"##,
    ),
    (
        r##"size-empty"##,
        &[r##"memory-backend-file,id=m,size=,mem-path={TMP}/f"##],
        r##"ERROR"##,
        r##"{PROG}: -object memory-backend-file,id=m,size=,mem-path={TMP}/f: Parameter 'size' expects a size value
"##,
    ),
    (
        r##"size-16E-overflow"##,
        &[r##"memory-backend-file,id=m,size=16E,mem-path={TMP}/f"##],
        r##"ERROR"##,
        r##"{PROG}: -object memory-backend-file,id=m,size=16E,mem-path={TMP}/f: Parameter 'size' expects a size value
"##,
    ),
    (
        r##"size-1E"##,
        &[r##"memory-backend-file,id=m,size=1E,mem-path={TMP}/f"##],
        r##"ERROR"##,
        r##"ftruncate: File too large
{PROG}: unable to map backing store for guest RAM: Cannot allocate memory
"##,
    ),
    (
        r##"size-missing"##,
        &[r##"memory-backend-file,id=m,mem-path={TMP}/f"##],
        r##"ERROR"##,
        r##"{PROG}: -object memory-backend-file,id=m,mem-path={TMP}/f: Parameter 'size' is missing
"##,
    ),
    (
        r##"mem-path-missing"##,
        &[r##"memory-backend-file,id=m,size=4M"##],
        r##"ERROR"##,
        r##"{PROG}: -object memory-backend-file,id=m,size=4M: Parameter 'mem-path' is missing
"##,
    ),
    (
        r##"mem-path-nodir"##,
        &[r##"memory-backend-file,id=m,size=4M,mem-path={TMP}/nodir/f"##],
        r##"ERROR"##,
        r##"{PROG}: can't open backing store {TMP}/nodir/f for guest RAM: No such file or directory
"##,
    ),
    (
        r##"mem-path-comma-escape"##,
        &[r##"memory-backend-file,id=m,size=4M,mem-path={TMP}/a,,b"##],
        r##"OK"##,
        r##""##,
    ),
    (
        r##"mem-path-existing-4M"##,
        &[r##"memory-backend-file,id=m,size=4M,mem-path={TMP}/f4m"##],
        r##"OK"##,
        r##""##,
    ),
    (
        r##"mem-path-existing-too-small"##,
        &[r##"memory-backend-file,id=m,size=8M,mem-path={TMP}/f4m"##],
        r##"ERROR"##,
        r##"{PROG}: m backing store size 0x400000 is too small for 'size' option 0x800000 plus 'offset' option 0x0
"##,
    ),
    (
        r##"share-off"##,
        &[r##"memory-backend-file,id=m,size=4M,mem-path={TMP}/f,share=off"##],
        r##"OK"##,
        r##""##,
    ),
    (
        r##"share-yes"##,
        &[r##"memory-backend-file,id=m,size=4M,mem-path={TMP}/f,share=yes"##],
        r##"OK"##,
        r##""##,
    ),
    (
        r##"share-true"##,
        &[r##"memory-backend-file,id=m,size=4M,mem-path={TMP}/f,share=true"##],
        r##"OK"##,
        r##""##,
    ),
    (
        r##"share-false"##,
        &[r##"memory-backend-file,id=m,size=4M,mem-path={TMP}/f,share=false"##],
        r##"OK"##,
        r##""##,
    ),
    (
        r##"share-ON-upper"##,
        &[r##"memory-backend-file,id=m,size=4M,mem-path={TMP}/f,share=ON"##],
        r##"ERROR"##,
        r##"{PROG}: -object memory-backend-file,id=m,size=4M,mem-path={TMP}/f,share=ON: Parameter 'share' expects 'on' or 'off'
"##,
    ),
    (
        r##"share-1"##,
        &[r##"memory-backend-file,id=m,size=4M,mem-path={TMP}/f,share=1"##],
        r##"ERROR"##,
        r##"{PROG}: -object memory-backend-file,id=m,size=4M,mem-path={TMP}/f,share=1: Parameter 'share' expects 'on' or 'off'
"##,
    ),
    (
        r##"share-short-form"##,
        &[r##"memory-backend-file,id=m,size=4M,mem-path={TMP}/f,share"##],
        r##"OK"##,
        r##"{PROG}: -object memory-backend-file,id=m,size=4M,mem-path={TMP}/f,share: warning: short-form boolean option 'share' deprecated
Please use share=on instead
"##,
    ),
    (
        r##"share-no-prefix-form"##,
        &[r##"memory-backend-file,id=m,size=4M,mem-path={TMP}/f,noshare"##],
        r##"OK"##,
        r##"{PROG}: -object memory-backend-file,id=m,size=4M,mem-path={TMP}/f,noshare: warning: short-form boolean option 'noshare' deprecated
Please use share=off instead
"##,
    ),
    (
        r##"align-3M"##,
        &[r##"memory-backend-file,id=m,size=4M,mem-path={TMP}/f,align=3M"##],
        r##"ERROR"##,
        r##"{PROG}: alignment 0x300000 must be a power of two
"##,
    ),
    (
        r##"align-64M-larger-than-size"##,
        &[r##"memory-backend-file,id=m,size=4M,mem-path={TMP}/f,align=64M"##],
        r##"OK"##,
        r##""##,
    ),
    (
        r##"offset-4M-small-file"##,
        &[r##"memory-backend-file,id=m,size=4M,mem-path={TMP}/f4m,offset=4M"##],
        r##"ERROR"##,
        r##"{PROG}: m backing store size 0x400000 is too small for 'size' option 0x400000 plus 'offset' option 0x400000
"##,
    ),
    (
        r##"offset-unaligned"##,
        &[r##"memory-backend-file,id=m,size=4M,mem-path={TMP}/f,offset=1000"##],
        r##"ERROR"##,
        r##"{PROG}: offset 0x3e8 must be multiples of page size 0x1000
"##,
    ),
    (
        r##"readonly-on"##,
        &[r##"memory-backend-file,id=m,size=4M,mem-path={TMP}/f4m,readonly=on"##],
        r##"OK"##,
        r##""##,
    ),
    (
        r##"readonly-on-missing-file"##,
        &[r##"memory-backend-file,id=m,size=4M,mem-path={TMP}/f,readonly=on"##],
        r##"ERROR"##,
        r##"{PROG}: can't open backing store {TMP}/f for guest RAM: No such file or directory
"##,
    ),
    (
        r##"rom-bad"##,
        &[r##"memory-backend-file,id=m,size=4M,mem-path={TMP}/f,rom=maybe"##],
        r##"ERROR"##,
        r##"{PROG}: -object memory-backend-file,id=m,size=4M,mem-path={TMP}/f,rom=maybe: Parameter 'rom' does not accept value 'maybe'
"##,
    ),
    (
        r##"discard-data-on"##,
        &[r##"memory-backend-file,id=m,size=4M,mem-path={TMP}/f,discard-data=on"##],
        r##"OK"##,
        r##""##,
    ),
    (
        r##"prealloc-reserve-off"##,
        &[r##"memory-backend-file,id=m,size=4M,mem-path={TMP}/f,prealloc=on,reserve=off"##],
        r##"ERROR"##,
        r##"{PROG}: 'prealloc=on' and 'reserve=off' are incompatible
"##,
    ),
    (
        r##"prealloc-threads-0"##,
        &[r##"memory-backend-file,id=m,size=4M,mem-path={TMP}/f,prealloc-threads=0"##],
        r##"ERROR"##,
        r##"{PROG}: property 'prealloc-threads' of memory-backend-file doesn't take value '0'
"##,
    ),
    (
        r##"policy-bind-host-nodes-0"##,
        &[r##"memory-backend-file,id=m,size=4M,mem-path={TMP}/f,host-nodes=0,policy=bind"##],
        r##"OK"##,
        r##""##,
    ),
    (
        r##"host-nodes-range"##,
        &[r##"memory-backend-file,id=m,size=4M,mem-path={TMP}/f,host-nodes=0-1,policy=interleave"##],
        r##"OK"##,
        r##""##,
    ),
    (
        r##"policy-bad"##,
        &[r##"memory-backend-file,id=m,size=4M,mem-path={TMP}/f,policy=nosuch"##],
        r##"ERROR"##,
        r##"{PROG}: -object memory-backend-file,id=m,size=4M,mem-path={TMP}/f,policy=nosuch: Parameter 'policy' does not accept value 'nosuch'
"##,
    ),
    (
        r##"dump-off-merge-on"##,
        &[r##"memory-backend-file,id=m,size=4M,mem-path={TMP}/f,dump=off,merge=on"##],
        r##"OK"##,
        r##""##,
    ),
    (
        r##"sync-auto-unknown"##,
        &[r##"memory-backend-file,id=m,size=4M,mem-path={TMP}/f,sync=auto"##],
        r##"ERROR"##,
        r##"{PROG}: -object memory-backend-file,id=m,size=4M,mem-path={TMP}/f,sync=auto: Invalid parameter 'sync'
"##,
    ),
    (
        r##"bad-key"##,
        &[r##"memory-backend-file,id=m,size=4M,mem-path={TMP}/f,bogus=1"##],
        r##"ERROR"##,
        r##"{PROG}: -object memory-backend-file,id=m,size=4M,mem-path={TMP}/f,bogus=1: Invalid parameter 'bogus'
"##,
    ),
    (
        r##"bad-key-uppercase"##,
        &[r##"memory-backend-file,id=m,SIZE=4M,mem-path={TMP}/f"##],
        r##"ERROR"##,
        r##"{PROG}: -object memory-backend-file,id=m,SIZE=4M,mem-path={TMP}/f: Parameter 'size' is missing
"##,
    ),
    (
        r##"duplicate-key-last-wins"##,
        &[r##"memory-backend-file,id=m,size=4M,size=8M,mem-path={TMP}/f"##],
        r##"OK"##,
        r##""##,
    ),
    (
        r##"double-comma-at-end"##,
        &[r##"memory-backend-file,id=m,size=4M,mem-path={TMP}/f,,"##],
        r##"OK"##,
        r##""##,
    ),
    (
        r##"missing-id"##,
        &[r##"memory-backend-file,size=4M,mem-path={TMP}/f"##],
        r##"ERROR"##,
        r##"{PROG}: -object memory-backend-file,size=4M,mem-path={TMP}/f: Parameter 'id' is missing
"##,
    ),
    (
        r##"id-leading-digit"##,
        &[r##"memory-backend-file,id=1m,size=4M,mem-path={TMP}/f"##],
        r##"ERROR"##,
        r##"{PROG}: -object memory-backend-file,id=1m,size=4M,mem-path={TMP}/f: Parameter 'id' expects an identifier
Identifiers consist of letters, digits, '-', '.', '_', starting with a letter.
"##,
    ),
    (
        r##"id-comma-escaped"##,
        &[r##"memory-backend-file,id=a,,b,size=4M,mem-path={TMP}/f"##],
        r##"ERROR"##,
        r##"{PROG}: -object memory-backend-file,id=a,,b,size=4M,mem-path={TMP}/f: Parameter 'id' expects an identifier
Identifiers consist of letters, digits, '-', '.', '_', starting with a letter.
"##,
    ),
    (
        r##"explicit-qom-type-key"##,
        &[r##"qom-type=memory-backend-file,id=m,size=4M,mem-path={TMP}/f"##],
        r##"OK"##,
        r##""##,
    ),
    (
        r##"qom-type-unknown"##,
        &[r##"nosuch,id=m,size=4M"##],
        r##"ERROR"##,
        r##"{PROG}: -object nosuch,id=m,size=4M: Parameter 'qom-type' does not accept value 'nosuch'
"##,
    ),
    (
        r##"qom-type-not-creatable"##,
        &[r##"container,id=m"##],
        r##"ERROR"##,
        r##"{PROG}: -object container,id=m: Parameter 'qom-type' does not accept value 'container'
"##,
    ),
    (
        r##"qom-type-empty"##,
        &[r##",id=m,size=4M,mem-path={TMP}/f"##],
        r##"ERROR"##,
        r##"{PROG}: -object ,id=m,size=4M,mem-path={TMP}/f: Parameter 'qom-type' does not accept value ''
"##,
    ),
    (
        r##"json-form"##,
        &[r##"{"qom-type":"memory-backend-file","id":"m","size":4194304,"mem-path":"{TMP}/f","share":true}"##],
        r##"OK"##,
        r##""##,
    ),
    (
        r##"json-form-string-size"##,
        &[r##"{"qom-type":"memory-backend-file","id":"m","size":"4M","mem-path":"{TMP}/f"}"##],
        r##"ERROR"##,
        r##"{PROG}: -object {"qom-type":"memory-backend-file","id":"m","size":"4M","mem-path":"{TMP}/f"}: Parameter 'size' expects uint64
"##,
    ),
    (
        r##"json-form-missing-id"##,
        &[r##"{"qom-type":"memory-backend-file","size":4194304,"mem-path":"{TMP}/f"}"##],
        r##"ERROR"##,
        r##"{PROG}: -object {"qom-type":"memory-backend-file","size":4194304,"mem-path":"{TMP}/f"}: Parameter 'id' is missing
"##,
    ),
    (
        r##"json-form-bad-key"##,
        &[r##"{"qom-type":"memory-backend-file","id":"m","size":4194304,"mem-path":"{TMP}/f","bogus":1}"##],
        r##"ERROR"##,
        r##"{PROG}: -object {"qom-type":"memory-backend-file","id":"m","size":4194304,"mem-path":"{TMP}/f","bogus":1}: Parameter 'bogus' is unexpected
"##,
    ),
    (
        r##"json-form-leading-space"##,
        &[r##" {"qom-type":"memory-backend-file","id":"m","size":4194304,"mem-path":"{TMP}/f"}"##],
        r##"ERROR"##,
        r##"{PROG}: -object  {"qom-type":"memory-backend-file","id":"m","size":4194304,"mem-path":"{TMP}/f"}: warning: short-form boolean option '"id":"m"' deprecated
Please use "id":"m"=on instead
{PROG}: -object  {"qom-type":"memory-backend-file","id":"m","size":4194304,"mem-path":"{TMP}/f"}: warning: short-form boolean option '"size":4194304' deprecated
Please use "size":4194304=on instead
{PROG}: -object  {"qom-type":"memory-backend-file","id":"m","size":4194304,"mem-path":"{TMP}/f"}: warning: short-form boolean option '"mem-path":"{TMP}/f"}' deprecated
Please use "mem-path":"{TMP}/f"}=on instead
{PROG}: -object  {"qom-type":"memory-backend-file","id":"m","size":4194304,"mem-path":"{TMP}/f"}: Parameter 'qom-type' does not accept value ' {"qom-type":"memory-backend-file"'
"##,
    ),
    (
        r##"help"##,
        &[r##"memory-backend-file,help"##],
        r##"EXIT0"##,
        r##""##,
    ),
    (
        r##"duplicate-id-two-objects"##,
        &[r##"memory-backend-file,id=m,size=4M,mem-path={TMP}/a"##, r##"memory-backend-file,id=m,size=4M,mem-path={TMP}/b"##],
        r##"ERROR"##,
        r##"{PROG}: -object memory-backend-file,id=m,size=4M,mem-path={TMP}/b: Duplicate ID 'm' for object
"##,
    ),
    (
        r##"two-objects"##,
        &[r##"memory-backend-file,id=m0,size=4M,mem-path={TMP}/a"##, r##"memory-backend-file,id=m1,size=2M,mem-path={TMP}/b,share=on"##],
        r##"OK"##,
        r##""##,
    ),
];
