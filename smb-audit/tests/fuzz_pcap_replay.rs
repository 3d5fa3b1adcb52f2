//! Stable-toolchain replay of the `pcap_reader` fuzz corpus kept in the tree
//! (`fuzz/corpus/pcap_reader`: captures of real signed sessions): each input runs through the
//! fuzzer's harness, with its checks.

#[path = "../../fuzz/harness/pcap.rs"]
mod pcap;

#[test]
fn pcap_reader_corpus_replays_cleanly() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/pcap_reader");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        pcap::run(&data);
        n += 1;
    }
    assert!(n >= 2, "the seed captures are in the tree ({n} found)");
}
