//! Just enough ELF64 (little-endian) reading for the guest image: we need
//! the `.modinfo` of kernel modules (their dependencies), the `DT_NEEDED`
//! entries of the guest tools (which shared libraries to pack), whether a
//! test binary is static, and whether a vmlinux has a PVH entry note.
//! Every read is bounds-checked, so a truncated or foreign file is an error,
//! never a panic.

use anyhow::{bail, Context, Result};

/// A parsed view over the bytes of one ELF64 file.
pub struct Elf<'a> {
    data: &'a [u8],
    shoff: usize,
    shnum: usize,
    shentsize: usize,
    shstrndx: usize,
    phoff: usize,
    phnum: usize,
    phentsize: usize,
}

/// One section header, reduced to what we use.
struct Section {
    name: u32,
    kind: u32,
    offset: usize,
    size: usize,
    link: u32,
}

const SHT_DYNAMIC: u32 = 6;
const PT_INTERP: u32 = 3;
const PT_NOTE: u32 = 4;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
/// `XEN_ELFNOTE_PHYS32_ENTRY`: QEMU's `-kernel` boots an ELF vmlinux through
/// the PVH entry only if this note is present.
const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;

fn rd<const N: usize>(data: &[u8], off: usize) -> Result<[u8; N]> {
    data.get(off..off.checked_add(N).context("offset overflow")?)
        .and_then(|s| s.try_into().ok())
        .with_context(|| format!("ELF truncated at offset {off}"))
}
fn u16_at(data: &[u8], off: usize) -> Result<usize> {
    Ok(u16::from_le_bytes(rd(data, off)?) as usize)
}
fn u32_at(data: &[u8], off: usize) -> Result<u32> {
    Ok(u32::from_le_bytes(rd(data, off)?))
}
fn u64_at(data: &[u8], off: usize) -> Result<u64> {
    Ok(u64::from_le_bytes(rd(data, off)?))
}
fn usize_at(data: &[u8], off: usize) -> Result<usize> {
    usize::try_from(u64_at(data, off)?).context("ELF value does not fit usize")
}

fn slice(data: &[u8], off: usize, len: usize) -> Result<&[u8]> {
    off.checked_add(len)
        .and_then(|end| data.get(off..end))
        .with_context(|| format!("ELF range {off}+{len} outside the file"))
}

fn cstr_at(data: &[u8], off: usize) -> Result<&str> {
    let rest = data.get(off..).context("string offset outside its table")?;
    let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    std::str::from_utf8(&rest[..end]).context("string is not UTF-8")
}

impl<'a> Elf<'a> {
    /// Checks the identification bytes and reads the header.
    pub fn parse(data: &'a [u8]) -> Result<Self> {
        if data.len() < 64 || &data[..4] != b"\x7fELF" {
            bail!("not an ELF file");
        }
        if data[4] != 2 || data[5] != 1 {
            bail!("not a 64-bit little-endian ELF file");
        }
        let elf = Self {
            data,
            phoff: usize_at(data, 0x20)?,
            shoff: usize_at(data, 0x28)?,
            phentsize: u16_at(data, 0x36)?,
            phnum: u16_at(data, 0x38)?,
            shentsize: u16_at(data, 0x3a)?,
            shnum: u16_at(data, 0x3c)?,
            shstrndx: u16_at(data, 0x3e)?,
        };
        // Both header tables must lie inside the file with entries big
        // enough for the fields we read; after this check no offset sum
        // below can overflow.
        for (what, off, num, size, min) in [
            ("section", elf.shoff, elf.shnum, elf.shentsize, 64),
            ("program", elf.phoff, elf.phnum, elf.phentsize, 56),
        ] {
            if num == 0 {
                continue;
            }
            let end = num
                .checked_mul(size)
                .and_then(|len| len.checked_add(off))
                .filter(|&end| end <= data.len());
            if size < min || end.is_none() {
                bail!("ELF {what} header table is malformed");
            }
        }
        Ok(elf)
    }

    fn section(&self, i: usize) -> Result<Section> {
        let base = self.shoff + i * self.shentsize;
        Ok(Section {
            name: u32_at(self.data, base)?,
            kind: u32_at(self.data, base + 4)?,
            offset: usize_at(self.data, base + 24)?,
            size: usize_at(self.data, base + 32)?,
            link: u32_at(self.data, base + 40)?,
        })
    }

    fn sections(&self) -> Result<Vec<Section>> {
        (0..self.shnum).map(|i| self.section(i)).collect()
    }

    fn bytes(&self, s: &Section) -> Result<&'a [u8]> {
        slice(self.data, s.offset, s.size)
    }

    /// The contents of the section called `name`, if there is one.
    pub fn section_by_name(&self, name: &str) -> Result<Option<&'a [u8]>> {
        let secs = self.sections()?;
        let names = self.bytes(secs.get(self.shstrndx).context("bad e_shstrndx")?)?;
        for s in &secs {
            if cstr_at(names, s.name as usize)? == name {
                return self.bytes(s).map(Some);
            }
        }
        Ok(None)
    }

    /// The `DT_NEEDED` sonames, in order.
    pub fn needed(&self) -> Result<Vec<String>> {
        let secs = self.sections()?;
        let mut out = Vec::new();
        for s in secs.iter().filter(|s| s.kind == SHT_DYNAMIC) {
            let strtab = self.bytes(secs.get(s.link as usize).context("bad dynamic sh_link")?)?;
            let dynamic = self.bytes(s)?;
            for entry in dynamic.chunks_exact(16) {
                let tag = u64_at(entry, 0)?;
                if tag == DT_NULL {
                    break;
                }
                if tag == DT_NEEDED {
                    out.push(cstr_at(strtab, usize_at(entry, 8)?)?.to_owned());
                }
            }
        }
        Ok(out)
    }

    fn segments(&self) -> Result<Vec<(u32, usize, usize)>> {
        (0..self.phnum)
            .map(|i| {
                let base = self.phoff + i * self.phentsize;
                Ok((
                    u32_at(self.data, base)?,
                    usize_at(self.data, base + 8)?,
                    usize_at(self.data, base + 32)?,
                ))
            })
            .collect()
    }

    /// True when the program asks for no dynamic loader: it can run in a
    /// guest that has none of the host's libraries.
    pub fn is_static(&self) -> Result<bool> {
        Ok(!self.segments()?.iter().any(|s| s.0 == PT_INTERP))
    }

    /// True when a note segment carries the PVH entry point.
    pub fn has_pvh_entry(&self) -> Result<bool> {
        for (kind, off, len) in self.segments()? {
            if kind != PT_NOTE {
                continue;
            }
            let notes = slice(self.data, off, len)?;
            let mut p = 0;
            while p + 12 <= notes.len() {
                let namesz = u32_at(notes, p)? as usize;
                let descsz = u32_at(notes, p + 4)? as usize;
                let ntype = u32_at(notes, p + 8)?;
                let name = slice(notes, p + 12, namesz)?;
                if ntype == XEN_ELFNOTE_PHYS32_ENTRY && name.starts_with(b"Xen") {
                    return Ok(true);
                }
                p += 12 + namesz.div_ceil(4) * 4 + descsz.div_ceil(4) * 4;
            }
        }
        Ok(false)
    }
}

/// The `depends=` list of a kernel module (module names, possibly empty).
pub fn module_depends(ko: &[u8]) -> Result<Vec<String>> {
    let elf = Elf::parse(ko)?;
    let info = elf
        .section_by_name(".modinfo")?
        .context("no .modinfo section; not a kernel module")?;
    for field in info.split(|&b| b == 0) {
        if let Some(list) = field.strip_prefix(b"depends=") {
            let list = std::str::from_utf8(list).context("depends= is not UTF-8")?;
            return Ok(list
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect());
        }
    }
    Ok(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_garbage_without_panicking() {
        assert!(Elf::parse(b"").is_err());
        assert!(Elf::parse(&[0u8; 100]).is_err());
        let mut hdr = vec![0u8; 64];
        hdr[..6].copy_from_slice(b"\x7fELF\x02\x01");
        hdr[0x28] = 0xff; // section headers far beyond the end
        hdr[0x3a] = 64;
        hdr[0x3c] = 3;
        assert!(Elf::parse(&hdr).is_err());
        assert!(module_depends(&hdr).is_err());
        hdr[0x28..0x30].copy_from_slice(&u64::MAX.to_le_bytes()); // would overflow
        assert!(Elf::parse(&hdr).is_err());
    }

    #[test]
    fn reads_our_own_executable() {
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let elf = Elf::parse(&exe).unwrap();
        // A normal (dynamic) test binary of the host needs libc.
        if !elf.is_static().unwrap() {
            assert!(elf
                .needed()
                .unwrap()
                .iter()
                .any(|n| n.starts_with("libc.so")));
        }
        assert!(!elf.has_pvh_entry().unwrap());
    }
}
