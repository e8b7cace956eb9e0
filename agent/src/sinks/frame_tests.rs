use super::*;
use proptest::prelude::*;

fn frames(payloads: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in payloads {
        let start = begin_frame(&mut out);
        out.extend_from_slice(p);
        finish_frame(&mut out, start).unwrap();
    }
    out
}

fn scan(bytes: &[u8]) -> Vec<Scanned<'_>> {
    FrameScanner::new(bytes, 10, 8).collect()
}

#[test]
fn header_layout_is_len_then_crc_of_len_and_payload() {
    let bytes = frames(&[b"\x01abc"]);
    assert_eq!(&bytes[..4], &4u32.to_le_bytes());
    let crc = crc32c::crc32c(&[4, 0, 0, 0, 1, b'a', b'b', b'c']);
    assert_eq!(&bytes[4..8], &crc.to_le_bytes());
    assert_eq!(&bytes[8..], b"\x01abc");
}

#[test]
fn preamble_round_trips_and_refuses_newer_majors() {
    let mut out = Vec::new();
    write_preamble(&mut out, Version { major: 1, minor: 3 });
    assert_eq!(out, b"GTOPLOG\0\x03\x01");
    assert_eq!(read_preamble(&out, 1), Ok(Version { major: 1, minor: 3 }));
    write_preamble(&mut out, Version { major: 2, minor: 0 });
    let err = read_preamble(&out[10..], 1).unwrap_err();
    assert_eq!(
        err.to_string(),
        "log format 2.0 is newer than this greentop reads (up to 1.x): upgrade greentop to read it"
    );
    assert_eq!(read_preamble(b"", 1), Err(PreambleError::Empty));
    assert_eq!(read_preamble(b"GTOP", 1), Err(PreambleError::Short(4)));
    assert_eq!(read_preamble(b"XTOP", 1), Err(PreambleError::BadMagic));
    assert_eq!(read_preamble(&[0; 64], 1), Err(PreambleError::BadMagic));
}

#[test]
fn empty_and_oversized_payloads_are_refused() {
    let mut out = vec![9];
    let start = begin_frame(&mut out);
    assert_eq!(finish_frame(&mut out, start), Err(FrameTooLarge(0)));
    assert_eq!(out, vec![9], "the failed frame is removed");
}

#[test]
fn torn_tail_is_reported_after_every_whole_frame() {
    let bytes = frames(&[b"\x01one", b"\x02two", b"\x03three"]);
    let cut = &bytes[..bytes.len() - 2];
    let got = scan(cut);
    assert_eq!(got.len(), 3);
    assert_eq!(
        got[1],
        Scanned::Frame {
            offset: 10 + 12,
            payload: b"\x02two"
        }
    );
    assert_eq!(
        got[2],
        Scanned::Damage(Damage {
            offset: 10 + 24,
            len: 12,
            kind: DamageKind::Torn
        })
    );
}

#[test]
fn bit_flip_skips_one_frame_and_resumes() {
    let mut bytes = frames(&[b"\x01one", b"\x02two", b"\x03three"]);
    bytes[12 + 9] ^= 0x10;
    let got = scan(&bytes);
    assert_eq!(
        got,
        vec![
            Scanned::Frame {
                offset: 10,
                payload: b"\x01one"
            },
            Scanned::Damage(Damage {
                offset: 22,
                len: 12,
                kind: DamageKind::Corrupt
            }),
            Scanned::Frame {
                offset: 34,
                payload: b"\x03three"
            },
        ]
    );
}

#[test]
fn zero_filled_region_is_one_damage_and_reading_resumes() {
    let mut bytes = frames(&[b"\x01one"]);
    bytes.extend_from_slice(&[0; 4096]);
    bytes.extend(frames(&[b"\x02two"]));
    let got = scan(&bytes);
    assert_eq!(got.len(), 3);
    assert_eq!(
        got[1],
        Scanned::Damage(Damage {
            offset: 22,
            len: 4096,
            kind: DamageKind::Corrupt
        })
    );
    assert!(matches!(
        got[2],
        Scanned::Frame {
            payload: b"\x02two",
            ..
        }
    ));
}

proptest! {
    #[test]
    fn any_bytes_scan_without_panic_and_cover_the_input(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut covered = 0u64;
        for item in FrameScanner::new(&bytes, 0, 255) {
            let (offset, len) = match item {
                Scanned::Frame { offset, payload } => (offset, (payload.len() + FRAME_HEADER_LEN) as u64),
                Scanned::Damage(d) => (d.offset, d.len),
            };
            prop_assert_eq!(offset, covered);
            prop_assert!(len > 0);
            covered += len;
        }
        prop_assert_eq!(covered, bytes.len() as u64);
    }

    #[test]
    fn frames_survive_any_single_corruption_elsewhere(
        payloads in proptest::collection::vec(proptest::collection::vec(0u8..8, 1..40), 3..8),
        victim in 0usize..8,
        flip in any::<u8>(),
    ) {
        let refs: Vec<&[u8]> = payloads.iter().map(|p| p.as_slice()).collect();
        let mut bytes = frames(&refs);
        let victim = victim % payloads.len();
        let start: usize = payloads[..victim].iter().map(|p| p.len() + 8).sum();
        bytes[start + 8] ^= flip | 1;
        let good: Vec<&[u8]> = FrameScanner::new(&bytes, 0, 255)
            .filter_map(|s| match s { Scanned::Frame { payload, .. } => Some(payload), _ => None })
            .collect();
        let expected: Vec<&[u8]> = refs.iter().enumerate().filter(|(i, _)| *i != victim).map(|(_, p)| *p).collect();
        prop_assert_eq!(good, expected);
    }
}
