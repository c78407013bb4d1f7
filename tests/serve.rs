//! `cargo xtask serve` through a real HTTP client on an ephemeral loopback port: every endpoint,
//! answers equal to `cargo xtask caption`'s for the same images and options, every refusal's
//! status, a client that leaves midway, a slow body cut off, a full queue, and a stop (SIGINT)
//! with requests in flight, which are answered. The page in headless Chromium: an image given to
//! its file input is captioned as the API captions it, and an attention model's map is drawn.

mod browser;
#[path = "support/cli.rs"]
mod cli;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use cli::{ok, prepare, train, trained_run, xtask};
use serde_json::Value;

/// A server started by `cargo xtask serve --port 0`, stopped (SIGKILL) when dropped.
struct Server {
    child: Child,
    address: String,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Server {
    /// Starts serving `run` with `extra` flags and waits (at most a minute) until it says ready.
    fn start(run: &Path, extra: &[&str]) -> Self {
        let mut child = xtask(&["serve", "--device", "cpu", "--port", "0", "--checkpoint"])
            .arg(run)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let address = line.trim().strip_prefix("listening on http://").unwrap_or_else(|| panic!("{line}")).to_owned();
        line.clear();
        stdout.read_line(&mut line).unwrap();
        assert!(line.starts_with("ready after "), "{line}");
        Self { child, address, stdout }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// SIGINT, as Ctrl-C sends it.
    fn signal_stop(&self) {
        // SAFETY: signalling a child process this test started.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
    }

    /// The exit status and the rest of standard output.
    fn wait(mut self) -> (std::process::ExitStatus, String) {
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).unwrap();
        (self.child.wait().unwrap(), rest)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The status and JSON body of a request (errors answered as JSON too).
fn answer(result: Result<ureq::Response, ureq::Error>) -> (u16, Value, Option<String>) {
    let response = match result {
        Ok(response) => response,
        Err(ureq::Error::Status(_, response)) => response,
        Err(e) => panic!("{e}"),
    };
    let (status, retry) = (response.status(), response.header("retry-after").map(str::to_owned));
    (status, serde_json::from_str(&response.into_string().unwrap()).unwrap(), retry)
}

/// A multipart form of `files` (field `image`) and, when given, an `options` part.
fn form(files: &[(&str, &[u8])], options: Option<&str>) -> (String, Vec<u8>) {
    let boundary = "caption-test-boundary-7d1";
    let mut body = Vec::new();
    for (name, bytes) in files {
        write!(body, "--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{name}\"\r\n")
            .unwrap();
        body.extend_from_slice(b"Content-Type: application/octet-stream\r\n\r\n");
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    if let Some(options) = options {
        write!(body, "--{boundary}\r\nContent-Disposition: form-data; name=\"options\"\r\n\r\n{options}\r\n").unwrap();
    }
    write!(body, "--{boundary}--\r\n").unwrap();
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn post_form(
    server: &Server,
    query: &str,
    files: &[(&str, &[u8])],
    options: Option<&str>,
) -> (u16, Value, Option<String>) {
    let (content_type, body) = form(files, options);
    answer(
        ureq::post(&server.url(&format!("/v1/captions{query}"))).set("Content-Type", &content_type).send_bytes(&body),
    )
}

fn post_raw(server: &Server, query: &str, content_type: &str, body: &[u8]) -> (u16, Value, Option<String>) {
    answer(ureq::post(&server.url(&format!("/v1/captions{query}"))).set("Content-Type", content_type).send_bytes(body))
}

/// A raw-body request announcing `length` bytes of which only `sent` are sent: the status, the
/// JSON body and `Retry-After` of the answer.
fn announced(server: &Server, length: usize, sent: &[u8]) -> (u16, Value, Option<String>) {
    let mut stream = TcpStream::connect(&server.address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(stream, "POST /v1/captions HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n").unwrap();
    write!(stream, "Content-Length: {length}\r\nConnection: close\r\n\r\n").unwrap();
    stream.write_all(sent).unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or_else(|| panic!("{reply}"));
    let status = head[9..12].parse().unwrap();
    let retry = head.lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("retry-after: ").map(str::to_owned));
    (status, serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {reply}")), retry)
}

/// `cargo xtask caption --json` of `images` with `flags`: one JSON object per image.
fn cli_captions(run: &Path, images: &[PathBuf], flags: &[&str]) -> Vec<Value> {
    let out = ok(xtask(&["caption", "--device", "cpu", "--json", "--checkpoint"])
        .arg(run)
        .args(flags)
        .args(images)
        .output()
        .unwrap());
    out.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

/// An image's captions as the CLI prints them (one object, or a `captions` list).
fn cli_list(object: &Value) -> Vec<Value> {
    match object.get("captions") {
        Some(list) => list.as_array().unwrap().clone(),
        None => {
            let mut single = object.clone();
            single.as_object_mut().unwrap().remove("image");
            vec![single]
        }
    }
}

#[test]
fn endpoints_answer_as_the_caption_command_does() {
    let dir = tempfile::tempdir().unwrap();
    let (data, run) = trained_run(dir.path());
    let images: Vec<PathBuf> = ["shapes_00001.png", "shapes_00002.png", "shapes_00003.png"]
        .iter()
        .map(|n| data.join("images").join(n))
        .collect();
    let bytes: Vec<Vec<u8>> = images.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let server = Server::start(&run, &[]);

    let get = |path: &str| answer(ureq::get(&server.url(path)).call());
    let text = |path: &str| ureq::get(&server.url(path)).call().unwrap().into_string().unwrap();
    assert_eq!(get("/healthz").1["status"], "ok");
    assert_eq!(get("/readyz").1["status"], "ready");
    let model = get("/v1/model").1;
    assert_eq!((model["architecture"].as_str(), model["attention"].as_bool()), (Some("CNNtoRNN"), Some(false)));
    assert!(model["vocabulary_size"].as_u64().unwrap() > 4 && model["checkpoint"].as_str().unwrap().contains("step"));
    let page = text("/");
    assert!(page.contains("<title>caption</title>") && page.contains("type=\"file\"") && !page.contains("http://"));
    assert_eq!(get("/nowhere").0, 404);

    // Equal to the CLI: greedy (raw body and form), beam, n-best, sampling with a seed.
    let files: Vec<(&str, &[u8])> = vec![("a.png", &bytes[0]), ("b.png", &bytes[1]), ("c.png", &bytes[2])];
    for (query, flags) in [
        ("", vec![]),
        ("?beam=3", vec!["--beam", "3"]),
        ("?num_captions=2&beam=3", vec!["--num-captions", "2", "--beam", "3"]),
        ("?sample=3&seed=5&temperature=0.8", vec!["--sample", "3", "--seed", "5", "--temperature", "0.8"]),
        ("?max_length=3", vec!["--max-length", "3"]),
    ] {
        let (status, body, _) = post_form(&server, query, &files, None);
        assert_eq!(status, 200, "{query}: {body}");
        let expected = cli_captions(&run, &images, &flags);
        for (image, (answered, cli)) in body["images"].as_array().unwrap().iter().zip(&expected).enumerate() {
            assert_eq!(answered["name"], ["a.png", "b.png", "c.png"][image]);
            assert_eq!((answered["width"].as_u64(), answered["height"].as_u64()), (Some(80), Some(80)));
            let (mine, theirs) = (answered["captions"].as_array().unwrap(), cli_list(cli));
            assert_eq!(mine.len(), theirs.len(), "{query}");
            for (a, b) in mine.iter().zip(&theirs) {
                assert_eq!(
                    (&a["caption"], &a["tokens"], &a["finished"]),
                    (&b["caption"], &b["tokens"], &b["finished"]),
                    "{query}"
                );
                let (x, y) = (a["log_prob"].as_f64().unwrap(), b["log_prob"].as_f64().unwrap());
                assert!((x - y).abs() <= 1e-4 * y.abs().max(1.0), "{query}: {x} vs {y}");
            }
        }
        let timing = &body["timing"];
        assert!(timing["batch_images"].as_u64().unwrap() >= 3 && timing["total_ms"].as_f64().unwrap() > 0.0);
    }
    let (status, raw, _) = post_raw(&server, "?beam=3", "image/png", &bytes[0]);
    assert_eq!(status, 200);
    assert_eq!(
        raw["images"][0]["captions"][0]["caption"],
        cli_list(&cli_captions(&run, &images[..1], &["--beam", "3"])[0])[0]["caption"]
    );
    // Options as the form's JSON part.
    let (status, body, _) = post_form(&server, "", &files[..1], Some(r#"{"num_captions": 2, "beam": 3}"#));
    assert_eq!((status, body["images"][0]["captions"].as_array().unwrap().len()), (200, 2), "{body}");

    // Metrics count what was answered.
    let metrics = text("/metrics");
    assert!(metrics.contains("caption_requests_total{route=\"/v1/captions\",status=\"200\"} 7"), "{metrics}");
    assert!(metrics.contains("caption_batch_images_count") && metrics.contains("caption_queue_images 0"));
    assert!(metrics.contains("# TYPE caption_request_duration_seconds histogram"));
}

#[test]
fn every_refusal_has_its_status_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (data, run) = trained_run(dir.path());
    let png = std::fs::read(data.join("images").join("shapes_00001.png")).unwrap();
    let flags = ["--max-pixels", "5000", "--max-body-bytes", "60000", "--max-images", "2", "--body-timeout", "1"];
    let server = Server::start(&run, &flags);
    let small = {
        let mut bytes = Vec::new();
        image::RgbImage::from_pixel(40, 40, image::Rgb([200, 10, 10]))
            .write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
            .unwrap();
        bytes
    };
    let mut cut = small.clone();
    cut.truncate(cut.len() / 2);
    let expect = |(status, body, retry): (u16, Value, Option<String>), want: u16, words: &str| -> Option<String> {
        let message = body["error"]["message"].as_str().unwrap_or_else(|| panic!("{body}")).to_owned();
        assert_eq!((status, body["error"]["status"].as_u64()), (want, Some(u64::from(want))), "{message}");
        assert!(message.contains(words), "{want}: {message}");
        retry
    };
    expect(post_raw(&server, "", "image/png", &png), 422, "6400 pixels, more than the 5000");
    expect(post_raw(&server, "", "text/plain", b"hello"), 415, "Content-Type text/plain");
    expect(post_raw(&server, "", "image/gif", b"GIF89a\x01\x00"), 415, "not a JPEG or PNG");
    expect(post_raw(&server, "", "image/png", &cut), 422, "image:");
    // A body over the limit is refused from its Content-Length, before it is read: the client
    // reads the answer without sending the body (a client still writing may see the connection
    // closed instead).
    expect(announced(&server, 70_000, b""), 413, "larger than 60000 bytes");
    expect(post_raw(&server, "?beam=abc", "image/png", &small), 400, "beam");
    expect(post_raw(&server, "?colour=blue", "image/png", &small), 400, "colour");
    expect(post_raw(&server, "?temperature=0.5", "image/png", &small), 400, "add sample");
    expect(post_raw(&server, "?attention_maps=true", "image/png", &small), 400, "needs an attention model");
    expect(post_raw(&server, "?num_captions=4&beam=2", "image/png", &small), 400, "widen the beam");
    let three: Vec<(&str, &[u8])> = vec![("a.png", &small), ("b.png", &small), ("c.png", &small)];
    expect(post_form(&server, "", &three, None), 413, "at most 2 (--max-images)");
    expect(post_form(&server, "", &[], None), 400, "no image");
    expect(post_form(&server, "?beam=2", &three[..1], Some(r#"{"beam": 3}"#)), 400, "not both");
    // A form whose image is corrupt names the file.
    expect(post_form(&server, "", &[("cut.png", &cut)], None), 422, "cut.png");

    // A slow client: the body never completes; cut off with 408 after --body-timeout.
    let mut slow = TcpStream::connect(&server.address).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(slow, "POST /v1/captions HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\n")
        .unwrap();
    slow.write_all(&small[..100]).unwrap();
    let started = Instant::now();
    let mut reply = String::new();
    let _ = slow.read_to_string(&mut reply);
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(started.elapsed() < Duration::from_secs(10));

    // A client that sends a whole request and leaves: the server goes on.
    let mut gone = TcpStream::connect(&server.address).unwrap();
    write!(
        gone,
        "POST /v1/captions HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: {}\r\n\r\n",
        small.len()
    )
    .unwrap();
    gone.write_all(&small).unwrap();
    drop(gone);
    let (status, body, _) = post_raw(&server, "", "image/png", &small);
    assert_eq!(status, 200, "{body}");
    assert!(ureq::get(&server.url("/healthz")).call().is_ok());
    drop(server);

    // Answers slower than --request-timeout: 504.
    let server = Server::start(&run, &["--request-timeout", "0.001"]);
    expect(post_raw(&server, "", "image/png", &png), 504, "--request-timeout");
    drop(server);
    // More requests at once than --max-concurrent: 503 (each request waits half a second for its
    // batch, holding its place; the bodies are small, so a refusal before the body is read
    // reaches the client whole).
    let server = Server::start(&run, &["--max-concurrent", "1", "--max-wait-ms", "500"]);
    let outcomes: Vec<(u16, Value, Option<String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8).map(|_| scope.spawn(|| post_raw(&server, "", "image/png", &small))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(outcomes.iter().all(|(status, _, _)| *status == 200 || *status == 503));
    assert!(outcomes.iter().any(|(status, _, _)| *status == 200));
    let busy: Vec<_> = outcomes.into_iter().filter(|(status, _, _)| *status == 503).collect();
    assert!(!busy.is_empty(), "8 requests at once, one allowed: some must be refused");
    for refusal in busy {
        assert_eq!(expect(refusal, 503, "--max-concurrent").as_deref(), Some("1"));
    }
    drop(server);

    // Two silent connections fill --max-connections 2: a third client waits to be accepted until
    // --header-timeout closes one of them (a silent connection, like one that sends its headers
    // too slowly, is cut off), then is answered.
    let server = Server::start(&run, &["--max-connections", "2", "--header-timeout", "2"]);
    let connected = Instant::now();
    let mut silent: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(&server.address).unwrap()).collect();
    write!(silent[1], "GET /healthz HTTP/1.1\r\nHost: x\r\n").unwrap(); // headers never finished
    std::thread::sleep(Duration::from_millis(200));
    let third = ureq::get(&server.url("/healthz")).timeout(Duration::from_secs(20)).call();
    let waited = connected.elapsed();
    assert_eq!(third.map(|r| r.status()).ok(), Some(200));
    assert!(waited >= Duration::from_millis(1500), "answered after {waited:?}, before a connection was free");
    assert!(waited < Duration::from_secs(10), "{waited:?}");
    for stream in &mut silent {
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut reply = String::new();
        let _ = stream.read_to_string(&mut reply); // the server closed it: end of stream
        assert!(reply.is_empty() || reply.starts_with("HTTP/1.1 408"), "{reply}");
    }
    assert!(connected.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_full_queue_answers_503_and_a_stop_answers_what_is_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let (data, run) = trained_run(dir.path());
    let png = std::fs::read(data.join("images").join("shapes_00001.png")).unwrap();
    let files: Vec<(String, Vec<u8>)> = (0..16).map(|i| (format!("{i}.png"), png.clone())).collect();
    let many = |server: &Server, clients: usize| -> Vec<(u16, Option<String>)> {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..clients)
                .map(|_| {
                    scope.spawn(|| {
                        let files: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
                        let (status, _, retry) = post_form(server, "?beam=2", &files, None);
                        (status, retry)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    };
    // One request may wait: of 24 at once, some are refused with Retry-After, the rest answered.
    let server = Server::start(&run, &["--queue", "1", "--max-batch", "16", "--max-images", "16"]);
    let outcomes = many(&server, 24);
    assert!(outcomes.iter().all(|(status, _)| *status == 200 || *status == 503), "{outcomes:?}");
    assert!(outcomes.iter().any(|(status, _)| *status == 200), "{outcomes:?}");
    let refused: Vec<_> = outcomes.iter().filter(|(status, _)| *status == 503).collect();
    assert!(!refused.is_empty() && refused.iter().all(|(_, retry)| retry.as_deref() == Some("1")), "{outcomes:?}");
    let metrics = ureq::get(&server.url("/metrics")).call().unwrap().into_string().unwrap();
    assert!(metrics.contains(&format!("status=\"503\"}} {}", refused.len())), "{metrics}");
    drop(server);

    // SIGINT while requests are in flight: each is answered, then the server exits 0.
    let server = Server::start(&run, &["--max-images", "16"]);
    let outcomes = std::thread::scope(|scope| {
        let requests = scope.spawn(|| many(&server, 6));
        std::thread::sleep(Duration::from_millis(150));
        server.signal_stop();
        requests.join().unwrap()
    });
    assert!(outcomes.iter().all(|(status, _)| *status == 200), "{outcomes:?}");
    let address = server.address.clone();
    let (status, rest) = server.wait();
    assert!(status.success() && rest.contains("stopped"), "{status:?}: {rest}");
    assert!(TcpStream::connect(&address).is_err(), "nothing listens after the stop");
}

/// Opens the server's page in headless Chromium (its requests reaching the server: the page is
/// read from a file, `<base>` pointing at the server, web security off for that), gives its file
/// input `png` (as a user picking a file does), with the attention-maps box ticked when `maps`,
/// waits for the captions, and returns what the page shows and a screenshot in that state.
fn page_after_upload(server: &Server, png: &[u8], maps: bool) -> (Value, image::RgbImage) {
    use base64::Engine;
    let act = r#"<script>
window.addEventListener("load", async () => {
  const wait = async (ready) => { for (let k = 0; k < 800 && !ready(); k++) await new Promise((r) => setTimeout(r, 25)); };
  await wait(() => !document.getElementById("model").textContent.startsWith("loading"));
  if (MAPS) document.getElementById("maps").checked = true;
  const bytes = Uint8Array.from(atob("PNG"), (c) => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], "picked.png", { type: "image/png" }));
  const input = document.getElementById("files");
  input.files = transfer.files;
  input.dispatchEvent(new Event("change"));
  await wait(() => document.querySelector(".captions .caption") || document.querySelector(".error"));
  const map = document.querySelector(".map");
  if (map) await wait(() => map.complete);
  const box = (e) => { const r = e.getBoundingClientRect(); return { x: r.x, y: r.y, width: r.width, height: r.height }; };
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({
    model: document.getElementById("model").textContent,
    captions: [...document.querySelectorAll(".captions .caption")].map((e) => e.textContent),
    error: document.querySelector(".error") ? document.querySelector(".error").textContent : null,
    map: map ? { box: box(map), decoded: map.complete && map.naturalWidth > 0 } : null,
  });
  document.body.appendChild(out);
});
</script>"#
        .replace("MAPS", if maps { "true" } else { "false" })
        .replace("PNG", &base64::engine::general_purpose::STANDARD.encode(png));
    let html = ureq::get(&server.url("/")).call().unwrap().into_string().unwrap();
    let html = html
        .replace("<head>", &format!("<head><base href=\"{}\">", server.url("/")))
        .replace("</body>", &format!("{act}</body>"));
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("page.html");
    std::fs::write(&page, html).unwrap();
    let flags = ["--disable-web-security", "--allow-file-access-from-files"];
    let dom = String::from_utf8(browser::headless(&page, &[&flags[..], &["--dump-dom"]].concat()).stdout).unwrap();
    let start = dom.find("<pre id=\"probe\">").expect("the probe did not run") + 16;
    let end = start + dom[start..].find("</pre>").unwrap();
    let text = dom[start..end].replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
    let shot = dir.path().join("shot.png");
    browser::headless(&page, &[&flags[..], &[format!("--screenshot={}", shot.display()).as_str()]].concat());
    (serde_json::from_str(&text).unwrap(), image::open(&shot).unwrap().into_rgb8())
}

#[test]
fn the_page_captions_a_picked_file_as_the_api_does() {
    let dir = tempfile::tempdir().unwrap();
    let (data, run) = trained_run(dir.path());
    let server = Server::start(&run, &[]);
    let png = std::fs::read(data.join("images").join("shapes_00002.png")).unwrap();
    let (shown, _) = page_after_upload(&server, &png, false);
    let (_, api, _) = post_raw(&server, "", "image/png", &png);
    assert_eq!(shown["error"], Value::Null, "{shown}");
    assert!(shown["model"].as_str().unwrap().contains("CNNtoRNN"), "{shown}");
    assert_eq!(shown["captions"][0], api["images"][0]["captions"][0]["caption"], "{shown}");
}

#[test]
fn an_attention_model_draws_its_maps_into_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let data = prepare(dir.path(), 16);
    let run = dir.path().join("attention");
    ok(train(&data, &run, &["--epochs", "1", "--decoder", "attention"]).output().unwrap());
    let server = Server::start(&run, &[]);
    let png = std::fs::read(data.join("images").join("shapes_00001.png")).unwrap();
    let (status, body, _) = post_raw(&server, "?attention_maps=true&max_length=4", "image/png", &png);
    assert_eq!(status, 200, "{body}");
    let image = &body["images"][0];
    let words = image["captions"][0]["tokens"].as_array().unwrap().len();
    let url = image["attention_map"].as_str().unwrap();
    let encoded = url.strip_prefix("data:image/png;base64,").unwrap();
    use base64::Engine;
    let png = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
    let strip = image::load_from_memory(&png).unwrap();
    assert!(
        words >= 1 && strip.width() > strip.height() * words as u32 / 2,
        "{words} words, {}x{}",
        strip.width(),
        strip.height()
    );
    assert_eq!(answer(ureq::get(&server.url("/v1/model")).call()).1["attention"], true);

    // The page draws the map under the caption: the strip's tinted panels in the screenshot.
    let png = std::fs::read(data.join("images").join("shapes_00001.png")).unwrap();
    let (shown, screenshot) = page_after_upload(&server, &png, true);
    let (_, api, _) = post_raw(&server, "?attention_maps=true", "image/png", &png);
    assert_eq!(shown["captions"][0], api["images"][0]["captions"][0]["caption"], "{shown}");
    let map = &shown["map"];
    assert_eq!(map["decoded"], true, "{shown}");
    let coordinate = |key: &str| map["box"][key].as_f64().unwrap();
    let (x0, y0) = (coordinate("x").ceil() as u32, coordinate("y").ceil() as u32);
    let (x1, y1) = ((coordinate("x") + coordinate("width")) as u32, (coordinate("y") + coordinate("height")) as u32);
    assert!(x1 > x0 + 20 && y1 > y0 + 20 && y1 <= screenshot.height(), "{shown}");
    let screenshot = &screenshot;
    let pixels: Vec<[u8; 3]> = (y0..y1).flat_map(|y| (x0..x1).map(move |x| screenshot.get_pixel(x, y).0)).collect();
    let drawn = pixels.iter().filter(|p| p.iter().max().unwrap() - p.iter().min().unwrap() > 40).count();
    assert!(drawn * 20 > pixels.len(), "the map is not drawn: {drawn} of {} pixels coloured", pixels.len());
}
