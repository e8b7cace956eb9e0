//! Replays the fuzz corpus (fuzz/corpus/log_reader, grown by `cargo xtask bench
//! log` or `cargo fuzz run log_reader`) through the reader as a normal test, so
//! every input that once found new code paths keeps being checked in CI.
use std::path::Path;

#[test]
fn every_corpus_input_reads_without_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/log_reader");
    let mut inputs = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| agent::sinks::log::fuzz::check(&data));
        assert!(outcome.is_ok(), "{} makes the reader panic", path.display());
        inputs += 1;
    }
    assert!(
        inputs >= 5,
        "only {inputs} corpus inputs in {}",
        dir.display()
    );
}
