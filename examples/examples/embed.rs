//! A VMM's start-up, without the VM: create memory backends from
//! `-object` strings, place them at guest addresses, and print what would
//! go to KVM (`KVM_SET_USER_MEMORY_REGION`) and to a vhost-user back end
//! (`VHOST_USER_SET_MEM_TABLE`).
//!
//! ```text
//! cargo run -p qom-examples --example embed -- \
//!     0=memory-backend-memfd,id=low,size=256M \
//!     4G=memory-backend-file,id=high,mem-path=/dev/shm,size=64M,share=on
//! ```
//!
//! Each argument is `GUEST-ADDRESS=OBJECT`; the address takes the size
//! suffixes of `-object` (`4G`). Without arguments, a memfd at 0 and one
//! at 4 GiB.

use std::fmt::Write as _;
use std::os::fd::AsRawFd;

use anyhow::{bail, Context};
use qom::{ObjectTree, TypeRegistry};
use qom_vm_memory::{BackendGuestMemory, KVM_MEM_READONLY};
use vm_memory::{Bytes, GuestAddress, GuestMemory, GuestMemoryBackend, GuestMemoryRegion};

fn main() -> anyhow::Result<()> {
    let mut config: Vec<String> = std::env::args().skip(1).collect();
    if config.is_empty() {
        config = vec![
            "0=memory-backend-memfd,id=low,size=256M".into(),
            "4G=memory-backend-memfd,id=high,size=64M".into(),
        ];
    }
    print!("{}", run(&config)?);
    Ok(())
}

/// The start-up for one configuration; returns what `main` prints.
fn run(config: &[String]) -> anyhow::Result<String> {
    let mut out = String::new();

    let types = TypeRegistry::with_builtins();
    memory_backend_ram::register(&types)?;
    memory_backend_file::register(&types)?;
    let tree = ObjectTree::new(types)?;

    let mut layout = Vec::new();
    for arg in config {
        let Some((addr, object)) = arg.split_once('=') else {
            bail!("'{arg}': expected GUEST-ADDRESS=OBJECT");
        };
        let addr = qom::value::parse_size(addr).with_context(|| format!("'{addr}'"))?;
        let obj = tree.object_add_str(object)?;
        layout.push((GuestAddress(addr), obj));
    }
    let mem = BackendGuestMemory::new(layout.iter().map(|(a, o)| (*a, o)))?;

    // Device emulation reaches guest memory through vm-memory.
    let first = mem
        .regions()
        .next()
        .expect("at least one region")
        .start_addr();
    mem.write_obj(0xfeed_u16, first)?;
    writeln!(
        out,
        "guest memory: {} regions, last address {:#x}; read back {:#x}",
        mem.physical_memory().map_or(0, |p| p.num_regions()),
        mem.physical_memory().map_or(0, |p| p.last_addr().0),
        mem.read_obj::<u16>(first)?
    )?;

    writeln!(out, "\nKVM memory slots:")?;
    writeln!(
        out,
        "slot  flags     guest_phys_addr     memory_size  userspace_addr"
    )?;
    for s in mem.kvm_slots(0) {
        let ro = if s.flags & KVM_MEM_READONLY != 0 {
            " (readonly)"
        } else {
            ""
        };
        writeln!(
            out,
            "{:4}  {:#06x}  {:#18x}  {:#14x}  {:#14x}{ro}",
            s.slot, s.flags, s.guest_phys_addr, s.memory_size, s.userspace_addr
        )?;
    }

    writeln!(out, "\nvhost-user memory table:")?;
    match mem.vhost_user_table() {
        Ok(table) => {
            writeln!(
                out,
                "fd  guest_phys_addr     memory_size  userspace_addr  mmap_offset"
            )?;
            for r in table {
                writeln!(
                    out,
                    "{:2}  {:#18x}  {:#14x}  {:#14x}  {:#11x}",
                    r.fd.as_raw_fd(),
                    r.guest_phys_addr,
                    r.memory_size,
                    r.userspace_addr,
                    r.mmap_offset
                )?;
            }
        }
        Err(e) => writeln!(out, "not exportable: {e}")?,
    }

    // Backends stay in use until the guest memory is gone.
    let id = mem.regions().next().expect("a region").id().to_owned();
    writeln!(
        out,
        "\nobject-del {id}: {}",
        tree.object_del(&id).unwrap_err()
    )?;
    drop(mem);
    tree.object_del(&id)?;
    writeln!(out, "object-del {id} after dropping the guest memory: ok")?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layout_becomes_kvm_slots_and_a_vhost_user_table() {
        let config = [
            "0=memory-backend-memfd,id=low,size=2M".to_owned(),
            "4G=memory-backend-ram,id=high,size=1M,share=on".to_owned(),
        ];
        let out = run(&config).unwrap();
        assert!(
            out.contains("guest memory: 2 regions, last address 0x1000fffff; read back 0xfeed"),
            "{out}"
        );
        assert!(out.contains("0x100000000"), "{out}");
        assert!(
            out.contains("object-del low: object 'low' is in use, can not be deleted"),
            "{out}"
        );
        assert!(out.contains("after dropping the guest memory: ok"), "{out}");
    }

    #[test]
    fn private_memory_is_not_exported() {
        let out = run(&["0=memory-backend-ram,id=r,size=1M".to_owned()]).unwrap();
        assert!(out.contains("not exportable:"), "{out}");
    }

    #[test]
    fn a_bad_entry_is_an_error() {
        let e = run(&["memory-backend-ram".to_owned()]).unwrap_err();
        assert!(
            e.to_string().contains("expected GUEST-ADDRESS=OBJECT"),
            "{e}"
        );
        let e = run(&["4X=memory-backend-ram,id=r,size=1M".to_owned()]).unwrap_err();
        assert_eq!(e.to_string(), "'4X'");
    }
}
