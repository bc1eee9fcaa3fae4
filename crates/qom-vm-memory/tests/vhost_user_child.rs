//! The vhost-user view of guest memory, end to end: this test binary
//! builds guest memory from share=on backends of every kind, then runs
//! itself again as a "back end" process that receives the memory table
//! and the region descriptors over a Unix socket (`SCM_RIGHTS`), maps
//! each region at its offset, checks what the parent wrote through
//! vm-memory and writes an answer the parent then reads through vm-memory
//! and through the backends' accessors.
//!
//! Its own `main` (no test harness): the same binary is both sides. Every
//! wait has a deadline, so a stuck child fails the test instead of
//! hanging it. Needs /tmp or /var/tmp on ext4 or xfs and /dev/shm on
//! tmpfs (it fails, saying so, without them).

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use qom::{ObjectTree, TypeRegistry};
use qom_test_support::{ext4_or_xfs_dir, fs_type, TempDir};
use qom_vm_memory::BackendGuestMemory;
use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags,
};
use serde_json::json;
use vm_memory::{Bytes, GuestAddress};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
/// Environment variable that turns the binary into the back end; its
/// value is the socket path.
const CHILD_ENV: &str = "QOM_VM_MEMORY_VHOST_CHILD";
const TIMEOUT: Duration = Duration::from_secs(30);
/// At most this many regions per message (vhost-user's baseline).
const MAX_REGIONS: usize = 8;

/// Where the parent writes (the child checks) and where the child writes
/// (the parent checks), from each region's start.
const PARENT_AT: u64 = 0x40;
const CHILD_AT: u64 = 0x80;

fn parent_value(i: usize) -> u64 {
    0xa5a5_0000_0000_0000 | i as u64
}

fn child_value(i: usize) -> u64 {
    0x5a5a_0000_0000_0000 | i as u64
}

fn main() {
    match std::env::var_os(CHILD_ENV) {
        Some(path) => {
            if let Err(e) = child(Path::new(&path)) {
                eprintln!("vhost-user child: {e}");
                std::process::exit(1);
            }
        }
        None => {
            println!("\nrunning 1 test");
            // Single-threaded here, so the count is exact: the duplicated
            // descriptors of FileOffset go with the guest memory.
            let fds = qom_test_support::fd_count();
            regions_are_shared_with_another_process();
            assert_eq!(qom_test_support::fd_count(), fds, "descriptors left open");
            println!("test regions_are_shared_with_another_process ... ok\n");
        }
    }
}

fn regions_are_shared_with_another_process() {
    let ext4 = ext4_or_xfs_dir().unwrap_or_else(|why| {
        panic!("{why}: run the tests where /var/tmp or /tmp is on such a file system")
    });
    assert_eq!(
        fs_type(Path::new("/dev/shm")).as_deref(),
        Some("tmpfs"),
        "this test needs /dev/shm on tmpfs (mount -t tmpfs tmpfs /dev/shm)"
    );
    let tmpfs = TempDir::new_in("/dev/shm");

    let types = TypeRegistry::with_builtins();
    memory_backend_ram::register(&types).unwrap();
    memory_backend_file::register(&types).unwrap();
    let tree = ObjectTree::new(types).unwrap();
    let backends = [
        json!({"qom-type": "memory-backend-memfd", "id": "memfd", "size": 2 * MIB}),
        json!({"qom-type": "memory-backend-file", "id": "tmpfs", "size": 2 * MIB,
               "mem-path": tmpfs.path(), "share": true}),
        json!({"qom-type": "memory-backend-file", "id": "ext4", "size": 2 * MIB,
               "mem-path": ext4.file("guest"), "offset": 2 * MIB, "share": true}),
        json!({"qom-type": "memory-backend-ram", "id": "ram", "size": 2 * MIB, "share": true}),
        json!({"qom-type": "memory-backend-shm", "id": "shm", "size": 2 * MIB}),
    ];
    let mut layout = Vec::new();
    for (i, args) in backends.iter().enumerate() {
        tree.object_add_args(args.as_object().unwrap())
            .unwrap_or_else(|e| panic!("object-add {args}: {e}"));
        layout.push((
            GuestAddress(4 * GIB * i as u64),
            args["id"].as_str().unwrap(),
        ));
    }
    let mem = BackendGuestMemory::from_ids(&tree, &layout).unwrap();

    let table = mem.vhost_user_table().unwrap();
    assert_eq!(table.len(), backends.len());
    for (i, r) in table.iter().enumerate() {
        mem.write_obj(parent_value(i), GuestAddress(r.guest_phys_addr + PARENT_AT))
            .unwrap();
    }
    let mut text = String::new();
    for r in &table {
        text += &format!(
            "{} {} {} {}\n",
            r.guest_phys_addr, r.memory_size, r.mmap_offset, r.readonly as u8
        );
    }
    let fds: Vec<BorrowedFd<'_>> = table.iter().map(|r| r.fd).collect();

    let sockdir = TempDir::new_in("/tmp");
    let sock = sockdir.join("vhost.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, &sock)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut stream = match accept(&listener, &mut child) {
        Ok(s) => s,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the child did not connect: {e}");
        }
    };
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(TIMEOUT)).unwrap();
    send_table(&stream, text.as_bytes(), &fds).unwrap();

    let mut reply = String::new();
    let read = stream.read_to_string(&mut reply);
    let status = wait(&mut child);
    read.unwrap_or_else(|e| panic!("no reply from the child ({status:?}): {e}"));
    assert!(
        status.success(),
        "the child failed: {status:?}, reply {reply:?}"
    );
    assert_eq!(reply, "ok\n");

    // What the child wrote, through vm-memory and through the backends.
    for (i, r) in table.iter().enumerate() {
        let at = GuestAddress(r.guest_phys_addr + CHILD_AT);
        assert_eq!(
            mem.read_obj::<u64>(at).unwrap(),
            child_value(i),
            "region {i}"
        );
        let obj = tree.object(layout[i].1).unwrap();
        let mut got = [0u8; 8];
        memory_backend::mapping(&obj)
            .unwrap()
            .read_at(CHILD_AT as usize, &mut got)
            .unwrap();
        assert_eq!(u64::from_ne_bytes(got), child_value(i), "region {i}");
    }
    drop(mem);
    for (_, id) in layout {
        tree.object_del(id).unwrap();
    }
}

/// The child's connection, or an error once the deadline passes or the
/// child has exited.
fn accept(listener: &UnixListener, child: &mut Child) -> io::Result<UnixStream> {
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false)?;
                return Ok(s);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        if let Some(status) = child.try_wait()? {
            return Err(io::Error::other(format!("it exited: {status}")));
        }
        if Instant::now() > deadline {
            return Err(io::Error::other("timed out"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The child's exit status; killed (and a failure) past the deadline.
fn wait(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let status = child.wait().unwrap();
            panic!("the child did not exit within {TIMEOUT:?}; killed: {status}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One message: the text's length (u32, little endian), the text, and the
/// descriptors as `SCM_RIGHTS`.
fn send_table(stream: &UnixStream, text: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    assert!(fds.len() <= MAX_REGIONS);
    let len = (text.len() as u32).to_le_bytes();
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_REGIONS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    assert!(control.push(SendAncillaryMessage::ScmRights(fds)));
    let iov = [IoSlice::new(&len), IoSlice::new(text)];
    let sent = sendmsg(stream, &iov, &mut control, SendFlags::empty())?;
    // The descriptors went with the first byte; anything left is plain.
    let mut all = len.to_vec();
    all.extend_from_slice(text);
    let mut stream = stream;
    stream.write_all(&all[sent..])
}

/// The back end: connects, receives the table and descriptors, maps each
/// region, checks the parent's value, writes its own, answers "ok".
fn child(path: &Path) -> Result<(), String> {
    let mut stream = UnixStream::connect(path).map_err(|e| format!("connect: {e}"))?;
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(TIMEOUT)).unwrap();

    let mut buf = vec![0u8; 4096];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_REGIONS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = recvmsg(
        &stream,
        &mut [IoSliceMut::new(&mut buf)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )
    .map_err(|e| format!("recvmsg: {e}"))?;
    if got.flags.contains(ReturnFlags::CTRUNC) {
        return Err("the descriptors were truncated".into());
    }
    let mut fds: Vec<OwnedFd> = Vec::new();
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = msg {
            fds.extend(received);
        }
    }
    let mut have = got.bytes;
    while have < 4 {
        have += read_some(&mut stream, &mut buf[have..])?;
    }
    let len = u32::from_le_bytes(buf[..4].try_into().unwrap()) as usize;
    if 4 + len > buf.len() {
        return Err(format!("table of {len} bytes is too long"));
    }
    while have < 4 + len {
        have += read_some(&mut stream, &mut buf[have..4 + len])?;
    }
    let text = std::str::from_utf8(&buf[4..4 + len]).map_err(|e| e.to_string())?;
    let rows: Vec<Vec<u64>> = text
        .lines()
        .map(|l| l.split(' ').map(|n| n.parse().unwrap()).collect())
        .collect();
    if rows.len() != fds.len() {
        return Err(format!(
            "{} regions but {} descriptors",
            rows.len(),
            fds.len()
        ));
    }

    let mut problems = Vec::new();
    for (i, (row, fd)) in rows.iter().zip(&fds).enumerate() {
        let (gpa, size, offset) = (row[0], row[1] as usize, row[2]);
        let region = shared_map::SharedMap::new(fd.as_fd(), size, offset)
            .map_err(|e| format!("mmap of region {i} (offset {offset:#x}): {e}"))?;
        let seen = u64::from_ne_bytes(region.read8(PARENT_AT as usize));
        if seen != parent_value(i) {
            problems.push(format!(
                "region {i} at {gpa:#x}: read {seen:#x}, the parent wrote {:#x}",
                parent_value(i)
            ));
        }
        region.write8(CHILD_AT as usize, child_value(i).to_ne_bytes());
    }
    let reply = if problems.is_empty() {
        "ok\n".to_owned()
    } else {
        problems.join("\n") + "\n"
    };
    stream
        .write_all(reply.as_bytes())
        .map_err(|e| format!("reply: {e}"))
}

fn read_some(stream: &mut UnixStream, buf: &mut [u8]) -> Result<usize, String> {
    match stream.read(buf) {
        Ok(0) => Err("the parent closed the socket early".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("read: {e}")),
    }
}

/// The back end's own mapping of a region: the one `unsafe` of this test.
mod shared_map {
    use std::os::fd::BorrowedFd;
    use std::ptr::{null_mut, NonNull};

    use rustix::mm::{mmap, munmap, MapFlags, ProtFlags};

    /// A shared read-write mapping, unmapped on drop.
    pub struct SharedMap {
        ptr: NonNull<u8>,
        len: usize,
    }

    impl SharedMap {
        /// Maps `len` bytes of `fd` from `offset`.
        pub fn new(fd: BorrowedFd<'_>, len: usize, offset: u64) -> rustix::io::Result<SharedMap> {
            // SAFETY: no MAP_FIXED: the kernel picks free address space, so
            // the new mapping replaces nothing another thread uses, and
            // nothing else knows its address until `new` returns it.
            let ptr = unsafe {
                mmap(
                    null_mut(),
                    len,
                    ProtFlags::READ | ProtFlags::WRITE,
                    MapFlags::SHARED,
                    fd,
                    offset,
                )
            }?;
            Ok(SharedMap {
                ptr: NonNull::new(ptr.cast()).expect("mmap never returns null on success"),
                len,
            })
        }

        /// The 8 bytes at `at`.
        pub fn read8(&self, at: usize) -> [u8; 8] {
            assert!(at + 8 <= self.len);
            let mut out = [0u8; 8];
            for (i, b) in out.iter_mut().enumerate() {
                // SAFETY: in bounds (asserted), and the mapping lives as
                // long as `self`; volatile, since another process shares
                // the memory, and no reference into it is ever made.
                *b = unsafe { self.ptr.as_ptr().add(at + i).read_volatile() };
            }
            out
        }

        /// Writes 8 bytes at `at`.
        pub fn write8(&self, at: usize, bytes: [u8; 8]) {
            assert!(at + 8 <= self.len);
            for (i, b) in bytes.into_iter().enumerate() {
                // SAFETY: as in `read8`; the mapping is writable.
                unsafe { self.ptr.as_ptr().add(at + i).write_volatile(b) };
            }
        }
    }

    impl Drop for SharedMap {
        fn drop(&mut self) {
            // SAFETY: the range is this value's own mapping, and no
            // pointer into it outlives `self`.
            let _ = unsafe { munmap(self.ptr.as_ptr().cast(), self.len) };
        }
    }
}
