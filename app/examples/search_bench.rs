//! Search benchmark on the store itself: loads `--messages` synthetic messages (words drawn from a
//! 20,000-word vocabulary with a Zipf-like frequency, 6-16 words each) into `--rooms` rooms with 64
//! concurrent writers, then times searches of a reader in `--reader-rooms` of them (`--queries` of
//! each kind, 1,000 by default, after `--warm` (100) of each to warm the caches): 1, 2 and 3 words from
//! real messages of those rooms, and 3-letter prefixes. Prints indexing throughput, the store's size
//! on disk (embedded) and p50/p99/max per query kind.
//!
//! ```sh
//! cargo run --release -p app --features ssr --example search_bench -- --messages 1000000
//! MONGODB_URI=mongodb://127.0.0.1:27999/?directConnection=true \
//!   cargo run --release -p app --features ssr --example search_bench -- --driver mongo --messages 100000
//! ```

use app::domain::{index_terms, MessageBody, Nonce};
use app::model::{RoomId, Timestamp, UserId};
use app::store::{DynStore, EmbeddedStore, MongoStore, NewMessage, SearchFilter};
use std::sync::Arc;
use std::time::{Duration, Instant};

const VOCABULARY: usize = 20_000;
const WRITERS: usize = 64;
const PAGE: u32 = 20;

/// A small deterministic generator (xorshift), so runs are comparable.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// A word rank, frequent ones far more often (log-uniform: close to Zipf with s = 1).
    fn zipf(&mut self) -> usize {
        ((VOCABULARY as f64).powf(self.unit()) as usize).saturating_sub(1)
    }
}

fn vocabulary() -> Vec<String> {
    const SYLLABLES: [&str; 24] = [
        "ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "de", "fa", "go", "hu", "ji", "ba", "ce",
        "zo", "vi", "wu", "xe", "yo", "an", "el", "or", "is",
    ];
    let mut rng = Rng(7);
    let mut words = std::collections::BTreeSet::new();
    while words.len() < VOCABULARY {
        let n = 2 + rng.below(3);
        let word: String = (0..n)
            .map(|_| SYLLABLES[rng.below(SYLLABLES.len())])
            .collect();
        words.insert(word);
    }
    let mut words: Vec<String> = words.into_iter().collect();
    // Frequency rank must not follow alphabetical order.
    for i in (1..words.len()).rev() {
        let j = rng.below(i + 1);
        words.swap(i, j);
    }
    words
}

fn body(rng: &mut Rng, words: &[String]) -> String {
    let n = 6 + rng.below(11);
    (0..n)
        .map(|_| words[rng.zipf()].as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::main]
async fn main() {
    let messages: usize = arg("--messages", "1000000").parse().unwrap();
    let rooms_n: usize = arg("--rooms", "1000").parse().unwrap();
    let reader_n: usize = arg("--reader-rooms", "50").parse().unwrap();
    let queries: usize = arg("--queries", "1000").parse().unwrap();
    // Warm-up queries per kind (fewer on a slow test server, where each takes long).
    let warm_up: usize = arg("--warm", "100").parse().unwrap();
    let driver = arg("--driver", "embedded");
    // `--keep DIR`: the embedded store lives there and, when it holds a load already, is searched
    // again without loading (the same seeds give the same samples).
    let kept = std::env::args()
        .position(|a| a == "--keep")
        .and_then(|i| std::env::args().nth(i + 1))
        .map(std::path::PathBuf::from);
    let reuse = kept
        .as_ref()
        .is_some_and(|d| d.join(app::store::DB_FILE).exists());
    let temp = tempfile::tempdir().unwrap();
    let dir_path = kept.clone().unwrap_or_else(|| temp.path().to_path_buf());
    let mut mongo = None;
    let mut embedded = None;
    let store: DynStore = match driver.as_str() {
        "embedded" => {
            let store = Arc::new(EmbeddedStore::open(dir_path.clone()).await.unwrap());
            embedded = Some(store.clone());
            store
        }
        "mongo" => {
            let uri = std::env::var("MONGODB_URI").expect("MONGODB_URI for --driver mongo");
            let db = format!("search_bench_{}", std::process::id());
            let store = Arc::new(MongoStore::connect(&uri, &db).await.unwrap());
            mongo = Some(store.clone());
            store
        }
        other => panic!("unknown driver {other}"),
    };
    let words = Arc::new(vocabulary());
    // The same rooms every run, so `--keep` searches a kept load in its own rooms.
    let rooms: Arc<Vec<RoomId>> = Arc::new(
        (0..rooms_n)
            .map(|i| RoomId::from_uuid(uuid::Uuid::from_u128(0x5ea2c4 << 64 | i as u128)))
            .collect(),
    );
    let author = UserId::new();

    // Load: each writer appends its share, round-robin over the rooms.
    let started = Instant::now();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (store, words, rooms) = (store.clone(), words.clone(), rooms.clone());
            tokio::spawn(async move {
                let mut rng = Rng(1_000 + w as u64);
                let mut kept = Vec::new();
                for i in (w..messages).step_by(WRITERS) {
                    let room = i % rooms.len();
                    let text = body(&mut rng, &words);
                    let message = NewMessage {
                        room_id: rooms[room],
                        author_id: author,
                        body: MessageBody::parse(&text).unwrap(),
                        nonce: Nonce::parse(&format!("b{i}")).unwrap(),
                        created_at: Timestamp(1_700_000_000_000 + i as i64),
                        mentions: Vec::new(),
                        thread: None,
                        files: Vec::new(),
                    };
                    if !reuse {
                        store.append_message(&message).await.unwrap();
                    }
                    if room < reader_n && kept.len() < 2_000 {
                        kept.push(text);
                    }
                }
                kept
            })
        })
        .collect();
    let mut samples = Vec::new();
    for t in tasks {
        samples.extend(t.await.unwrap());
    }
    let load = started.elapsed();
    let terms: usize = samples.iter().map(|b| index_terms(b).len()).sum::<usize>() / samples.len();
    if reuse {
        println!(
            "driver {driver}: {messages} messages in {rooms_n} rooms, kept from an earlier load"
        );
    } else {
        println!(
            "driver {driver}: {messages} messages in {rooms_n} rooms loaded in {:.1} s: {:.0} messages/s indexed ({terms} distinct words per message on average)",
            load.as_secs_f64(),
            messages as f64 / load.as_secs_f64()
        );
    }
    if let Some(embedded) = &embedded {
        let size = std::fs::metadata(dir_path.join(app::store::DB_FILE))
            .unwrap()
            .len();
        let index = embedded.search_index_bytes().await.unwrap();
        let per_million = |bytes: u64| bytes as f64 / 1e6 / (messages as f64 / 1e6);
        println!(
            "store on disk: {:.0} MB ({:.0} MB per million messages); the search index: {:.0} MB ({:.0} MB per million messages)",
            size as f64 / 1e6,
            per_million(size),
            index as f64 / 1e6,
            per_million(index)
        );
    }

    let reader: Vec<RoomId> = rooms[..reader_n].to_vec();
    let query = |rng: &mut Rng, words_in_query: usize, prefix: bool| {
        let sample = &samples[rng.below(samples.len())];
        let mut pool: Vec<&str> = sample.split(' ').collect();
        pool.dedup();
        let mut filter = SearchFilter {
            rooms: reader.clone(),
            ..SearchFilter::default()
        };
        for _ in 0..words_in_query {
            filter.terms.push(pool[rng.below(pool.len())].to_owned());
        }
        if prefix {
            let word = pool[rng.below(pool.len())];
            filter.prefix = Some(word.chars().take(3).collect());
        }
        filter
    };
    let kinds = [
        ("1 word", 1, false),
        ("2 words", 2, false),
        ("3 words", 3, false),
        ("prefix (3 letters)", 0, true),
        ("1 word + prefix", 1, true),
    ];
    // A running server's caches are warm: other queries (another seed) warm them first, so the
    // first timed queries do not pay for reading the file after a load or a start.
    let mut warm = Rng(5);
    for &(_, words_in_query, prefix) in &kinds {
        for _ in 0..warm_up {
            let filter = query(&mut warm, words_in_query, prefix);
            store.search_messages(&filter, PAGE).await.unwrap();
        }
    }
    let mut rng = Rng(99);
    for (kind, words_in_query, prefix) in kinds {
        let mut times = Vec::with_capacity(queries);
        let mut hits = 0usize;
        for _ in 0..queries {
            let filter = query(&mut rng, words_in_query, prefix);
            let t = Instant::now();
            let found = store.search_messages(&filter, PAGE).await.unwrap();
            times.push(t.elapsed());
            hits += found.len();
        }
        times.sort();
        println!(
            "{kind:>20}: p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  ({:.1} results per query on average)",
            percentile(&times, 0.5).as_secs_f64() * 1e3,
            percentile(&times, 0.99).as_secs_f64() * 1e3,
            times.last().unwrap().as_secs_f64() * 1e3,
            hits as f64 / queries as f64
        );
    }
    if let Some(mongo) = mongo {
        mongo.drop_database().await.unwrap();
    }
}
