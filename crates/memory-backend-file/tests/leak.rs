//! 1,000 create/drop cycles, successful and failing, must leave no file
//! descriptor and no mapping behind. Alone in its test binary so that no
//! other test changes the counts meanwhile.

use qom_test_support as common;

use common::{fd_count, maps_lines, TempDir};
use memory_backend::host::SyncMode;
use memory_backend_file::file::{FileBacking, FileMapRequest};

#[test]
fn thousand_cycles_leave_no_fd_or_mapping() {
    let dir = TempDir::new_in("/dev/shm");
    let file = dir.join("cycle");
    let sub = TempDir::new_in("/dev/shm");
    // Warm up (lazy allocations of the allocator, std, /proc readers).
    drop(FileBacking::open_and_map(&FileMapRequest::new(
        "m",
        &file,
        2 << 20,
    )));
    let fds = fd_count();
    let maps = maps_lines();
    for i in 0..1000u32 {
        let mut r = FileMapRequest::new("m", &file, 2 << 20);
        r.share = i % 2 == 0;
        match i % 4 {
            0 => {
                let b = FileBacking::open_and_map(&r).unwrap();
                b.mapping().fill(0, 4096, i as u8).unwrap();
                if i % 8 == 0 {
                    b.discard_data().unwrap();
                }
            }
            1 => {
                r.path = sub.path().to_path_buf();
                drop(FileBacking::open_and_map(&r).unwrap());
            }
            2 => {
                // Fails after open: MAP_SYNC refused on tmpfs.
                r.share = true;
                r.sync = SyncMode::On;
                FileBacking::open_and_map(&r).unwrap_err();
            }
            _ => {
                // Fails after open: bad alignment.
                r.align = 3 << 20;
                FileBacking::open_and_map(&r).unwrap_err();
            }
        }
    }
    assert_eq!(fd_count(), fds, "file descriptors leaked");
    assert_eq!(maps_lines(), maps, "mappings leaked");
    assert_eq!(std::fs::read_dir(sub.path()).unwrap().count(), 0);
}
