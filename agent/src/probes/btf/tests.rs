//! Tests of the BTF reader on hand-built blobs and on the running kernel's BTF.
use super::*;

/// Test-only BTF encoder: records go in the order they are added (type ids from 1).
struct Encoder {
    types: Vec<u8>,
    strings: Vec<u8>,
    next_id: u32,
}

impl Encoder {
    fn new() -> Self {
        Encoder {
            types: Vec::new(),
            strings: vec![0],
            next_id: 1,
        }
    }

    fn name(&mut self, name: &str) -> u32 {
        if name.is_empty() {
            return 0;
        }
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(name.as_bytes());
        self.strings.push(0);
        off
    }

    /// Adds a record; `trailing` is its kind-specific data as u32 words.
    fn record(&mut self, kind: u32, flag: bool, name: &str, vlen: u32, trailing: &[u32]) -> u32 {
        let name_off = self.name(name);
        let info = (u32::from(flag) << 31) | (kind << 24) | vlen;
        for word in [name_off, info, 8].iter().chain(trailing) {
            self.types.extend_from_slice(&word.to_le_bytes());
        }
        self.next_id += 1;
        self.next_id - 1
    }

    /// Adds a record of a kind that refers to another type (typedef, const, …).
    fn refer(&mut self, kind: u32, name: &str, type_id: u32) -> u32 {
        let name_off = self.name(name);
        for word in [name_off, kind << 24, type_id] {
            self.types.extend_from_slice(&word.to_le_bytes());
        }
        self.next_id += 1;
        self.next_id - 1
    }

    /// Adds a struct (kind 4) or union (kind 5) with `(name, type, offset)` members.
    fn aggregate(
        &mut self,
        kind: u32,
        flag: bool,
        name: &str,
        members: &[(&str, u32, u32)],
    ) -> u32 {
        let mut words = Vec::new();
        for (member, type_id, offset) in members {
            words.extend([self.name(member), *type_id, *offset]);
        }
        self.record(kind, flag, name, members.len() as u32, &words)
    }

    fn finish(&self) -> Vec<u8> {
        let mut blob = Vec::new();
        blob.extend_from_slice(&MAGIC.to_le_bytes());
        blob.extend_from_slice(&[1, 0]);
        let type_len = self.types.len() as u32;
        for word in [24, 0, type_len, type_len, self.strings.len() as u32] {
            blob.extend_from_slice(&word.to_le_bytes());
        }
        blob.extend_from_slice(&self.types);
        blob.extend_from_slice(&self.strings);
        blob
    }
}

/// A struct `target` preceded by one record of every other kind (and decoys
/// named `target` that are not structs).
fn every_kind_blob() -> Vec<u8> {
    let mut e = Encoder::new();
    let int = e.record(1, false, "int", 0, &[32]);
    e.record(2, false, "", 0, &[]);
    e.record(3, false, "", 0, &[int, int, 4]);
    e.aggregate(5, false, "target", &[("pid", int, 64)]);
    let (a, b, c) = (e.name("A"), e.name("B"), e.name("C"));
    e.record(6, false, "target", 2, &[a, 0, b, 1]);
    e.record(7, false, "target", 0, &[]);
    for kind in [8, 9, 10, 11, 12] {
        e.record(kind, false, "target", 0, &[]);
    }
    e.record(13, false, "", 2, &[0, int, 0, int]);
    e.record(14, false, "var", 0, &[1]);
    e.record(15, false, ".data", 1, &[int, 0, 4]);
    e.record(16, false, "double", 0, &[]);
    e.record(17, false, "tag", 0, &[u32::MAX]);
    e.record(18, false, "tag", 0, &[]);
    e.record(19, false, "target", 1, &[c, 1, 0]);
    e.aggregate(
        4,
        false,
        "target",
        &[("state", int, 0), ("pid", int, 96), ("tgid", int, 128)],
    );
    e.finish()
}

/// A member `offset` of a struct with `kind_flag` set.
fn bitfield(size_bits: u32, bit_offset: u32) -> u32 {
    (size_bits << 24) | bit_offset
}

fn bitfield_blob() -> Vec<u8> {
    let mut e = Encoder::new();
    let int = e.record(1, false, "int", 0, &[32]);
    let inner = e.aggregate(5, false, "", &[("x", int, 0), ("nested", int, 0)]);
    e.aggregate(
        4,
        true,
        "bits",
        &[
            ("low", int, bitfield(3, 0)),
            ("whole", int, bitfield(0, 64)),
            ("odd", int, bitfield(1, 3)),
            ("", inner, 128),
            ("after", int, bitfield(7, 256)),
        ],
    );
    e.aggregate(4, false, "plain", &[("odd", int, 12)]);
    e.finish()
}

/// Blob, struct, members, and the offsets or error message wanted.
type LookupCase<'a> = (&'a [u8], &'a str, &'a [&'a str], Result<Vec<u32>, &'a str>);

fn lookup(blob: &[u8], strukt: &str, members: &[&str]) -> Result<Vec<u32>, String> {
    member_offsets_bytes(blob, strukt, members).map_err(|err| err.to_string())
}

#[test]
fn member_offsets_in_hand_built_blobs() {
    let every = every_kind_blob();
    let bits = bitfield_blob();
    let cases: &[LookupCase] = &[
        (&every, "target", &["pid", "tgid"], Ok(vec![12, 16])),
        (&every, "target", &["tgid", "state"], Ok(vec![16, 0])),
        (&every, "target", &[], Ok(vec![])),
        (
            &every,
            "targe",
            &["pid"],
            Err("no struct named `targe` in BTF"),
        ),
        (&every, "int", &["pid"], Err("no struct named `int` in BTF")),
        (
            &every,
            "target",
            &["comm"],
            Err("struct `target` has no member `comm` in BTF"),
        ),
        (
            &every,
            "target",
            &["pi"],
            Err("struct `target` has no member `pi` in BTF"),
        ),
        (
            &bits,
            "bits",
            &["low", "whole", "after"],
            Ok(vec![0, 8, 32]),
        ),
        (&bits, "bits", &["nested"], Ok(vec![16])),
        (
            &bits,
            "bits",
            &["odd"],
            Err("member `odd` is not byte-aligned (bit offset 3)"),
        ),
        (
            &bits,
            "plain",
            &["odd"],
            Err("member `odd` is not byte-aligned (bit offset 12)"),
        ),
    ];
    for (blob, strukt, members, want) in cases {
        let want = want.clone().map_err(str::to_string);
        assert_eq!(lookup(blob, strukt, members), want, "{strukt} {members:?}");
    }
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    for (blob, strukt, member) in [
        (every_kind_blob(), "target", "pid"),
        (bitfield_blob(), "bits", "low"),
    ] {
        assert!(lookup(&blob, strukt, &[member]).is_ok());
        for len in 0..blob.len() {
            let got = member_offsets_bytes(&blob[..len], strukt, &[member]);
            assert!(got.is_err(), "length {len} of {}", blob.len());
        }
    }
}

#[test]
fn malformed_headers_and_records_are_errors() {
    let good = every_kind_blob();
    let patched = |at: usize, bytes: &[u8]| {
        let mut blob = good.clone();
        blob[at..at + bytes.len()].copy_from_slice(bytes);
        lookup(&blob, "target", &["pid"])
    };
    // The first record is the INT at type-section byte 0, i.e. blob byte 24.
    let kind_byte_at = 24 + 7;
    let cases: &[(Result<Vec<u32>, String>, &str)] = &[
        (
            patched(0, &[0xeb, 0x9f]),
            "big-endian BTF is not supported (only little-endian)",
        ),
        (
            patched(0, &[0x12, 0x34]),
            "bad BTF magic 0x3412 (expected 0xeb9f)",
        ),
        (
            patched(2, &[2]),
            "unsupported BTF version 2 (only version 1 is known)",
        ),
        (
            patched(4, &[8, 0, 0, 0]),
            "BTF truncated or inconsistent at byte 4",
        ),
        (
            patched(12, &[0xff, 0xff, 0xff, 0xff]),
            "BTF truncated or inconsistent at byte 8",
        ),
        (
            patched(20, &[0xff, 0xff, 0xff, 0xff]),
            "BTF truncated or inconsistent at byte 16",
        ),
        (
            patched(kind_byte_at, &[20]),
            "unknown BTF kind 20 in the type record at byte 0",
        ),
        (
            patched(kind_byte_at, &[0]),
            "unknown BTF kind 0 in the type record at byte 0",
        ),
        (
            lookup(&[], "target", &[]),
            "BTF truncated or inconsistent at byte 0",
        ),
    ];
    for (got, want) in cases {
        assert_eq!(got.as_ref().map_err(String::as_str), Err(*want));
    }
}

#[test]
fn self_referencing_anonymous_members_terminate() {
    let mut e = Encoder::new();
    // Type 1 is an anonymous struct of 50 anonymous members that are itself:
    // 50^8 paths without the visit budget.
    e.aggregate(4, false, "", &[("", 1, 0); 50]);
    e.aggregate(4, false, "loop", &[("", 1, 0), ("", 1, 0)]);
    let got = lookup(&e.finish(), "loop", &["x"]);
    assert_eq!(
        got,
        Err("struct `loop` has no member `x` in BTF".to_string())
    );
}

/// `outer { int a; struct { entity se; }; const_entity ce; int n; }` where `entity`
/// is a typedef of `struct inner { int x; long runtime; }`.
fn nested_blob() -> Vec<u8> {
    let mut e = Encoder::new();
    let int = e.record(1, false, "int", 0, &[32]);
    let inner = e.aggregate(4, false, "inner", &[("x", int, 0), ("runtime", int, 64)]);
    let entity = e.refer(8, "entity", inner);
    let const_entity = e.refer(10, "", entity);
    let anon = e.aggregate(4, false, "", &[("se", entity, 0)]);
    // A typedef of itself: the chain must end in an error, not a hang.
    let looped_id = e.next_id;
    let looped = e.refer(8, "looped", looped_id);
    e.aggregate(
        4,
        false,
        "outer",
        &[
            ("a", int, 0),
            ("", anon, 64),
            ("ce", const_entity, 256),
            ("n", int, 448),
            ("l", looped, 480),
        ],
    );
    e.finish()
}

#[test]
fn nested_member_paths_through_typedefs_and_qualifiers() {
    let blob = nested_blob();
    let path = |members: &[&str]| {
        member_path_offset_bytes(&blob, "outer", members).map_err(|e| e.to_string())
    };
    let cases: &[(&[&str], Result<u32, &str>)] = &[
        (&["a"], Ok(0)),
        (&["se", "runtime"], Ok(16)),
        (&["se", "x"], Ok(8)),
        (&["ce", "runtime"], Ok(40)),
        (&["n"], Ok(56)),
        (
            &["se", "sum"],
            Err("struct `outer.se` has no member `sum` in BTF"),
        ),
        (
            &["n", "x"],
            Err("member `outer.n` is not a struct or union in BTF"),
        ),
        (
            &["l", "x"],
            Err("member `outer.l` is not a struct or union in BTF"),
        ),
        (&["b"], Err("struct `outer` has no member `b` in BTF")),
    ];
    for (members, want) in cases {
        assert_eq!(path(members), want.map_err(str::to_string), "{members:?}");
    }
}

#[test]
fn missing_file_names_the_path() {
    let err = read_btf(Path::new("/nonexistent/btf/vmlinux")).unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/btf/vmlinux"),
        "{err}"
    );
}

/// Deliberately fails (does not skip) where the kernel exposes no BTF.
#[test]
fn real_kernel_task_struct_offsets() {
    let blob = read_btf(Path::new("/sys/kernel/btf/vmlinux")).unwrap();
    let offsets = task_offsets(&blob).unwrap();
    let runtime = runtime_offset(&blob).unwrap();
    assert!(
        runtime > 0 && runtime < 16384 && runtime.is_multiple_of(8),
        "se.sum_exec_runtime at {runtime}"
    );
    assert!(offsets.pid > 0 && offsets.pid < 8192, "{offsets:?}");
    assert!(offsets.tgid > 0 && offsets.tgid < 8192, "{offsets:?}");
    assert_eq!(offsets.tgid, offsets.pid + 4, "{offsets:?}");
    assert!(
        offsets.complete(),
        "parent, leader and start time found too: {offsets:?}"
    );
    for offset in [
        offsets.real_parent,
        offsets.group_leader,
        offsets.start_boottime,
    ] {
        assert!(offset < 16384, "{offsets:?}");
    }
}

#[test]
fn every_single_byte_corruption_is_handled_without_panic() {
    for blob in [every_kind_blob(), bitfield_blob()] {
        for at in 0..blob.len() {
            for value in [0x00, 0x07, 0x80, 0xff] {
                let mut bad = blob.clone();
                bad[at] = value;
                // Any answer will do, as long as it is one.
                let _ = member_offsets_bytes(&bad, "target", &["pid", "tgid"]);
                let _ = member_offsets_bytes(&bad, "bits", &["nested", "after"]);
            }
        }
    }
}
