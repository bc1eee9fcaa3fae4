//! Guest memory made of backends placed at guest physical addresses.

use std::fs::File;
use std::io;
use std::sync::Arc;

use qom::{Object, ObjectTree};
use vm_memory::bitmap::BS;
use vm_memory::guest_memory::GuestMemorySliceIterator;
use vm_memory::{
    FileOffset, GuestAddress, GuestMemory, GuestMemoryBackend, GuestMemoryError, GuestMemoryRegion,
    GuestRegionCollection, Permissions,
};

use crate::error::LayoutError;
use crate::raw::borrow_mapping;
use crate::region::{region_fd, BackendRegion};

/// The guest's physical memory: memory backends at guest physical
/// addresses, for vm-memory users (`Bytes` on [`GuestAddress`],
/// `GuestAddressSpace` through `Arc`/`&`), KVM ([`Self::kvm_slots`]) and
/// vhost-user ([`Self::vhost_user_table`]).
///
/// Each backend stays marked in use, and mapped, until this value (and
/// every `Arc` of its regions) is dropped.
///
/// Writes through [`GuestMemory`] (and so through `Bytes`) into a
/// read-only region fail with a `PermissionDenied` I/O error instead of
/// faulting. The unchecked [`GuestMemory::physical_memory`] view does not
/// know access modes, like every vm-memory `GuestMemoryBackend`: a write
/// there into a read-only region raises `SIGSEGV`.
#[derive(Debug, Clone)]
pub struct BackendGuestMemory {
    regions: GuestRegionCollection<BackendRegion>,
    // Whether any region is read-only: writes skip the search without.
    has_readonly: bool,
}

impl BackendGuestMemory {
    /// Places each backend at its guest address. Refused, with nothing
    /// left marked in use: an empty layout, an object that is not a
    /// created memory backend, a backend another user maps already or
    /// placed twice, an address that is not a multiple of the backend's
    /// page size, a region past the top of the address space, overlaps.
    ///
    /// Each backend is claimed with [`memory_backend::map_exclusive`]: the
    /// busy check and the in-use mark are one atomic step, so of several
    /// threads (or devices, `qom-devices` claims the same way) placing the
    /// same unused backend at the same moment exactly one succeeds and the
    /// others get [`LayoutError::Busy`].
    pub fn new<'a>(
        layout: impl IntoIterator<Item = (GuestAddress, &'a Object)>,
    ) -> Result<BackendGuestMemory, LayoutError> {
        let mut regions: Vec<BackendRegion> = Vec::new();
        for (start, obj) in layout {
            let id = memory_backend::region_name(obj);
            check_not_placed(regions.iter(), start, obj)?;
            regions.push(place(id, start, obj)?);
        }
        if regions.is_empty() {
            return Err(LayoutError::Empty);
        }
        regions.sort_by_key(|r| r.start_addr());
        check_disjoint(regions.iter())?;
        let regions = GuestRegionCollection::from_regions(regions)
            .expect("regions are sorted, disjoint and not empty");
        Ok(BackendGuestMemory::from_collection(regions))
    }

    /// [`Self::new`] with backends named by their id under `/objects`.
    pub fn from_ids(
        tree: &ObjectTree,
        layout: &[(GuestAddress, &str)],
    ) -> Result<BackendGuestMemory, LayoutError> {
        let objects = layout
            .iter()
            .map(|&(addr, id)| {
                tree.object(id)
                    .map(|o| (addr, o))
                    .ok_or_else(|| LayoutError::NotFound { id: id.to_owned() })
            })
            .collect::<Result<Vec<_>, _>>()?;
        BackendGuestMemory::new(objects.iter().map(|(a, o)| (*a, o)))
    }

    /// Hot-plug: a new guest memory with `obj` added at `start`, refused
    /// as [`Self::new`] refuses. `self` does not change; both share the
    /// regions they have in common (nothing is mapped twice), so a VMM
    /// can swap the new one in (`GuestMemoryAtomic`) while devices finish
    /// with the old one.
    pub fn with_backend(
        &self,
        start: GuestAddress,
        obj: &Object,
    ) -> Result<BackendGuestMemory, LayoutError> {
        check_not_placed(self.regions(), start, obj)?;
        let added = Arc::new(place(memory_backend::region_name(obj), start, obj)?);
        let mut all: Vec<&BackendRegion> = self.regions().chain([&*added]).collect();
        all.sort_by_key(|r| r.start_addr());
        check_disjoint(all.into_iter())?;
        let regions = self
            .regions
            .insert_region(added)
            .expect("the new region overlaps no other");
        Ok(BackendGuestMemory::from_collection(regions))
    }

    /// Hot-unplug: a new guest memory without the region that starts at
    /// `start`, and that region. The backend stays in use until the
    /// region and every guest memory holding it are dropped.
    pub fn without_region(
        &self,
        start: GuestAddress,
    ) -> Result<(BackendGuestMemory, Arc<BackendRegion>), LayoutError> {
        let len = self
            .regions()
            .find(|r| r.start_addr() == start)
            .map(|r| r.len())
            .ok_or(LayoutError::NoRegion { addr: start.0 })?;
        let (regions, removed) = self
            .regions
            .remove_region(start, len)
            .expect("a region starts there");
        Ok((BackendGuestMemory::from_collection(regions), removed))
    }

    /// The regions, by ascending guest address.
    pub fn regions(&self) -> impl Iterator<Item = &BackendRegion> {
        self.regions.iter()
    }

    fn from_collection(regions: GuestRegionCollection<BackendRegion>) -> BackendGuestMemory {
        let has_readonly = regions.iter().any(|r| r.readonly());
        BackendGuestMemory {
            regions,
            has_readonly,
        }
    }

    /// The first read-only region in `[addr, addr + count)`, if any.
    #[inline]
    fn readonly_in(&self, addr: GuestAddress, count: usize) -> Option<&BackendRegion> {
        if !self.has_readonly {
            return None;
        }
        let end = addr.0.saturating_add(count as u64);
        self.regions
            .iter()
            .find(|r| r.readonly() && r.start_addr().0 < end && addr.0 < r.end())
    }
}

/// Refuses `obj` when it is one of `placed` already (before the busy
/// check of [`place`] would report it less clearly).
fn check_not_placed<'a>(
    mut placed: impl Iterator<Item = &'a BackendRegion>,
    start: GuestAddress,
    obj: &Object,
) -> Result<(), LayoutError> {
    let host = memory_backend::mapping(obj).map(|m| m.as_ptr() as u64);
    match placed.find(|r| Some(r.host_addr()) == host) {
        Some(r) => Err(LayoutError::Duplicate {
            id: memory_backend::region_name(obj),
            first: r.start_addr().0,
            second: start.0,
        }),
        None => Ok(()),
    }
}

/// Refuses the first overlap of regions sorted by start address.
fn check_disjoint<'a>(sorted: impl Iterator<Item = &'a BackendRegion>) -> Result<(), LayoutError> {
    let mut prev: Option<&BackendRegion> = None;
    for b in sorted {
        if let Some(a) = prev.filter(|a| b.start_addr().0 < a.end()) {
            return Err(LayoutError::Overlap {
                first: a.id().to_owned(),
                first_start: a.start_addr().0,
                first_end: a.end() - 1,
                second: b.id().to_owned(),
                second_start: b.start_addr().0,
                second_end: b.end() - 1,
            });
        }
        prev = Some(b);
    }
    Ok(())
}

/// Maps one backend and wraps it for vm-memory.
fn place(id: String, start: GuestAddress, obj: &Object) -> Result<BackendRegion, LayoutError> {
    let guard = match memory_backend::map_exclusive(obj) {
        Ok(g) => g,
        Err(memory_backend::MapError::Busy { .. }) => return Err(LayoutError::Busy { id }),
        Err(e) => return Err(LayoutError::Backend(e.into())),
    };
    let page_size = guard.page_size();
    if start.0 % page_size as u64 != 0 {
        return Err(LayoutError::Misaligned {
            id,
            addr: start.0,
            page_size,
        });
    }
    let size = guard.len() as u64;
    if start.0.checked_add(size).is_none() {
        return Err(LayoutError::Overflow {
            id,
            addr: start.0,
            size,
        });
    }
    let file_offset = match region_fd(&guard) {
        Some(fd) => match fd.try_clone_to_owned() {
            Ok(own) => Some(FileOffset::new(File::from(own), guard.offset())),
            Err(source) => return Err(LayoutError::Dup { id, source }),
        },
        None => None,
    };
    let view = match borrow_mapping(&guard, file_offset) {
        Ok(v) => v,
        Err(source) => return Err(LayoutError::Wrap { id, source }),
    };
    Ok(BackendRegion::new(id, start, guard, view))
}

impl GuestMemory for BackendGuestMemory {
    type PhysicalMemory = GuestRegionCollection<BackendRegion>;
    type Bitmap = ();

    #[inline]
    fn check_range(&self, addr: GuestAddress, count: usize, access: Permissions) -> bool {
        GuestMemoryBackend::check_range(&self.regions, addr, count)
            && !(access.has_write() && self.readonly_in(addr, count).is_some())
    }

    #[inline]
    fn get_slices<'a>(
        &'a self,
        addr: GuestAddress,
        count: usize,
        access: Permissions,
    ) -> vm_memory::GuestMemoryResult<impl GuestMemorySliceIterator<'a, BS<'a, ()>>> {
        if access.has_write() {
            if let Some(r) = self.readonly_in(addr, count) {
                return Err(GuestMemoryError::IOError(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "guest memory at [{:#x}, {:#x}] is read-only (memory backend '{}')",
                        r.start_addr().0,
                        r.end() - 1,
                        r.id()
                    ),
                )));
            }
        }
        Ok(GuestMemoryBackend::get_slices(&self.regions, addr, count))
    }

    #[inline]
    fn physical_memory(&self) -> Option<&Self::PhysicalMemory> {
        Some(&self.regions)
    }
}
