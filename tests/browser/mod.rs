//! Opens an HTML report in headless Chromium (Debian's `chromium`, installed by `tools/test.sh`
//! where missing; `CHROMIUM=/path` names another) and checks that its images and metric table
//! (and the training plots) render: from the DOM after load (every `<img>` decoded with a non-zero size, the table laid out
//! with all its rows) and from a screenshot (the pixels where the first thumbnails sit are the
//! thumbnails' colours, not a blank page or a broken-image icon).

use std::path::{Path, PathBuf};
use std::process::Command;

/// What the probe script reports from inside the page.
#[derive(Debug, serde::Deserialize)]
struct Probe {
    images: usize,
    decoded: usize,
    thumbnail_count: usize,
    plots: usize,
    metric_rows: usize,
    table: Rect,
    thumbnails: Vec<Rect>,
}

#[derive(Debug, serde::Deserialize)]
struct Rect {
    x: f64,
    y: f64,
    width: f64,
    height: f64,
}

const PROBE: &str = r##"<script>
window.addEventListener("load", () => {
  const box = (e) => { const r = e.getBoundingClientRect(); return { x: r.x, y: r.y, width: r.width, height: r.height }; };
  const images = [...document.images];
  const probe = {
    images: images.length,
    decoded: images.filter((i) => i.complete && i.naturalWidth > 0 && i.getBoundingClientRect().width > 0).length,
    thumbnail_count: document.querySelectorAll("#captions img").length,
    plots: document.querySelectorAll("#curves img").length,
    metric_rows: document.querySelectorAll("#metrics tr").length,
    table: box(document.getElementById("metrics")),
    thumbnails: [...document.querySelectorAll("#captions img")].slice(0, 4).map(box),
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

fn headless(page: &Path, extra: &[&str]) -> std::process::Output {
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

/// Opens `report` in headless Chromium and asserts that `expected_images` thumbnails,
/// `expected_plots` training plots and a metric table of at least `min_metric_rows` rows render.
pub fn check_report(report: &Path, expected_images: usize, expected_plots: usize, min_metric_rows: usize) {
    let dir = tempfile::tempdir().unwrap();
    let html = std::fs::read_to_string(report).unwrap();
    let probed = dir.path().join("probed.html");
    std::fs::write(&probed, html.replace("</body>", &format!("{PROBE}</body>"))).unwrap();
    let dom = String::from_utf8(headless(&probed, &["--dump-dom"]).stdout).unwrap();
    let start = dom.find("<pre id=\"probe\">").expect("the probe did not run: page never loaded") + 16;
    let end = start + dom[start..].find("</pre>").unwrap();
    let probe: Probe = serde_json::from_str(&dom[start..end].replace("&quot;", "\"")).unwrap();
    assert_eq!(probe.thumbnail_count, expected_images, "{probe:?}");
    assert_eq!(probe.plots, expected_plots, "{probe:?}");
    assert_eq!(probe.images, expected_images + expected_plots, "{probe:?}");
    assert_eq!(probe.decoded, probe.images, "some images did not decode: {probe:?}");
    assert!(probe.metric_rows >= min_metric_rows, "{probe:?}");
    assert!(probe.table.width > 100.0 && probe.table.height > 20.0 * min_metric_rows as f64, "{probe:?}");
    assert!(!probe.thumbnails.is_empty(), "{probe:?}");

    // The screenshot: where the thumbnails are laid out, the picture shows them.
    let shot = dir.path().join("shot.png");
    headless(report, &[&format!("--screenshot={}", shot.display())]);
    let screenshot = image::open(&shot).unwrap().into_rgb8();
    let mut checked = 0;
    for rect in &probe.thumbnails {
        let (x0, y0) = (rect.x.ceil() as u32, rect.y.ceil() as u32);
        let (x1, y1) = ((rect.x + rect.width).floor() as u32, (rect.y + rect.height).floor() as u32);
        if x1 > screenshot.width() || y1 > screenshot.height() || x1 <= x0 + 8 || y1 <= y0 + 8 {
            continue; // below the fold
        }
        let pixels: Vec<[u8; 3]> =
            (y0..y1).flat_map(|y| (x0..x1).map(move |x| (x, y))).map(|(x, y)| screenshot.get_pixel(x, y).0).collect();
        // A shapes thumbnail is a light grey background (not the page's white) with saturated
        // shapes on it. A broken image is a white box with a small grey icon and its alt text.
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
