//! A stand-in for the Hugging Face Hub on a loopback port, answering the requests hf-hub's
//! synchronous client makes, so tests run the real download path (HTTP requests, the cache's
//! blobs, snapshots and refs) with no network: point `HF_ENDPOINT` at [`FakeHub::endpoint`].
//!
//! - `GET /api/{models|datasets}/ORG/NAME/revision/main`: the repository's file list and commit;
//! - `GET /[datasets/]ORG/NAME/resolve/main/FILE`: the file, honouring `Range: bytes=A-[B]`
//!   (206 with `Content-Range`), with `ETag` and `X-Repo-Commit`;
//! - anything else: 404.
//!
//! Shared by the crates' Hub tests (`#[path]`-included); each connection serves one request.

#![allow(dead_code)] // each including test uses part of it

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// The commit every hosted repository is at.
pub const COMMIT: &str = "c0ffee0000000000000000000000000000c0ffee";

/// A repository the fake Hub hosts.
pub struct HostedRepo {
    /// `models` or `datasets`.
    pub kind: &'static str,
    /// `ORG/NAME`.
    pub id: String,
    /// Relative file names and their bytes.
    pub files: Vec<(String, Vec<u8>)>,
}

/// A running fake Hub; it serves until the test process ends.
pub struct FakeHub {
    /// `http://127.0.0.1:PORT`, for `HF_ENDPOINT`.
    pub endpoint: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl FakeHub {
    /// Starts serving `repos` on a free loopback port.
    pub fn start(repos: Vec<HostedRepo>) -> FakeHub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                serve(stream, &repos, &log);
            }
        });
        FakeHub { endpoint, requests }
    }

    /// The requests answered so far, as `PATH` or `PATH range=RANGE`.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// Answers the one request on `stream`.
fn serve(stream: TcpStream, repos: &[HostedRepo], log: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(stream.try_clone().expect("a socket clone"));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("range")
        {
            range = Some(value.trim().to_string());
        }
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("").to_string();
    log.lock().unwrap().push(match &range {
        Some(range) => format!("{path} range={range}"),
        None => path.clone(),
    });
    let (status, headers, body) = respond(&path, range.as_deref(), repos);
    let mut head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut stream = stream;
    let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(&body));
}

/// Status line, extra headers and body for a GET of `path`.
fn respond(path: &str, range: Option<&str>, repos: &[HostedRepo]) -> (String, Vec<(String, String)>, Vec<u8>) {
    let not_found = || ("404 Not Found".to_string(), Vec::new(), b"{\"error\":\"not found\"}".to_vec());
    for repo in repos {
        if path == format!("/api/{}/{}/revision/main", repo.kind, repo.id) {
            let siblings: Vec<String> =
                repo.files.iter().map(|(name, _)| format!("{{\"rfilename\":\"{name}\"}}")).collect();
            let body = format!("{{\"sha\":\"{COMMIT}\",\"siblings\":[{}]}}", siblings.join(","));
            let headers = vec![("Content-Type".to_string(), "application/json".to_string())];
            return ("200 OK".to_string(), headers, body.into_bytes());
        }
        let prefix = if repo.kind == "datasets" { "/datasets/" } else { "/" };
        let Some(file) = path.strip_prefix(&format!("{prefix}{}/resolve/main/", repo.id)) else { continue };
        let Some((_, bytes)) = repo.files.iter().find(|(name, _)| name == file) else { return not_found() };
        let mut headers = vec![
            ("ETag".to_string(), format!("\"{}\"", content_tag(bytes))),
            ("X-Repo-Commit".to_string(), COMMIT.to_string()),
        ];
        let Some((start, end)) = range.and_then(|r| byte_range(r, bytes.len())) else {
            return ("200 OK".to_string(), headers, bytes.clone());
        };
        headers.push(("Content-Range".to_string(), format!("bytes {start}-{end}/{}", bytes.len())));
        return ("206 Partial Content".to_string(), headers, bytes[start..=end].to_vec());
    }
    not_found()
}

/// `bytes=A-B` or `bytes=A-` over `len` bytes, as inclusive bounds.
fn byte_range(range: &str, len: usize) -> Option<(usize, usize)> {
    let (start, end) = range.strip_prefix("bytes=")?.split_once('-')?;
    let start: usize = start.parse().ok()?;
    let end: usize = if end.is_empty() { len.checked_sub(1)? } else { end.parse::<usize>().ok()?.min(len - 1) };
    (start <= end).then_some((start, end))
}

/// A content tag (64-bit FNV-1a, hex), as the Hub's ETag names a blob by its content.
fn content_tag(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    format!("{hash:016x}")
}
