//! The regions as KVM memory slots (`KVM_SET_USER_MEMORY_REGION`).

use vm_memory::GuestMemoryRegion;

use crate::BackendGuestMemory;

/// `KVM_MEM_LOG_DIRTY_PAGES`: the slot's writes are logged (not set here;
/// a VMM adds it for migration).
pub const KVM_MEM_LOG_DIRTY_PAGES: u32 = 1 << 0;
/// `KVM_MEM_READONLY`: guest writes to the slot exit to the VMM as MMIO.
pub const KVM_MEM_READONLY: u32 = 1 << 1;

/// The fields of `struct kvm_userspace_memory_region`, in its order, for
/// the `KVM_SET_USER_MEMORY_REGION` ioctl.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KvmMemorySlot {
    /// Slot number (address space in bits 16 and up).
    pub slot: u32,
    /// [`KVM_MEM_READONLY`] for read-only backends, else 0.
    pub flags: u32,
    /// First guest physical address.
    pub guest_phys_addr: u64,
    /// Length in bytes (a multiple of the page size).
    pub memory_size: u64,
    /// Host virtual address of the first byte, in this process.
    pub userspace_addr: u64,
}

impl BackendGuestMemory {
    /// One KVM memory slot per region, by ascending guest address,
    /// numbered from `first_slot`. The host addresses stay valid for as
    /// long as `self` lives: delete the slots before dropping it.
    pub fn kvm_slots(&self, first_slot: u32) -> Vec<KvmMemorySlot> {
        self.regions()
            .zip(first_slot..)
            .map(|(r, slot)| KvmMemorySlot {
                slot,
                flags: if r.readonly() { KVM_MEM_READONLY } else { 0 },
                guest_phys_addr: r.start_addr().0,
                memory_size: r.len(),
                userspace_addr: r.host_addr(),
            })
            .collect()
    }
}
