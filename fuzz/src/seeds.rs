//! Writes the seed conversations into the corpus folder given as the only argument.
fn main() {
    let dir = std::env::args().nth(1).expect("usage: seeds CORPUS_DIR");
    std::fs::create_dir_all(&dir).expect("corpus folder");
    for (name, bytes) in dirsync::source::ldap::scripted::seeds() {
        std::fs::write(format!("{dir}/seed-{name}"), bytes).expect("seed file");
    }
}
