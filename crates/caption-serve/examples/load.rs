//! A load generator for `cargo xtask serve` (and for any server answering `POST /v1/captions`
//! with an image as the body and `{"images": [{"captions": [{"caption": …}]}]}`, such as
//! `tools/serve/fastapi_server.py`): `--clients` threads for `--seconds`, each sending one image
//! per request, on loopback only. Before the load, each image is captioned once alone: every
//! later answer for it must carry the same first caption (a different one counts as wrong).
//!
//! `--faults` mixes in requests that must be refused, each with its documented status: a corrupt
//! image (422), a body over `--max-body-bytes` (413; give the server's limit), a body that
//! stalls past the server's `--body-timeout` (408), a text body (415). A 503 (a full queue, with
//! `Retry-After`) is counted, not wrong; any other status, a dropped connection or a wrong caption
//! is. `--pid` samples the server's resident memory (VmRSS) every second.
//!
//! Prints one JSON object: requests, per-status counts, wrong answers, throughput (good answers
//! per second), p50/p99 latency of good answers, the server's RSS at the start, its peak and at
//! the end.
//!
//! `cargo run -p caption-serve --example load -- --url http://127.0.0.1:8080 --images DIR
//!  [--clients 8] [--seconds 20] [--faults --max-body-bytes N --stall-seconds S] [--pid PID]`

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What one request came to.
enum Outcome {
    /// Answered 200 with the expected caption, after this many seconds.
    Good(f64),
    /// A status (a refusal, or a failure).
    Status(u16),
    /// An answer with another caption than the image's, or a body that is not the API's JSON.
    Wrong(String),
    /// No HTTP answer (the connection failed or was dropped).
    Dropped(String),
}

/// The requests of `--faults`, in turn: half good, then one of each refusal.
const KINDS: [&str; 8] = ["good", "corrupt", "good", "oversized", "good", "text", "good", "slow"];

fn value(args: &[String], flag: &str) -> Option<String> {
    args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned()
}

fn first_caption(body: &str) -> Option<String> {
    let json: serde_json::Value = serde_json::from_str(body).ok()?;
    json["images"][0]["captions"][0]["caption"].as_str().map(str::to_owned)
}

/// Posts `body` with `content_type`; the status and body, or why there was none.
fn post(url: &str, content_type: &str, body: &[u8]) -> Result<(u16, String), String> {
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(120)).build();
    match agent.post(url).set("Content-Type", content_type).send_bytes(body) {
        Ok(response) => Ok((response.status(), response.into_string().map_err(|e| e.to_string())?)),
        Err(ureq::Error::Status(status, response)) => Ok((status, response.into_string().unwrap_or_default())),
        Err(e) => Err(e.to_string()),
    }
}

/// A request whose body stops after `sent` of its `length` bytes: the status the server answers
/// with while the rest never comes (a stalled upload: 408; a length over the limit: 413).
fn partial(address: &str, length: usize, sent: &[u8], wait: Duration) -> Outcome {
    let attempt = || -> std::io::Result<String> {
        let mut stream = TcpStream::connect(address)?;
        stream.set_read_timeout(Some(wait + Duration::from_secs(30)))?;
        write!(stream, "POST /v1/captions HTTP/1.1\r\nHost: {address}\r\nContent-Type: image/jpeg\r\n")?;
        write!(stream, "Content-Length: {length}\r\nConnection: close\r\n\r\n")?;
        stream.write_all(sent)?;
        let mut reply = String::new();
        stream.read_to_string(&mut reply)?;
        Ok(reply)
    };
    match attempt() {
        Ok(reply) => match reply.get(9..12).and_then(|s| s.parse().ok()) {
            Some(status) => Outcome::Status(status),
            None => Outcome::Dropped(format!("no status line: {:?}", reply.chars().take(40).collect::<String>())),
        },
        Err(e) => Outcome::Dropped(e.to_string()),
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let base = value(&args, "--url").unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let url = format!("{base}/v1/captions");
    let address = base.trim_start_matches("http://").trim_end_matches('/').to_owned();
    assert!(address.starts_with("127.") || address.starts_with("localhost"), "loopback only: {address}");
    let images_dir = PathBuf::from(value(&args, "--images").unwrap_or_else(|| "../shared/data/flickr8k/images".into()));
    let clients: usize = value(&args, "--clients").and_then(|v| v.parse().ok()).unwrap_or(8);
    let seconds: f64 = value(&args, "--seconds").and_then(|v| v.parse().ok()).unwrap_or(20.0);
    let faults = args.iter().any(|a| a == "--faults");
    let max_body: usize = value(&args, "--max-body-bytes").and_then(|v| v.parse().ok()).unwrap_or(32 << 20);
    let stall = Duration::from_secs_f64(value(&args, "--stall-seconds").and_then(|v| v.parse().ok()).unwrap_or(3.0));
    let pid: Option<u32> = value(&args, "--pid").and_then(|v| v.parse().ok());

    let mut paths: Vec<PathBuf> = std::fs::read_dir(&images_dir)
        .unwrap_or_else(|e| panic!("{}: {e}", images_dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("jpeg")))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no JPEG in {}", images_dir.display());
    let images: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).unwrap()).collect();
    // Each image's caption, asked alone before the load.
    let expected: Vec<String> = images
        .iter()
        .map(|image| match post(&url, "image/jpeg", image) {
            Ok((200, body)) => first_caption(&body).expect("the API's JSON"),
            other => panic!("the first request failed: {other:?}"),
        })
        .collect();

    let outcomes: Mutex<Vec<(&'static str, Outcome)>> = Mutex::new(Vec::new());
    let stop = AtomicBool::new(false);
    let rss: Mutex<Vec<u64>> = Mutex::new(pid.and_then(rss_kib).into_iter().collect());
    let started = Instant::now();
    std::thread::scope(|scope| {
        if let Some(pid) = pid {
            let (stop, rss) = (&stop, &rss);
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_secs(1));
                    rss.lock().unwrap().extend(rss_kib(pid));
                }
            });
        }
        for client in 0..clients {
            let (outcomes, images, expected, url, address) = (&outcomes, &images, &expected, &url, &address);
            scope.spawn(move || {
                for turn in 0.. {
                    if started.elapsed().as_secs_f64() >= seconds {
                        break;
                    }
                    let which = (client + turn * clients) % images.len();
                    let kind = if faults { KINDS[(client + turn) % KINDS.len()] } else { "good" };
                    let (image, sent) = (&images[which], Instant::now());
                    let outcome = match kind {
                        "slow" => partial(address, image.len(), &image[..image.len() / 2], stall),
                        "oversized" => partial(address, max_body + 1, &image[..image.len().min(1024)], stall),
                        _ => {
                            let (content_type, body): (&str, Vec<u8>) = match kind {
                                "corrupt" => ("image/jpeg", image[..image.len() / 3].to_vec()),
                                "text" => ("text/plain", b"not an image".to_vec()),
                                _ => ("image/jpeg", image.clone()),
                            };
                            match post(url, content_type, &body) {
                                Ok((200, body)) if kind == "good" => match first_caption(&body) {
                                    Some(caption) if caption == expected[which] => {
                                        Outcome::Good(sent.elapsed().as_secs_f64())
                                    }
                                    other => Outcome::Wrong(format!("{other:?} for {:?}", expected[which])),
                                },
                                Ok((status, _)) => Outcome::Status(status),
                                Err(e) => Outcome::Dropped(e),
                            }
                        }
                    };
                    outcomes.lock().unwrap().push((kind, outcome));
                }
            });
        }
        // The clients stop on their own after `seconds`; the sampler then.
        while started.elapsed().as_secs_f64() < seconds {
            std::thread::sleep(Duration::from_millis(100));
        }
        stop.store(true, Ordering::Relaxed);
    });
    let elapsed = started.elapsed().as_secs_f64();
    let outcomes = outcomes.into_inner().unwrap();
    // The status each kind must get (a 503 is allowed for any: a full queue).
    let documented = |kind: &str| match kind {
        "corrupt" => 422,
        "oversized" => 413,
        "text" => 415,
        "slow" => 408,
        _ => 200,
    };
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    let (mut latencies, mut wrong, mut examples) = (Vec::new(), 0usize, Vec::new());
    for (kind, outcome) in &outcomes {
        match outcome {
            Outcome::Good(seconds) => {
                latencies.push(*seconds);
                *statuses.entry(format!("{kind} 200")).or_default() += 1;
            }
            Outcome::Status(status) => {
                *statuses.entry(format!("{kind} {status}")).or_default() += 1;
                if *status != documented(kind) && *status != 503 {
                    wrong += 1;
                    examples.push(format!("{kind}: status {status}"));
                }
            }
            Outcome::Wrong(what) | Outcome::Dropped(what) => {
                wrong += 1;
                *statuses.entry(format!("{kind} wrong")).or_default() += 1;
                examples.push(format!("{kind}: {what}"));
            }
        }
    }
    latencies.sort_by(f64::total_cmp);
    let quantile = |q: f64| {
        latencies.get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1))).map(|s| s * 1e3)
    };
    let rss = rss.into_inner().unwrap();
    examples.truncate(5);
    let summary = serde_json::json!({
        "url": base, "clients": clients, "seconds": elapsed, "faults": faults,
        "requests": outcomes.len(), "statuses": statuses, "wrong": wrong, "wrong_examples": examples,
        "good_per_second": latencies.len() as f64 / elapsed,
        "p50_ms": quantile(0.5), "p99_ms": quantile(0.99),
        "rss_mib": {"start": rss.first().map(|k| *k as f64 / 1024.0), "peak": rss.iter().max().map(|k| *k as f64 / 1024.0),
                    "end": rss.last().map(|k| *k as f64 / 1024.0)},
    });
    println!("{summary}");
}
