//! The reader against damaged segments: cut short, bit-flipped and zero-filled.
//! Every whole record outside the damage reads back exactly; the damage is
//! reported once, at its byte offset.
use super::record::RECORD_KIND_LIMIT;
use super::synth::{Synth, Workload};
use super::tests::{read_back, segment_bytes};
use super::{Notice, NoticeKind};
use crate::model::Interval;
use crate::sinks::frame::{FRAME_HEADER_LEN, FrameScanner, PREAMBLE_LEN, Scanned};

/// Kind 3: an interval record.
const INTERVAL_KIND: u8 = 3;

/// (offset, total length, record kind) of a frame.
type FrameAt = (usize, usize, u8);

/// Every frame of an intact segment.
fn frames(bytes: &[u8]) -> Vec<FrameAt> {
    FrameScanner::new(
        &bytes[PREAMBLE_LEN..],
        PREAMBLE_LEN as u64,
        RECORD_KIND_LIMIT,
    )
    .map(|s| match s {
        Scanned::Frame { offset, payload } => (
            offset as usize,
            payload.len() + FRAME_HEADER_LEN,
            payload[0],
        ),
        Scanned::Damage(d) => panic!("intact segment has damage {d:?}"),
    })
    .collect()
}

fn fixture() -> (Vec<Interval>, Vec<u8>, Vec<FrameAt>) {
    // No churn: every metadata record comes before the first interval.
    let mut work = Workload::new(12);
    work.churn_one_in = u64::MAX;
    let mut synth = Synth::new(work);
    let intervals: Vec<Interval> = (0..8).map(|_| synth.next_interval()).collect();
    let bytes = segment_bytes(&intervals);
    let frames = frames(&bytes);
    (intervals, bytes, frames)
}

/// (offset, length) of the interval frames, in order.
fn interval_frames(frames: &[FrameAt]) -> Vec<(usize, usize)> {
    frames
        .iter()
        .filter(|f| f.2 == INTERVAL_KIND)
        .map(|f| (f.0, f.1))
        .collect()
}

#[test]
fn truncated_anywhere_recovers_every_whole_record_and_reports_the_tail() {
    let (intervals, bytes, frames) = fixture();
    let ivals = interval_frames(&frames);
    let last_meta_end = frames
        .iter()
        .take_while(|f| f.2 != INTERVAL_KIND)
        .last()
        .unwrap();
    for cut in (last_meta_end.0 + last_meta_end.1..=bytes.len()).step_by(7) {
        let (back, notices) = read_back(&bytes[..cut]);
        let whole = ivals.iter().filter(|(at, len)| at + len <= cut).count();
        assert!(
            back == intervals[..whole],
            "cut at {cut}: {} read",
            back.len()
        );
        let boundary = frames.iter().any(|(at, len, _)| at + len == cut);
        let torn_at = frames
            .iter()
            .find(|(at, len, _)| *at < cut && at + len > cut);
        match torn_at {
            None => assert!(notices.is_empty() && boundary, "cut {cut}: {notices:?}"),
            Some((at, _, _)) => assert_eq!(
                notices,
                vec![Notice {
                    offset: *at as u64,
                    kind: NoticeKind::TornTail {
                        len: (cut - at) as u64
                    }
                }],
                "cut at {cut}"
            ),
        }
    }
}

#[test]
fn a_flipped_bit_loses_only_its_record() {
    let (intervals, bytes, frames) = fixture();
    let ivals = interval_frames(&frames);
    for (victim, (at, len)) in ivals.iter().enumerate() {
        for bit in [0usize, 3 * 8 + 1, 8 * 8 + 5, (len - 1) * 8 + 7] {
            let mut damaged = bytes.clone();
            damaged[at + bit / 8] ^= 1 << (bit % 8);
            let (back, notices) = read_back(&damaged);
            let mut expected = intervals.clone();
            expected.remove(victim);
            // Running totals are sums over what was read: recompute without the victim.
            assert!(
                strip_totals(back) == strip_totals(expected),
                "interval {victim}, bit {bit}"
            );
            let kind = if victim + 1 == ivals.len() {
                NoticeKind::TornTail { len: *len as u64 }
            } else {
                NoticeKind::Corrupt { len: *len as u64 }
            };
            assert_eq!(
                notices,
                vec![Notice {
                    offset: *at as u64,
                    kind
                }]
            );
        }
    }
}

fn strip_totals(mut intervals: Vec<Interval>) -> Vec<Interval> {
    for p in intervals.iter_mut().flat_map(|i| &mut i.processes) {
        (p.joules_total, p.gco2_total) = (0.0, 0.0);
    }
    intervals
}

#[test]
fn a_zero_filled_range_is_skipped_and_reading_resumes_after_it() {
    let (intervals, bytes, frames) = fixture();
    let ivals = interval_frames(&frames);
    // Zero from inside interval 2 to inside interval 5: 2..=5 are lost.
    let from = ivals[2].0 + 5;
    let to = ivals[5].0 + 9;
    let mut damaged = bytes.clone();
    damaged[from..to].fill(0);
    let (back, notices) = read_back(&damaged);
    let kept: Vec<Interval> = intervals
        .iter()
        .enumerate()
        .filter(|(i, _)| !(2..=5).contains(i))
        .map(|(_, i)| i.clone())
        .collect();
    assert!(strip_totals(back) == strip_totals(kept), "{notices:?}");
    let resume = ivals[6].0;
    assert_eq!(
        notices,
        vec![Notice {
            offset: ivals[2].0 as u64,
            kind: NoticeKind::Corrupt {
                len: (resume - ivals[2].0) as u64
            }
        }]
    );
}

#[test]
fn a_zero_filled_tail_reads_as_a_torn_tail() {
    let (intervals, mut bytes, _) = fixture();
    let end = bytes.len();
    bytes.resize(end + 4096, 0);
    let (back, notices) = read_back(&bytes);
    assert!(back == intervals);
    assert_eq!(
        notices,
        vec![Notice {
            offset: end as u64,
            kind: NoticeKind::TornTail { len: 4096 }
        }]
    );
}

#[test]
fn a_lost_metadata_record_keeps_the_energy_under_a_placeholder() {
    let (intervals, mut bytes, frames) = fixture();
    let meta = frames.iter().find(|f| f.2 == 1).unwrap();
    bytes[meta.0 + FRAME_HEADER_LEN + 2] ^= 0xff;
    let (back, notices) = read_back(&bytes);
    assert_eq!(back.len(), intervals.len());
    let lost = back[0]
        .processes
        .iter()
        .find(|p| p.comm == super::decode::LOST_META)
        .expect("a placeholder row");
    assert!(
        intervals[0]
            .processes
            .iter()
            .any(|p| p.joules.to_bits() == lost.joules.to_bits())
    );
    assert!(matches!(notices[0].kind, NoticeKind::Corrupt { .. }));
    assert!(
        notices
            .iter()
            .any(|n| matches!(n.kind, NoticeKind::LostMeta { .. }))
    );
}
