//! Opens an HTML report in headless Chromium (Debian's `chromium`, installed by `tools/test.sh`
//! where missing; `CHROMIUM=/path` names another) and checks what renders: from the DOM after
//! load (every `<img>` decoded with a non-zero size, the tables laid out, the cards of the first
//! page) and from a screenshot (the pixels where the first thumbnails sit are the thumbnails'
//! colours, not a blank page or a broken-image icon). A script can act on the page first (sort,
//! filter, turn pages) and report what it saw; the screenshot is then taken in that state.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Cards the report shows per page (caption_infer::report::PAGE_SIZE).
pub const PAGE_SIZE: usize = caption_infer::report::PAGE_SIZE;

/// What the probe script reports from inside the page.
#[derive(Debug, serde::Deserialize)]
pub struct Probe {
    /// `<img>` elements.
    pub images: usize,
    /// Those decoded and laid out.
    pub decoded: usize,
    /// Thumbnails of the cards shown.
    pub thumbnail_count: usize,
    /// Training plots.
    pub plots: usize,
    /// Rows of the metric table.
    pub metric_rows: usize,
    /// Rows of the header ("made with").
    pub made_rows: usize,
    /// The metric table's box.
    pub table: Rect,
    /// The first thumbnails' boxes.
    pub thumbnails: Vec<Rect>,
    /// The image ids of the cards shown, in order.
    pub cards: Vec<String>,
    /// The pager's line ("1–100 of 1000 shown …").
    pub count: String,
    /// What the acting script returned.
    pub observed: serde_json::Value,
}

/// A box on the page, in CSS pixels.
#[derive(Debug, serde::Deserialize)]
pub struct Rect {
    x: f64,
    y: f64,
    width: f64,
    height: f64,
}

/// Runs `ACT` (a function body that may act on the page and returns what it observed), waits
/// for the images to decode (or fail to), then measures the page.
const PROBE: &str = r##"<script>
window.addEventListener("load", async () => {
  const $ = (id) => document.getElementById(id);
  const cards = () => [...document.querySelectorAll("#captions .card")].map((c) => c.dataset.id);
  const set = (id, value) => { $(id).value = value; $(id).dispatchEvent(new Event("input")); };
  const observed = (() => { ACT })();
  const box = (e) => { const r = e.getBoundingClientRect(); return { x: r.x, y: r.y, width: r.width, height: r.height }; };
  const images = [...document.images];
  // Images the acting script put on the page decode after it returns.
  // (Timers, not decode(): headless Chromium's virtual time runs timers before it dumps the DOM.)
  for (let k = 0; k < 200 && images.some((i) => !i.complete); k++) await new Promise((r) => setTimeout(r, 25));
  const probe = {
    images: images.length,
    decoded: images.filter((i) => i.complete && i.naturalWidth > 0 && i.getBoundingClientRect().width > 0).length,
    thumbnail_count: document.querySelectorAll("#captions img").length,
    plots: document.querySelectorAll("#curves img").length,
    metric_rows: document.querySelectorAll("#metrics tr").length,
    made_rows: document.querySelectorAll("#made tr").length,
    table: box($("metrics")),
    thumbnails: [...document.querySelectorAll("#captions img")].slice(0, 4).map(box),
    cards: cards(),
    count: $("count") ? $("count").textContent : "",
    observed: observed === undefined ? null : observed,
  };
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify(probe);
  document.body.appendChild(out);
});
</script>"##;

fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(path);
    }
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Ok(output) = Command::new("sh").args(["-c", &format!("command -v {name}")]).output()
            && output.status.success()
        {
            return PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        }
    }
    panic!(
        "no Chromium found for the report test: run the tests with tools/test.sh (it installs Debian's \
         chromium where missing), `apt-get install chromium`, or set CHROMIUM=/path/to/chrome"
    );
}

/// Runs headless Chromium on `page` with `extra` flags (`--dump-dom`, `--screenshot=…`).
pub fn headless(page: &Path, extra: &[&str]) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    // coreutils' timeout: a browser that hangs fails the test instead of stalling CI.
    let output = Command::new("timeout")
        .arg("120")
        .arg(chromium())
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars"])
        .arg("--force-device-scale-factor=1")
        .args(["--window-size=1280,1600", "--virtual-time-budget=10000", "--no-first-run"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(output.status.success(), "chromium failed:\n{}", String::from_utf8_lossy(&output.stderr));
    output
}

/// Opens `report` in headless Chromium, runs `act` (a JavaScript function body with `$(id)`,
/// `cards()` and `set(id, value)` at hand; what it returns comes back in
/// [`Probe::observed`]), and returns the page's probe and a screenshot in that state.
pub fn open(report: &Path, act: &str) -> (Probe, image::RgbImage) {
    let dir = tempfile::tempdir().unwrap();
    let html = std::fs::read_to_string(report).unwrap();
    let probed = dir.path().join("probed.html");
    std::fs::write(&probed, html.replace("</body>", &format!("{}</body>", PROBE.replace("ACT", act)))).unwrap();
    let dom = String::from_utf8(headless(&probed, &["--dump-dom"]).stdout).unwrap();
    let start = dom.find("<pre id=\"probe\">").expect("the probe did not run: page never loaded") + 16;
    let end = start + dom[start..].find("</pre>").unwrap();
    let text = dom[start..end].replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&");
    let probe: Probe = serde_json::from_str(&text).unwrap();
    // The screenshot of the same state: the probe's page acts the same way (its <pre> lands below
    // the cards).
    let shot = dir.path().join("shot.png");
    headless(&probed, &[&format!("--screenshot={}", shot.display())]);
    (probe, image::open(&shot).unwrap().into_rgb8())
}

/// Opens `report` in headless Chromium and asserts that the first page of its `total_images`
/// cards (at most [`PAGE_SIZE`]), `expected_plots` training plots, the header and a metric table
/// of at least `min_metric_rows` rows render, and that the thumbnails are drawn.
pub fn check_report(report: &Path, total_images: usize, expected_plots: usize, min_metric_rows: usize) {
    let (probe, screenshot) = open(report, "");
    let shown = total_images.min(PAGE_SIZE);
    assert_eq!(probe.thumbnail_count, shown, "{probe:?}");
    assert_eq!(probe.cards.len(), shown, "{probe:?}");
    assert!(probe.count.contains(&format!("({total_images} images)")), "{probe:?}");
    assert_eq!(probe.plots, expected_plots, "{probe:?}");
    assert_eq!(probe.images, shown + expected_plots, "{probe:?}");
    assert!(probe.made_rows >= 5, "the header is missing: {probe:?}");
    assert!(probe.metric_rows >= min_metric_rows, "{probe:?}");
    assert!(probe.table.width > 100.0 && probe.table.height > 20.0 * min_metric_rows as f64, "{probe:?}");
    check_thumbnails_drawn(&probe, &screenshot);
}

/// Asserts that every image decoded and that the thumbnails in the screenshot's window show
/// shapes: a light grey background (not the page's white) with saturated shapes on it. A broken
/// image is a white box with a small grey icon and its alt text.
pub fn check_thumbnails_drawn(probe: &Probe, screenshot: &image::RgbImage) {
    assert_eq!(probe.decoded, probe.images, "some images did not decode: {probe:?}");
    assert!(!probe.thumbnails.is_empty(), "{probe:?}");
    let mut checked = 0;
    for rect in &probe.thumbnails {
        let (x0, y0) = (rect.x.ceil() as u32, rect.y.ceil() as u32);
        let (x1, y1) = ((rect.x + rect.width).floor() as u32, (rect.y + rect.height).floor() as u32);
        if x1 > screenshot.width() || y1 > screenshot.height() || x1 <= x0 + 8 || y1 <= y0 + 8 {
            continue; // below the fold
        }
        let pixels: Vec<[u8; 3]> =
            (y0..y1).flat_map(|y| (x0..x1).map(move |x| (x, y))).map(|(x, y)| screenshot.get_pixel(x, y).0).collect();
        let painted = pixels.iter().filter(|p| p.iter().any(|&c| c < 247)).count();
        let saturated = pixels.iter().filter(|p| p.iter().max().unwrap() - p.iter().min().unwrap() > 60).count();
        assert!(
            painted * 10 > pixels.len() * 9,
            "thumbnail at {rect:?} is not drawn: {painted} of {} pixels",
            pixels.len()
        );
        assert!(saturated * 50 > pixels.len(), "thumbnail at {rect:?} shows no coloured shape");
        checked += 1;
    }
    assert!(checked > 0, "no thumbnail in the screenshot's window: {probe:?}");
}
