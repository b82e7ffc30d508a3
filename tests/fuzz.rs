//! Mutation fuzzing of every reader of outside input: the LDIF reader (and the recipient model
//! behind it), the MAP reader, the Exchange JSON reader, the config loader and the LDAP
//! client's response handling. No input may panic; a MAP file that parses must render and
//! parse back to the same records.
//!
//! A seeded mutation fuzzer that runs on stable Rust in the test command: seeds from the test
//! data, mutated by bit flips, inserted syntax tokens, deletions, duplications, truncation and
//! splicing; a long run:  DIRSYNC_FUZZ_ITERATIONS=1000000 cargo test --release --test fuzz
//! The LDAP client is also fuzzed coverage-guided (`scripts/fuzz.sh`, cargo fuzz); every
//! input of that corpus (fuzz/corpus/ldap_session) is replayed here.
//! A failing input is written to target/fuzz-failures/ and the seed printed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use dirsync::config::Config;
use dirsync::exchange::data;
use dirsync::mapfile;
use dirsync::model::{Keep, Recipient};
use dirsync::source::ldap::scripted;
use dirsync::source::ldif::LdifReader;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const TOKENS: &[&[u8]] = &[
    b"\n",
    b"\r\n",
    b"\n ",
    b"\t",
    b":",
    b"::",
    b":<",
    b" ",
    b"=",
    b"|",
    b"@",
    b"\xff",
    b"\x00",
    b"\xc3",
    b"changetype: modify",
    b"dn: ",
    b"version: 2",
    b"search: 1\nresult: 4 x\n",
    b"SMTP:",
    b"smtp:",
    b"X500:",
    b"++++",
    b"DOMAIN:",
    b"DIR:",
    b"MAP:",
    b"P13N:",
    b"\"",
    b"[[",
    b"]]",
    b"{",
    b"}",
    b"[",
    b"]",
    b"null",
    b"-1",
    b"1e999",
    b"schemaVersion",
    b"\"collections\": \"x\"",
    b"\xef\xbb\xbf",
    b"\xff\xfe",
    b"xn--",
    b"\xe2\x80\xae",
];

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut data = seeds[rng.below(seeds.len())].clone();
    for _ in 0..1 + rng.below(6) {
        let at = rng.below(data.len() + 1);
        match rng.below(7) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            1 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                data.splice(at..at, token.iter().copied());
            }
            2 if !data.is_empty() => {
                let end = (at + 1 + rng.below(64)).min(data.len());
                data.drain(at.min(end)..end);
            }
            3 if !data.is_empty() => {
                let start = rng.below(data.len());
                let end = (start + 1 + rng.below(256)).min(data.len());
                let piece: Vec<u8> = data[start..end].to_vec();
                data.splice(at..at, piece);
            }
            4 => data.truncate(at),
            5 => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                data.truncate(at);
                data.extend_from_slice(&other[from..]);
            }
            _ => data.insert(at, rng.next() as u8),
        }
    }
    data
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn seed(path: &str, max: usize) -> Vec<u8> {
    let mut bytes = std::fs::read(repo().join(path)).unwrap();
    bytes.truncate(max);
    bytes
}

/// Runs `target` on mutated inputs; a panic is reported with the input saved.
fn fuzz(name: &str, seeds: Vec<Vec<u8>>, target: impl Fn(&[u8]) + std::panic::RefUnwindSafe) {
    let iterations: usize = std::env::var("DIRSYNC_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let seed: u64 = std::env::var("DIRSYNC_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_d1a5);
    let mut rng = Rng(seed ^ name.len() as u64 ^ 0x9e37_79b9_7f4a_7c15);
    // The panic hook is left alone (tests run in parallel; swapping it races): the first
    // panic ends the test, so at most one message is printed.
    for i in 0..iterations {
        let input = if i < seeds.len() {
            seeds[i].clone()
        } else {
            mutate(&mut rng, &seeds)
        };
        if std::panic::catch_unwind(|| target(&input)).is_err() {
            let dir = repo().join("target/fuzz-failures");
            std::fs::create_dir_all(&dir).unwrap();
            let file = dir.join(format!("{name}-{i}"));
            std::fs::write(&file, &input).unwrap();
            panic!(
                "{name}: input {i} (seed {seed}) panicked; saved as {}",
                file.display()
            );
        }
    }
}

#[test]
fn ldif_reader_and_recipient_model() {
    let seeds = vec![
        seed("examples/demo.ldif", 6000),
        b"version: 1\n\ndn:: Q049SsO2cmc=\nobjectGUID;binary:: AAEC/w==\nproxyAddresses: SMTP:a@b\xc3\xbccher.de\nmail: x@example.com\n".to_vec(),
    ];
    fuzz("ldif", seeds, |input| {
        // Made per input: its group interner must not cross the catch_unwind boundary.
        let keep = Keep::all(
            ["department".to_string()]
                .into_iter()
                .collect::<BTreeSet<_>>(),
        );
        for entry in LdifReader::new(input).take(200) {
            match entry {
                Ok(e) => {
                    let _ = Recipient::from_entry(&e, &keep);
                }
                Err(_) => break,
            }
        }
    });
}

#[test]
fn map_reader_round_trips() {
    let seeds = vec![
        seed("examples/demo.map", 4000),
        seed("examples/rules.map", 4000),
    ];
    fuzz("map", seeds, |input| {
        if let Ok(map) = mapfile::parse(input) {
            // What parses renders and parses back to the same records (if its values are
            // writable at all: the checks refuse the others before anything is written).
            let text = map.render(mapfile::LineEnding::Lf);
            if map
                .domains
                .values()
                .flatten()
                .all(|r| r.values().iter().all(|v| mapfile::valid_value(v)))
            {
                assert_eq!(mapfile::parse(text.as_bytes()).ok().as_ref(), Some(&map));
            }
            let _ = map.check_round_trip(&text);
            let _ = mapfile::MapDiff::between(&map, &map).details();
        }
    });
}

#[test]
fn exchange_reader() {
    let seeds = vec![seed("tests/data/exchange/full.json", 100_000)];
    fuzz("exchange", seeds, |input| {
        let _ = data::parse(input);
    });
}

#[test]
fn config_loader() {
    let seeds = vec![
        seed("examples/dirsync.toml", 100_000),
        seed("examples/rules.toml", 100_000),
    ];
    fuzz("config", seeds, |input| {
        let text = String::from_utf8_lossy(input);
        let text = text.replace("#> ", "");
        let _ = Config::parse(&text, Path::new("fuzz.toml"), Path::new("/tmp"));
    });
}

/// The LDAP session over scripted server bytes: the seeds, every file of the coverage-guided
/// corpus, then mutations of both.
#[test]
fn ldap_session_and_its_cargo_fuzz_corpus() {
    let mut seeds: Vec<Vec<u8>> = scripted::seeds().into_iter().map(|(_, b)| b).collect();
    let corpus = repo().join("fuzz/corpus/ldap_session");
    let mut replayed = 0;
    for file in std::fs::read_dir(&corpus).unwrap() {
        let bytes = std::fs::read(file.unwrap().path()).unwrap();
        let _ = scripted::session(&bytes);
        replayed += 1;
        if bytes.len() < 4096 && replayed % 8 == 0 {
            seeds.push(bytes);
        }
    }
    assert!(
        replayed >= 4,
        "the corpus in {} is missing",
        corpus.display()
    );
    fuzz("ldap", seeds, |input| {
        let _ = scripted::session(input);
    });
}
