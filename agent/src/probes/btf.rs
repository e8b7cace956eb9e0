//! A minimal, panic-free reader of the kernel's raw BTF: just enough to find the byte
//! offsets of `struct task_struct` members the eBPF programs read.
//!
//! Format: <https://docs.kernel.org/bpf/btf.html>. Little-endian blobs only.
use std::path::{Path, PathBuf};

use agent_common::TaskOffsets;

const MAGIC: u16 = 0xEB9F;
/// Size of the fixed part of `struct btf_header` this reader needs.
const HEADER_LEN_BYTES: usize = 24;
/// Size of `struct btf_type` (name_off, info, size/type).
const TYPE_LEN_BYTES: usize = 12;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
/// Anonymous struct/union members are searched this deep (randstruct kernels wrap
/// `task_struct` fields in one); with the visit budget, bounds work on hostile input.
const MAX_NESTING: usize = 8;
const MAX_MEMBER_VISITS: usize = 1 << 20;

/// Errors reading BTF.
#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    #[error("reading BTF file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", bad_magic_message(*found))]
    BadMagic { found: u16 },
    #[error("unsupported BTF version {version} (only version 1 is known)")]
    BadVersion { version: u8 },
    #[error("BTF truncated or inconsistent at byte {at}")]
    Truncated { at: usize },
    #[error("unknown BTF kind {kind} in the type record at byte {at}")]
    UnknownKind { kind: u32, at: usize },
    #[error("no struct named `{name}` in BTF")]
    NoStruct { name: String },
    #[error("struct `{strukt}` has no member `{member}` in BTF")]
    NoMember { strukt: String, member: String },
    #[error("member `{member}` is not byte-aligned (bit offset {bit_offset})")]
    Unaligned { member: String, bit_offset: u32 },
}

fn bad_magic_message(found: u16) -> String {
    if found == MAGIC.swap_bytes() {
        "big-endian BTF is not supported (only little-endian)".to_string()
    } else {
        format!("bad BTF magic {found:#06x} (expected {MAGIC:#06x})")
    }
}

/// Offsets of `pid` and `tgid` in `task_struct`, from the BTF file at `btf_path`
/// (normally `/sys/kernel/btf/vmlinux`).
pub fn task_offsets(btf_path: &Path) -> Result<TaskOffsets, BtfError> {
    let blob = std::fs::read(btf_path).map_err(|source| BtfError::Io {
        path: btf_path.to_path_buf(),
        source,
    })?;
    let members = [
        "pid",
        "tgid",
        "real_parent",
        "group_leader",
        "start_boottime",
    ];
    match member_offsets_bytes(&blob, "task_struct", &members)?.as_slice() {
        [pid, tgid, real_parent, group_leader, start_boottime] => Ok(TaskOffsets {
            pid: *pid,
            tgid: *tgid,
            real_parent: *real_parent,
            group_leader: *group_leader,
            start_boottime: *start_boottime,
            pad: 0,
        }),
        // member_offsets_bytes returns one offset per requested member.
        _ => Err(BtfError::Truncated { at: 0 }),
    }
}

/// Byte offset of each of `members` in the first STRUCT named `struct_name`.
/// Members of anonymous nested structs/unions are found too (offsets added up).
pub fn member_offsets_bytes(
    btf: &[u8],
    struct_name: &str,
    members: &[&str],
) -> Result<Vec<u32>, BtfError> {
    let parsed = Parsed::new(btf)?;
    let strukt = parsed
        .types
        .iter()
        .copied()
        .find(|&at| {
            parsed
                .header(at)
                .is_some_and(|h| h.kind() == KIND_STRUCT && parsed.name_is(h.name_off, struct_name))
        })
        .ok_or_else(|| BtfError::NoStruct {
            name: struct_name.to_string(),
        })?;
    members
        .iter()
        .map(|member| {
            let mut visits_left = MAX_MEMBER_VISITS;
            let bits = parsed
                .find_member_bits(strukt, member, MAX_NESTING, &mut visits_left)?
                .ok_or_else(|| BtfError::NoMember {
                    strukt: struct_name.to_string(),
                    member: (*member).to_string(),
                })?;
            if bits % 8 != 0 {
                return Err(BtfError::Unaligned {
                    member: (*member).to_string(),
                    bit_offset: bits,
                });
            }
            Ok(bits / 8)
        })
        .collect()
}

/// One `struct btf_type` header.
#[derive(Clone, Copy)]
struct TypeHeader {
    name_off: u32,
    info: u32,
}

impl TypeHeader {
    fn kind(self) -> u32 {
        (self.info >> 24) & 0x1f
    }
    fn vlen(self) -> usize {
        (self.info & 0xffff) as usize
    }
    fn kind_flag(self) -> bool {
        self.info >> 31 == 1
    }
}

/// The type and string sections, with the start of every type record (type id N is
/// `types[N - 1]`, id 0 being `void`).
struct Parsed<'a> {
    type_section: &'a [u8],
    strings: &'a [u8],
    types: Vec<usize>,
}

impl<'a> Parsed<'a> {
    fn new(btf: &'a [u8]) -> Result<Self, BtfError> {
        let magic = btf
            .get(0..2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .ok_or(BtfError::Truncated { at: 0 })?;
        if magic != MAGIC {
            return Err(BtfError::BadMagic { found: magic });
        }
        let version = *btf.get(2).ok_or(BtfError::Truncated { at: 2 })?;
        if version != 1 {
            return Err(BtfError::BadVersion { version });
        }
        let field = |at: usize| read_u32(btf, at).map(|v| v as usize);
        let hdr_len = field(4)?;
        if hdr_len < HEADER_LEN_BYTES {
            return Err(BtfError::Truncated { at: 4 });
        }
        let section = |off_at: usize| -> Result<&'a [u8], BtfError> {
            let start = hdr_len.checked_add(field(off_at)?);
            let end = start.and_then(|s| s.checked_add(field(off_at + 4).ok()?));
            start
                .zip(end)
                .and_then(|(s, e)| btf.get(s..e))
                .ok_or(BtfError::Truncated { at: off_at })
        };
        let type_section = section(8)?;
        let strings = section(16)?;
        let types = record_starts(type_section)?;
        Ok(Parsed {
            type_section,
            strings,
            types,
        })
    }

    fn header(&self, at: usize) -> Option<TypeHeader> {
        let s = self.type_section;
        Some(TypeHeader {
            name_off: read_u32(s, at).ok()?,
            info: read_u32(s, at + 4).ok()?,
        })
    }

    /// True if the NUL-terminated string at `name_off` equals `name`.
    fn name_is(&self, name_off: u32, name: &str) -> bool {
        let start = name_off as usize;
        let want = name.as_bytes();
        self.strings.get(start..start + want.len()) == Some(want)
            && self.strings.get(start + want.len()) == Some(&0)
    }

    /// Bit offset of `member` in the struct/union record at `at`, searching anonymous
    /// struct/union members up to `depth` levels down and `visits_left` members in all.
    fn find_member_bits(
        &self,
        at: usize,
        member: &str,
        depth: usize,
        visits_left: &mut usize,
    ) -> Result<Option<u32>, BtfError> {
        let header = self.header(at).ok_or(BtfError::Truncated { at })?;
        for i in 0..header.vlen() {
            if *visits_left == 0 {
                return Ok(None);
            }
            *visits_left -= 1;
            let m = at + TYPE_LEN_BYTES + i * 12;
            let name_off = read_u32(self.type_section, m)?;
            let type_id = read_u32(self.type_section, m + 4)?;
            let raw = read_u32(self.type_section, m + 8)?;
            let bits = if header.kind_flag() {
                raw & 0x00ff_ffff
            } else {
                raw
            };
            if name_off != 0 {
                if self.name_is(name_off, member) {
                    return Ok(Some(bits));
                }
                continue;
            }
            if depth == 0 {
                continue;
            }
            if let Some(inner) = self.anonymous_aggregate(type_id)
                && let Some(inner_bits) =
                    self.find_member_bits(inner, member, depth - 1, visits_left)?
            {
                return Ok(Some(bits.saturating_add(inner_bits)));
            }
        }
        Ok(None)
    }

    /// The record of type `type_id` if it is a struct or union.
    fn anonymous_aggregate(&self, type_id: u32) -> Option<usize> {
        let at = *self.types.get((type_id as usize).checked_sub(1)?)?;
        let kind = self.header(at)?.kind();
        (kind == KIND_STRUCT || kind == KIND_UNION).then_some(at)
    }
}

/// Start offsets of every record in the type section.
fn record_starts(section: &[u8]) -> Result<Vec<usize>, BtfError> {
    let mut starts = Vec::new();
    let mut at = 0;
    while at < section.len() {
        // The whole 12-byte header must be there, whatever the kind.
        read_u32(section, at + 8)?;
        let header = TypeHeader {
            name_off: 0,
            info: read_u32(section, at + 4)?,
        };
        let trailing = trailing_len_bytes(header).ok_or(BtfError::UnknownKind {
            kind: header.kind(),
            at,
        })?;
        let next = at + TYPE_LEN_BYTES + trailing;
        if next > section.len() {
            return Err(BtfError::Truncated { at });
        }
        starts.push(at);
        at = next;
    }
    Ok(starts)
}

/// Length of the kind-specific data after a type header; None for an unknown kind.
fn trailing_len_bytes(header: TypeHeader) -> Option<usize> {
    let vlen = header.vlen();
    let len = match header.kind() {
        // INT: one u32 of encoding/offset/bits.
        1 => 4,
        // PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT, TYPE_TAG.
        2 | 7 | 8 | 9 | 10 | 11 | 12 | 16 | 18 => 0,
        // ARRAY: btf_array { type, index_type, nelems }.
        3 => 12,
        // STRUCT, UNION: btf_member; DATASEC: btf_var_secinfo; ENUM64: btf_enum64.
        4 | 5 | 15 | 19 => vlen * 12,
        // ENUM: btf_enum; FUNC_PROTO: btf_param.
        6 | 13 => vlen * 8,
        // VAR: btf_var { linkage }; DECL_TAG: btf_decl_tag { component_idx }.
        14 | 17 => 4,
        _ => return None,
    };
    Some(len)
}

fn read_u32(bytes: &[u8], at: usize) -> Result<u32, BtfError> {
    at.checked_add(4)
        .and_then(|end| bytes.get(at..end))
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(BtfError::Truncated { at })
}

#[cfg(test)]
mod tests;
