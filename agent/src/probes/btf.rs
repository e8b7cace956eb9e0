//! A minimal, panic-free reader of the kernel's raw BTF: just enough to find the byte
//! offsets of `struct task_struct` members the eBPF programs read (nested ones too,
//! like `se.sum_exec_runtime`).
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
/// TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG: kinds that only refer to another type.
const KINDS_REFERRING: [u32; 5] = [8, 9, 10, 11, 18];
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
    #[error("member `{member}` is not a struct or union in BTF")]
    NotAggregate { member: String },
}

fn bad_magic_message(found: u16) -> String {
    if found == MAGIC.swap_bytes() {
        "big-endian BTF is not supported (only little-endian)".to_string()
    } else {
        format!("bad BTF magic {found:#06x} (expected {MAGIC:#06x})")
    }
}

/// The BTF blob at `btf_path` (normally `/sys/kernel/btf/vmlinux`).
pub fn read_btf(btf_path: &Path) -> Result<Vec<u8>, BtfError> {
    std::fs::read(btf_path).map_err(|source| BtfError::Io {
        path: btf_path.to_path_buf(),
        source,
    })
}

/// Offsets of the `task_struct` members the lifecycle programs read; the runtime
/// offset is left 0 (see [`runtime_offset`]).
pub fn task_offsets(btf: &[u8]) -> Result<TaskOffsets, BtfError> {
    let members = [
        "pid",
        "tgid",
        "real_parent",
        "group_leader",
        "start_boottime",
    ];
    match member_offsets_bytes(btf, "task_struct", &members)?.as_slice() {
        [pid, tgid, real_parent, group_leader, start_boottime] => Ok(TaskOffsets {
            pid: *pid,
            tgid: *tgid,
            real_parent: *real_parent,
            group_leader: *group_leader,
            start_boottime: *start_boottime,
            ..TaskOffsets::default()
        }),
        // member_offsets_bytes returns one offset per requested member.
        _ => Err(BtfError::Truncated { at: 0 }),
    }
}

/// Offset of `se.sum_exec_runtime` in `task_struct`: the scheduler's runtime of a task,
/// which the ledger charges from.
pub fn runtime_offset(btf: &[u8]) -> Result<u32, BtfError> {
    member_path_offset_bytes(btf, "task_struct", &["se", "sum_exec_runtime"])
}

/// Byte offset of each of `members` in the first STRUCT named `struct_name`.
/// Members of anonymous nested structs/unions are found too (offsets added up).
pub fn member_offsets_bytes(
    btf: &[u8],
    struct_name: &str,
    members: &[&str],
) -> Result<Vec<u32>, BtfError> {
    let parsed = Parsed::new(btf)?;
    let strukt = parsed.find_struct(struct_name)?;
    members
        .iter()
        .map(|member| {
            parsed
                .member(strukt, struct_name, member)
                .map(|(bits, _)| bits)
                .and_then(|bits| byte_offset(member, bits))
        })
        .collect()
}

/// Byte offset of a nested member, `path[0].path[1]…`, in the struct `struct_name`:
/// every member but the last must be a struct or union (through typedefs/qualifiers).
pub fn member_path_offset_bytes(
    btf: &[u8],
    struct_name: &str,
    path: &[&str],
) -> Result<u32, BtfError> {
    let parsed = Parsed::new(btf)?;
    let mut at = parsed.find_struct(struct_name)?;
    let mut outer = struct_name.to_string();
    let mut bits_total = 0u32;
    for (i, member) in path.iter().enumerate() {
        let (bits, type_id) = parsed.member(at, &outer, member)?;
        bits_total = bits_total.saturating_add(bits);
        outer = format!("{outer}.{member}");
        if i + 1 < path.len() {
            at = parsed.aggregate_through_modifiers(type_id).ok_or_else(|| {
                BtfError::NotAggregate {
                    member: outer.clone(),
                }
            })?;
        }
    }
    byte_offset(&outer, bits_total)
}

fn byte_offset(member: &str, bits: u32) -> Result<u32, BtfError> {
    if !bits.is_multiple_of(8) {
        return Err(BtfError::Unaligned {
            member: member.to_string(),
            bit_offset: bits,
        });
    }
    Ok(bits / 8)
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
    /// The record of the first STRUCT named `name`.
    fn find_struct(&self, name: &str) -> Result<usize, BtfError> {
        self.types
            .iter()
            .copied()
            .find(|&at| {
                self.header(at)
                    .is_some_and(|h| h.kind() == KIND_STRUCT && self.name_is(h.name_off, name))
            })
            .ok_or_else(|| BtfError::NoStruct {
                name: name.to_string(),
            })
    }

    /// (bit offset, type id) of `member` in the aggregate at `at`, named `strukt` in errors.
    fn member(&self, at: usize, strukt: &str, member: &str) -> Result<(u32, u32), BtfError> {
        let mut visits_left = MAX_MEMBER_VISITS;
        self.find_member(at, member, MAX_NESTING, &mut visits_left)?
            .ok_or_else(|| BtfError::NoMember {
                strukt: strukt.to_string(),
                member: member.to_string(),
            })
    }

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

    /// (bit offset, type id) of `member` in the struct/union record at `at`, searching
    /// anonymous struct/union members up to `depth` levels down and `visits_left`
    /// members in all.
    fn find_member(
        &self,
        at: usize,
        member: &str,
        depth: usize,
        visits_left: &mut usize,
    ) -> Result<Option<(u32, u32)>, BtfError> {
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
                    return Ok(Some((bits, type_id)));
                }
                continue;
            }
            if depth == 0 {
                continue;
            }
            if let Some(inner) = self.anonymous_aggregate(type_id)
                && let Some((inner_bits, inner_type)) =
                    self.find_member(inner, member, depth - 1, visits_left)?
            {
                return Ok(Some((bits.saturating_add(inner_bits), inner_type)));
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

    /// The struct or union `type_id` names, through typedefs, qualifiers and type
    /// tags (a bounded chain: hostile BTF may loop).
    fn aggregate_through_modifiers(&self, mut type_id: u32) -> Option<usize> {
        for _ in 0..MAX_NESTING {
            if let Some(at) = self.anonymous_aggregate(type_id) {
                return Some(at);
            }
            let at = *self.types.get((type_id as usize).checked_sub(1)?)?;
            if !KINDS_REFERRING.contains(&self.header(at)?.kind()) {
                return None;
            }
            // The referred type id is the third word of the header.
            type_id = read_u32(self.type_section, at + 8).ok()?;
        }
        None
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
