//! NUMA binding of guest RAM (`policy` and `host-nodes`, QEMU's checks and
//! `mbind(2)` call).

use qom::EnumType;
use rustix::io::Errno;

use super::error::HostError;
use super::mapping::Mapping;

/// Node numbers must be below this (QEMU's `MAX_NODES`).
pub const MAX_NODES: u32 = 128;

const MPOL_DEFAULT: i32 = 0;
const MPOL_PREFERRED: i32 = 1;
const MPOL_BIND: i32 = 2;
const MPOL_INTERLEAVE: i32 = 3;
const MPOL_PREFERRED_MANY: i32 = 5;
const MPOL_MF_STRICT: u32 = 1;
const MPOL_MF_MOVE: u32 = 2;

/// The NUMA policy of a memory backend (QAPI `HostMemPolicy`), also the
/// type of the backend's `policy` property.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, qom::Enum)]
#[qom(name = "HostMemPolicy")]
pub enum HostMemPolicy {
    /// The process's default policy; `host-nodes` must be empty.
    #[default]
    Default,
    /// Prefer the given nodes (upgraded to `MPOL_PREFERRED_MANY` where the
    /// kernel has it, Linux 5.15+).
    Preferred,
    /// Only the given nodes.
    Bind,
    /// Interleave over the given nodes.
    Interleave,
}

impl HostMemPolicy {
    fn mode(self) -> i32 {
        match self {
            HostMemPolicy::Default => MPOL_DEFAULT,
            HostMemPolicy::Preferred => MPOL_PREFERRED,
            HostMemPolicy::Bind => MPOL_BIND,
            HostMemPolicy::Interleave => MPOL_INTERLEAVE,
        }
    }
}

impl Mapping {
    /// Applies `policy` with `nodes` to all of guest RAM, with QEMU's
    /// checks and messages: nodes need a policy other than `default` and
    /// the reverse; nothing happens for `default` without nodes. The call
    /// is `mbind(MPOL_MF_STRICT | MPOL_MF_MOVE)`.
    pub fn bind_numa(&self, policy: HostMemPolicy, nodes: &[u16]) -> Result<(), HostError> {
        let mut mask = [0u64; 3]; // MAX_NODES + 1 bits
        let mut maxnode = 0u64;
        for &n in nodes {
            if u32::from(n) >= MAX_NODES {
                return Err(HostError::NumaInvalidNode(n.into()));
            }
            mask[usize::from(n) / 64] |= 1 << (n % 64);
            maxnode = maxnode.max(u64::from(n) + 1);
        }
        if maxnode > 0 && policy == HostMemPolicy::Default {
            return Err(HostError::NumaNodesWithDefaultPolicy);
        }
        if maxnode == 0 && policy != HostMemPolicy::Default {
            return Err(HostError::NumaNodesMissing(policy.as_str()));
        }
        if maxnode == 0 {
            return Ok(());
        }
        let flags = MPOL_MF_STRICT | MPOL_MF_MOVE;
        let region = self.region();
        // The kernel wants one more than the number of bits it may read.
        let call = |mode| region.mbind(0, self.len(), mode, &mask, maxnode + 1, flags);
        let result = if policy == HostMemPolicy::Preferred {
            match call(MPOL_PREFERRED_MANY) {
                Err(Errno::INVAL) => call(MPOL_PREFERRED),
                r => r,
            }
        } else {
            call(policy.mode())
        };
        result.map_err(HostError::Numa)
    }
}
