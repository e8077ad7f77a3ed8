//! Torn tails, corruption, repair, and data from a newer orca.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt as _;

use orca_actors::journal::segment::{encode_frame, FrameHead, SegmentHeader, HEADER_LEN};
use orca_actors::journal::{
    open_writer, read, repair_truncate_at_corruption, verify, JournalError, ReadRange,
};
use orca_actors::model::Timestamp;

use super::*;

/// A one-segment journal of `sizes` batches; returns the segment path and
/// the segment's length after each batch (frame boundaries).
async fn build(dir: &Path, sizes: &[usize]) -> (PathBuf, Vec<u64>) {
    let (h, _) = open_writer(dir, never()).await.unwrap();
    let seg = segments(dir)[0].clone();
    let mut ends = vec![file_len(&seg)];
    let mut next = 1;
    for &n in sizes {
        h.append(batch(next, n)).await.unwrap();
        next += n as u64;
        ends.push(file_len(&seg));
    }
    h.stop().await;
    (seg, ends)
}

fn flip_bit(path: &Path, offset: u64, bit: u8) {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset).unwrap();
    b[0] ^= 1 << bit;
    f.write_all_at(&b, offset).unwrap();
}

fn truncate(path: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

/// Reopens `dir` for write and checks it recovered to `last_seq`, reporting
/// `dropped` bytes; then appends one batch and checks seqs continue.
async fn reopen_recovers(dir: &Path, last_seq: u64, dropped: u64, seg: &Path, at: u64) {
    let (h, report) = open_writer(dir, never()).await.unwrap();
    assert_eq!(report.last_seq, last_seq);
    assert_eq!(report.dropped_bytes, dropped);
    if dropped > 0 {
        let w = report.warnings.join("\n");
        let name = seg.file_name().unwrap().to_str().unwrap();
        assert!(
            w.contains(&format!("dropped {dropped} bytes"))
                && w.contains(name)
                && w.contains(&format!("at byte {at}")),
            "{w}"
        );
    } else {
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    }
    let ack = h.append(batch(last_seq + 1, 2)).await.unwrap();
    assert_eq!(ack.first_seq, last_seq + 1);
    h.stop().await;
    assert_contiguous(&all(dir), last_seq + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_tail_at_every_offset_of_the_last_frame() {
    let tmp = tempfile::tempdir().unwrap();
    let pristine = tmp.path().join("pristine");
    let sizes = [2, 1, 3, 2];
    let (seg, ends) = build(&pristine, &sizes).await;
    let before_last = ends[ends.len() - 2];
    let end = ends[ends.len() - 1];
    let last_good = 6; // 2 + 1 + 3
    for cut in before_last..end {
        let dir = tmp.path().join(format!("cut-{cut}"));
        copy_dir(&pristine, &dir);
        let seg = dir.join(seg.file_name().unwrap());
        truncate(&seg, cut);
        // A reader sees the incomplete frame as not yet written.
        let seen: Vec<u64> = all(&dir).iter().map(|e| e.seq).collect();
        assert_eq!(seen, (1..=last_good).collect::<Vec<_>>(), "cut at {cut}");
        // verify reports a torn tail (or nothing), never corruption.
        let v = verify(&dir).unwrap();
        assert!(v.is_ok(), "cut at {cut}: {:?}", v.corruption);
        assert_eq!(v.torn_tail.is_some(), cut > before_last);
        reopen_recovers(&dir, last_good, cut - before_last, &seg, before_last).await;
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_checksum_in_the_last_frame_is_a_torn_tail() {
    let tmp = tempfile::tempdir().unwrap();
    let pristine = tmp.path().join("pristine");
    let (seg, ends) = build(&pristine, &[1, 2, 3]).await;
    let (start, end) = (ends[2], ends[3]);
    for offset in start..end {
        let dir = tmp.path().join(format!("flip-{offset}"));
        copy_dir(&pristine, &dir);
        let seg = dir.join(seg.file_name().unwrap());
        flip_bit(&seg, offset, (offset % 8) as u8);
        assert_eq!(all(&dir).len(), 3, "flip at {offset}");
        reopen_recovers(&dir, 3, end - start, &seg, start).await;
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zeros_or_garbage_after_the_last_frame_are_a_torn_tail() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("j");
    let (seg, ends) = build(&dir, &[2, 2]).await;
    let end = *ends.last().unwrap();
    // A crash can leave the file longer than what was written (zeros).
    let f = OpenOptions::new().append(true).open(&seg).unwrap();
    f.set_len(end + 4096).unwrap();
    reopen_recovers(&dir, 4, 4096, &seg, end).await;
    // Garbage that is no frame.
    let end = file_len(&seg);
    f.write_all_at(&[0xA5; 77], end).unwrap();
    reopen_recovers(&dir, 6, 77, &seg, end).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_segment_creation_is_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("j");
    build(&dir, &[3]).await;
    // A segment whose creation was interrupted: only part of its header.
    let torn = dir.join(orca_actors::journal::segment::segment_file_name(4));
    let header = SegmentHeader::new(4, Timestamp(1)).encode();
    std::fs::write(&torn, &header[..10]).unwrap();
    assert_eq!(all(&dir).len(), 3, "readers see nothing in it");
    let (h, report) = open_writer(&dir, never()).await.unwrap();
    assert_eq!(report.last_seq, 3);
    assert!(
        report.warnings[0].contains("removed"),
        "{:?}",
        report.warnings
    );
    h.append(batch(4, 1)).await.unwrap();
    h.stop().await;
    assert_contiguous(&all(&dir), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_middle_frame_is_corruption_and_repair_cuts_it() {
    let tmp = tempfile::tempdir().unwrap();
    let pristine = tmp.path().join("pristine");
    let sizes = [1, 2, 3, 2, 1, 2];
    let (seg, ends) = build(&pristine, &sizes).await;
    // The middle frame: batch 4 (seqs 7..8).
    let (start, end) = (ends[3], ends[4]);
    let name = seg.file_name().unwrap().to_str().unwrap().to_string();
    for offset in start..end {
        let dir = tmp.path().join(format!("flip-{offset}"));
        copy_dir(&pristine, &dir);
        let seg = dir.join(&name);
        flip_bit(&seg, offset, (offset % 7) as u8);
        let before = std::fs::read(&seg).unwrap();
        // Opening fails naming the segment and the frame's offset.
        let err = open_writer(&dir, never()).await.unwrap_err();
        match &err {
            JournalError::Corrupt {
                segment,
                offset: at,
                ..
            } => {
                assert_eq!(
                    (segment.as_path(), *at),
                    (seg.as_path(), start),
                    "flip at {offset}"
                );
            }
            other => panic!("flip at {offset}: expected corruption, got {other}"),
        }
        let msg = err.to_string();
        assert!(
            msg.contains(&name) && msg.contains(&format!("byte {start}")),
            "{msg}"
        );
        // Nothing was rewritten.
        assert_eq!(std::fs::read(&seg).unwrap(), before);
        // A reader stops with the same error after the good events.
        let mut got = Vec::new();
        let mut error = None;
        for e in read(&dir, ReadRange::all()).unwrap() {
            match e {
                Ok(e) => got.push(e.seq),
                Err(e) => error = Some(e),
            }
        }
        assert_eq!(got, (1..=6).collect::<Vec<_>>());
        assert!(matches!(error, Some(JournalError::Corrupt { offset: o, .. }) if o == start));
        // verify reports it.
        let v = verify(&dir).unwrap();
        let c = v.corruption.expect("verify finds the corruption");
        assert_eq!((c.segment.as_path(), c.offset), (seg.as_path(), start));
        assert_eq!(v.last_seq, 6);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    // repair --truncate-at-corruption keeps a backup and cuts there.
    let dir = tmp.path().join("repair");
    copy_dir(&pristine, &dir);
    let seg = dir.join(&name);
    flip_bit(&seg, start + 10, 3);
    let damaged = std::fs::read(&seg).unwrap();
    let r = repair_truncate_at_corruption(&dir).unwrap();
    assert_eq!(r.cut_segment.as_deref(), Some(seg.as_path()));
    assert_eq!(
        (r.cut_offset, r.cut_bytes, r.last_seq),
        (start, damaged.len() as u64 - start, 6)
    );
    let backup = r.backup_dir.unwrap();
    let saved = std::fs::read(backup.join(format!("{name}.from-byte-{start}"))).unwrap();
    assert_eq!(
        saved,
        &damaged[start as usize..],
        "the backup holds exactly what was cut"
    );
    assert_eq!(file_len(&seg), start);
    assert!(verify(&dir).unwrap().torn_tail.is_none());
    // The journal opens and continues after the last good frame.
    reopen_recovers(&dir, 6, 0, &seg, 0).await;
    // Nothing more to repair.
    let again = repair_truncate_at_corruption(&dir).unwrap();
    assert!(again.cut_segment.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corruption_in_a_finished_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("j");
    let (h, _) = open_writer(&dir, never().with_segment_bytes(200))
        .await
        .unwrap();
    write_batches(&h, &[2; 12]).await;
    h.stop().await;
    let segs = segments(&dir);
    assert!(segs.len() >= 4);
    let victim = &segs[1];
    let len = file_len(victim);
    // Even the last frame of a finished segment is corruption, not a torn tail.
    flip_bit(victim, len - 1, 0);
    let err = open_writer(&dir, never()).await.unwrap_err();
    assert!(
        matches!(&err, JournalError::Corrupt { segment, .. } if segment == victim),
        "{err}"
    );
    // A damaged header of a middle segment too.
    let dir2 = tmp.path().join("j2");
    copy_dir(&dir, &dir2);
    flip_bit(victim, len - 1, 0); // restore the original
    flip_bit(&dir2.join(victim.file_name().unwrap()), len - 1, 0);
    flip_bit(&dir2.join(segs[2].file_name().unwrap()), 3, 1);
    let err = open_writer(&dir2, never()).await.unwrap_err();
    assert!(
        matches!(&err, JournalError::Corrupt { offset: 0, .. }),
        "{err}"
    );
    // Repair moves the damaged segment and every later one to the backup.
    let r = repair_truncate_at_corruption(&dir2).unwrap();
    assert_eq!(r.cut_offset, 0);
    assert_eq!(r.moved_segments.len(), segs.len() - 3);
    assert!(r
        .backup_dir
        .unwrap()
        .join(segs[2].file_name().unwrap())
        .is_file());
    let (h, report) = open_writer(&dir2, never()).await.unwrap();
    assert_eq!(
        report.last_seq,
        segs[2].file_name().unwrap().to_str().unwrap()[..20]
            .parse::<u64>()
            .unwrap()
            - 1
    );
    h.stop().await;
    // The intact copy is fine.
    assert_contiguous(&all(&dir), 24);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_writer_is_refused_while_repair_needs_the_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("j");
    let (h, _) = open_writer(&dir, never()).await.unwrap();
    let err = open_writer(&dir, never()).await.unwrap_err();
    let pid = std::process::id();
    assert!(
        matches!(err, JournalError::Locked { pid: Some(p), .. } if p == pid),
        "{err}"
    );
    assert!(err.to_string().contains(&format!("pid {pid}")), "{err}");
    assert!(matches!(
        repair_truncate_at_corruption(&dir),
        Err(JournalError::Locked { .. })
    ));
    h.stop().await;
    open_writer(&dir, never()).await.unwrap().0.stop().await;
}

/// Writes a segment by hand with one frame of the given records payload.
fn handmade_segment(dir: &Path, header: [u8; HEADER_LEN], records: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    let mut bytes = header.to_vec();
    let head = FrameHead {
        first_seq: 1,
        at: Timestamp(5),
        count: 1,
    };
    encode_frame(&mut bytes, &head, records);
    std::fs::write(
        dir.join(orca_actors::journal::segment::segment_file_name(1)),
        bytes,
    )
    .unwrap();
}

fn record(version: u16, actor: &str, event: &Event) -> Vec<u8> {
    let cfg = bincode::config::standard();
    let mut out = Vec::new();
    bincode::encode_into_std_write(version, &mut out, cfg).unwrap();
    bincode::encode_into_std_write(actor, &mut out, cfg).unwrap();
    bincode::serde::encode_into_std_write(event, &mut out, cfg).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_from_a_newer_orca_is_refused_never_misread() {
    let tmp = tempfile::tempdir().unwrap();
    let event = ev(1).event;
    let current = orca_actors::journal::EVENT_SCHEMA_VERSION;

    // The same bytes with the current versions read fine.
    let ok = tmp.path().join("ok");
    handmade_segment(
        &ok,
        SegmentHeader::new(1, Timestamp(1)).encode(),
        &record(current, "/a", &event),
    );
    assert_eq!(all(&ok)[0].event, event);

    // A newer event schema version.
    let newer = tmp.path().join("newer-schema");
    handmade_segment(
        &newer,
        SegmentHeader::new(1, Timestamp(1)).encode(),
        &record(current + 1, "/a", &event),
    );
    let err = read(&newer, ReadRange::all())
        .unwrap()
        .next()
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(err, JournalError::NewerSchema { found, .. } if found == current + 1),
        "{err}"
    );
    assert!(err.to_string().contains("newer"), "{err}");
    assert!(matches!(
        verify(&newer),
        Err(JournalError::NewerSchema { .. })
    ));

    // A newer segment format.
    let format = tmp.path().join("newer-format");
    let mut header = SegmentHeader::new(1, Timestamp(1)).encode();
    header[8] = 2;
    handmade_segment(&format, header, &record(current, "/a", &event));
    let err = read(&format, ReadRange::all())
        .unwrap()
        .next()
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(err, JournalError::NewerFormat { found: 2, .. }),
        "{err}"
    );
    assert!(matches!(
        open_writer(&format, never()).await,
        Err(JournalError::NewerFormat { .. })
    ));

    // A checksum-valid frame that does not decode (e.g. an event variant this
    // build does not know) is refused, and repair never cuts it.
    let unknown = tmp.path().join("unknown-variant");
    let mut rec = record(current, "/a", &event);
    let variant_at = rec.len()
        - bincode::serde::encode_to_vec(&event, bincode::config::standard())
            .unwrap()
            .len();
    rec[variant_at] = 200; // variant index 200
    handmade_segment(&unknown, SegmentHeader::new(1, Timestamp(1)).encode(), &rec);
    let err = read(&unknown, ReadRange::all())
        .unwrap()
        .next()
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(err, JournalError::Undecodable { offset, .. } if offset == HEADER_LEN as u64),
        "{err}"
    );
    assert!(err.to_string().contains("newer orca"), "{err}");
    assert!(matches!(
        verify(&unknown),
        Err(JournalError::Undecodable { .. })
    ));
    let before = std::fs::read(&segments(&unknown)[0]).unwrap();
    assert!(matches!(
        repair_truncate_at_corruption(&unknown),
        Err(JournalError::Undecodable { .. })
    ));
    assert_eq!(std::fs::read(&segments(&unknown)[0]).unwrap(), before);
}

mod never_panics {
    use super::*;
    use orca_actors::journal::{highest_seq, stats};
    use proptest::prelude::*;

    /// A segment of three valid frames (events 1..=5).
    fn pristine() -> Vec<u8> {
        let mut bytes = SegmentHeader::new(1, Timestamp(1)).encode().to_vec();
        let current = orca_actors::journal::EVENT_SCHEMA_VERSION;
        let mut seq = 1;
        for n in [1u32, 3, 1] {
            let mut records = Vec::new();
            for i in 0..n {
                records.extend(record(current, "/a", &ev(seq + u64::from(i)).event));
            }
            let head = FrameHead {
                first_seq: seq,
                at: Timestamp(7),
                count: n,
            };
            encode_frame(&mut bytes, &head, &records);
            seq += u64::from(n);
        }
        bytes
    }

    fn read_everything(dir: &Path) {
        let _ = read(dir, ReadRange::all()).map(|r| r.count());
        let _ = verify(dir);
        let _ = stats(dir);
        let _ = highest_seq(dir);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(150))]

        /// Any bytes overwritten anywhere: readers return events or an
        /// error, never panic.
        #[test]
        fn damaged_segments(at in 0usize..400, garbage in proptest::collection::vec(any::<u8>(), 1..64), cut in proptest::option::of(0usize..400)) {
            let tmp = tempfile::tempdir().unwrap();
            let mut bytes = pristine();
            let at = at.min(bytes.len() - 1);
            for (i, b) in garbage.iter().enumerate() {
                if at + i < bytes.len() {
                    bytes[at + i] = *b;
                }
            }
            if let Some(cut) = cut {
                bytes.truncate(cut.min(bytes.len()));
            }
            std::fs::write(tmp.path().join(orca_actors::journal::segment::segment_file_name(1)), &bytes).unwrap();
            read_everything(tmp.path());
        }

        /// Frames whose checksum is valid but whose payload is arbitrary:
        /// the decoders return an error, never panic or over-allocate.
        #[test]
        fn checksum_valid_garbage(payload in proptest::collection::vec(any::<u8>(), 1..200), count in any::<u32>(), first in 0u64..3) {
            let tmp = tempfile::tempdir().unwrap();
            let mut bytes = SegmentHeader::new(1, Timestamp(1)).encode().to_vec();
            let head = FrameHead { first_seq: first, at: Timestamp(0), count };
            encode_frame(&mut bytes, &head, &payload);
            std::fs::write(tmp.path().join(orca_actors::journal::segment::segment_file_name(1)), &bytes).unwrap();
            read_everything(tmp.path());
        }
    }
}
