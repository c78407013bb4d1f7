//! The HTML report of an evaluation: one self-contained page (no external assets) to find what a
//! model gets wrong. A header says what made it (checkpoint with step and epoch, decoding, metric
//! profile, split, date); then the corpus scores, the training run's plots, and every image of the
//! split as a card: thumbnail, generated caption (as a person writes it), references, per-image BLEU-1..4, CIDEr-D and
//! ROUGE-L. A small inline script sorts the cards (file order, worst first, best first, by any of
//! those metrics), filters them (text search over generated and reference captions and image ids,
//! a metric range) and shows them [`PAGE_SIZE`] at a time. The cards' data is embedded as JSON with
//! thumbnails re-encoded small ([`THUMBNAIL_SIDE`] px JPEG), so 1,000 images make a page of a few
//! MB. For an attention model each card also shows where it looked for each word: the thumbnail
//! with the word's weights over the grid laid over it in red (one byte per position in the data,
//! drawn by the script).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine;
use caption_data::PreparedDataset;
use rayon::prelude::*;
use serde_json::json;

use crate::attention_map::{GridGeometry, scaled_weights};
use crate::evaluation::{Scores, SplitCaptions};
use crate::{Decoding, InferError};

/// Cards shown at once; the pager steps through the rest.
pub const PAGE_SIZE: usize = 100;
/// Longest side of a thumbnail, in pixels.
pub const THUMBNAIL_SIDE: u32 = 128;
/// JPEG quality of the thumbnails.
const THUMBNAIL_QUALITY: u8 = 70;

/// What made the page, for its header.
#[derive(Debug, Clone)]
pub struct Provenance {
    /// The checkpoint (folder, step and epoch) or weights file.
    pub checkpoint: String,
    /// How captions were chosen.
    pub decoding: Decoding,
    /// The metric profile (whose BLEU arithmetic and smoothing).
    pub profile: String,
    /// The split captioned.
    pub split: String,
}

/// What goes on the page.
pub struct Page<'a> {
    /// Heading.
    pub title: String,
    /// What made it.
    pub provenance: Provenance,
    /// The dataset the images come from.
    pub dataset: &'a PreparedDataset,
    /// Generated captions and references.
    pub captions: &'a SplitCaptions,
    /// Corpus scores.
    pub scores: &'a Scores,
    /// More rows for the metric table (name, value).
    pub extra_rows: Vec<(String, String)>,
    /// PNG plots to show (a training run's curves); those that do not exist are left out.
    pub plots: Vec<PathBuf>,
    /// Per image: whether the caption names the right colours and shapes (shapes dataset).
    pub attribute_hits: Option<Vec<bool>>,
}

/// The tag in every report's head that says caption wrote it (a report is only ever replaced
/// by another report).
pub const REPORT_GENERATOR: &str = "<meta name=\"generator\" content=\"caption report\">";

/// Writes the page, atomically.
///
/// # Errors
/// [`InferError::Metrics`] (per-image scores) or [`InferError::Io`] naming the page.
pub fn write(path: &Path, page: &Page<'_>) -> Result<(), InferError> {
    let mut html = String::new();
    let title = escape(&page.title);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">{REPORT_GENERATOR}<title>{title}</title>\n"
    );
    let _ = writeln!(html, "<style>{STYLE}</style></head><body>\n<h1>{title}</h1>");
    html.push_str(&table("made", None, &provenance_rows(&page.provenance)));

    html.push_str("<h2>Scores</h2>\n");
    let mut rows: Vec<(String, String)> =
        (0..4).map(|n| (format!("BLEU-{}", n + 1), format!("{:.4}", page.scores.bleu[n]))).collect();
    rows.push(("CIDEr-D".into(), format!("{:.4}", page.scores.cider)));
    rows.push(("ROUGE-L".into(), format!("{:.4}", page.scores.rouge_l)));
    rows.extend(page.extra_rows.iter().cloned());
    rows.push(("images".into(), page.captions.ids.len().to_string()));
    html.push_str(&table("metrics", Some(["metric", "value"]), &rows));
    html.push_str(&curves(&page.plots));

    let _ = writeln!(html, "<h2>Captions</h2>\n{CONTROLS}");
    let cards = cards(page)?;
    // `<` escaped inside the JSON so that no caption can close the script element.
    let data = serde_json::to_string(&cards).expect("JSON values serialise").replace('<', "\\u003c");
    let _ = writeln!(html, "<script type=\"application/json\" id=\"data\">{data}</script>");
    let _ = writeln!(html, "<script>\n{SCRIPT}</script>\n</body></html>");

    let io = |source| InferError::Io { path: path.display().to_string(), source };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    caption_io::write_bytes_atomically(path, html.as_bytes()).map_err(io)
}

/// The header's rows.
fn provenance_rows(provenance: &Provenance) -> Vec<(String, String)> {
    let decoding = match provenance.decoding {
        Decoding::Greedy => "greedy".to_string(),
        Decoding::Beam { size, length_penalty } => {
            format!("beam search, {size} hypotheses, length penalty {length_penalty}")
        }
    };
    vec![
        ("checkpoint".into(), provenance.checkpoint.clone()),
        ("decoding".into(), decoding),
        ("metric profile".into(), provenance.profile.clone()),
        ("split".into(), provenance.split.clone()),
        ("date".into(), utc_now()),
    ]
}

/// Every image's card data: id, caption, references, metrics, attribute hit, thumbnail, and for
/// an attention model its weights for the maps.
fn cards(page: &Page<'_>) -> Result<Vec<serde_json::Value>, InferError> {
    let captions = page.captions;
    let scores = captions.image_scores()?;
    let thumbnails: Vec<String> = captions
        .rows
        .par_iter()
        .map(|&row| thumbnail(&page.dataset.image_path(&page.dataset.images[row])).unwrap_or_default())
        .collect();
    Ok((0..captions.ids.len())
        .map(|i| {
            let s = &scores[i];
            let metrics = [s.bleu[0], s.bleu[1], s.bleu[2], s.bleu[3], s.cider, s.rouge_l];
            json!({
                "id": captions.ids[i],
                "caption": caption_text::detokenize(&captions.hypotheses[i]),
                "refs": captions.references[i],
                // Rounded: the page shows three decimals and sorts on them.
                "m": metrics.map(|v| (v * 1e4).round() / 1e4),
                "hit": page.attribute_hits.as_ref().map(|hits| hits[i]),
                "thumb": thumbnails[i],
                "att": captions.grid.map_or(serde_json::Value::Null, |grid| {
                    attention(&captions.hypotheses[i], &captions.alphas[i], grid)
                }),
            })
        })
        .collect())
}

/// An attention model's weights for the card's maps: the grid's geometry, the words, and each
/// word's weights scaled from its smallest (0) to its largest (255) as the PNG maps scale them
/// ([`scaled_weights`]), one byte per cell, base64; `null` when they do not fit the grid.
fn attention(words: &[String], alphas: &[Vec<f32>], grid: GridGeometry) -> serde_json::Value {
    let positions = grid.cells * grid.cells;
    if alphas.is_empty() || alphas.len() != words.len() || alphas.iter().any(|a| a.len() != positions) {
        return serde_json::Value::Null;
    }
    let mut bytes = Vec::with_capacity(alphas.len() * positions);
    for weights in alphas {
        bytes.extend(scaled_weights(weights).iter().map(|w| (255.0 * w).round() as u8));
    }
    json!({"side": grid.cells, "offset": grid.offset, "stride": grid.stride, "input": grid.input, "words": words,
           "w": base64::engine::general_purpose::STANDARD.encode(bytes)})
}

/// A small JPEG of the image, base64 (empty when it cannot be read: the card shows its alt text).
fn thumbnail(path: &Path) -> Option<String> {
    let image = caption_data::check_image_file(path).ok()?;
    let small = image::DynamicImage::ImageRgb8(image).thumbnail(THUMBNAIL_SIDE, THUMBNAIL_SIDE).into_rgb8();
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, THUMBNAIL_QUALITY).encode_image(&small).ok()?;
    Some(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// A two-column table, with a heading row or none.
fn table(id: &str, head: Option<[&str; 2]>, rows: &[(String, String)]) -> String {
    let mut html = format!("<table id=\"{id}\">");
    if let Some([first, second]) = head {
        let _ = writeln!(html, "<tr><th>{first}</th><th>{second}</th></tr>");
    }
    for (name, value) in rows {
        let _ = writeln!(html, "<tr><td>{}</td><td>{}</td></tr>", escape(name), escape(value));
    }
    html + "</table>\n"
}

/// The PNG plots that exist, embedded as data URLs.
fn curves(paths: &[PathBuf]) -> String {
    let plots: Vec<String> = paths
        .iter()
        .filter_map(|path| std::fs::read(path).ok().map(|bytes| (path, bytes)))
        .map(|(path, bytes)| {
            let name = escape(&path.file_name().unwrap_or_default().to_string_lossy());
            let data = base64::engine::general_purpose::STANDARD.encode(bytes);
            format!("<img class=\"plot\" alt=\"{name}\" src=\"data:image/png;base64,{data}\">")
        })
        .collect();
    if plots.is_empty() {
        return String::new();
    }
    format!("<h2>Training</h2>\n<div id=\"curves\">{}</div>\n", plots.concat())
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The current time in UTC, `YYYY-MM-DD HH:MM UTC`.
fn utc_now() -> String {
    utc_date(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()))
}

/// Seconds since 1970-01-01 00:00 UTC as `YYYY-MM-DD HH:MM UTC`.
fn utc_date(seconds: u64) -> String {
    let (days, time) = (seconds / 86_400, seconds % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02} UTC", time / 3600, time % 3600 / 60)
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin-bottom:12px}\
td,th{border:1px solid #ccc;padding:4px 10px;text-align:left}#made td:first-child{color:#555}\
#controls{display:flex;flex-wrap:wrap;gap:8px 16px;align-items:center;margin:8px 0 12px}\
#controls input[type=number]{width:6em}#count{color:#555}\
.grid{display:flex;flex-wrap:wrap;gap:12px}.card{width:260px;border:1px solid #ddd;border-radius:6px;padding:8px}\
.card img{max-width:128px;max-height:128px;display:block;margin-bottom:6px}.gen{font-weight:600}\
.scores{font-size:12px;color:#333;margin:4px 0}.ref{color:#555;font-size:12px;margin:2px 0}.id{color:#888;font-size:11px}\
.ok{color:#080}.bad{color:#b00}.plot{width:560px;border:1px solid #ddd;margin-right:16px}\
.maps{display:flex;flex-wrap:wrap;gap:4px;margin:4px 0}.maps figure{margin:0;font-size:11px;text-align:center}\
.maps canvas{display:block;width:60px;height:60px}";

const CONTROLS: &str = "<div id=\"controls\">\
<label>sort <select id=\"sort\"><option value=\"file\">file order</option><option value=\"worst\">worst first</option>\
<option value=\"best\">best first</option></select></label>\
<label>by <select id=\"metric\"><option value=\"0\">BLEU-1</option><option value=\"1\">BLEU-2</option>\
<option value=\"2\">BLEU-3</option><option value=\"3\" selected>BLEU-4</option><option value=\"4\">CIDEr-D</option>\
<option value=\"5\">ROUGE-L</option></select></label>\
<label>from <input id=\"min\" type=\"number\" step=\"any\"></label><label>to <input id=\"max\" type=\"number\" step=\"any\"></label>\
<label>search <input id=\"search\" type=\"search\" placeholder=\"words in the captions or id\"></label>\
<button id=\"prev\">previous</button><button id=\"next\">next</button><span id=\"count\"></span></div>\
<noscript>Sorting, filtering and the cards need JavaScript; every caption is also in captions.jsonl.</noscript>\
<div class=\"grid\" id=\"captions\"></div>";

/// Sorting, filtering and paging over the embedded data. The card's text is set with
/// `textContent`, never parsed as HTML.
const SCRIPT: &str = r#"const rows = JSON.parse(document.getElementById("data").textContent);
const METRICS = ["BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "CIDEr-D", "ROUGE-L"];
const PAGE = 100;
for (const r of rows) r.text = [r.caption, r.id, ...r.refs].join("\n").toLowerCase();
const $ = (id) => document.getElementById(id);
let page = 0;
function selected() {
  const m = +$("metric").value, q = $("search").value.trim().toLowerCase();
  const lo = parseFloat($("min").value), hi = parseFloat($("max").value);
  const list = [];
  rows.forEach((r, i) => {
    const v = r.m[m];
    if (q && !r.text.includes(q)) return;
    if (!isNaN(lo) && v < lo) return;
    if (!isNaN(hi) && v > hi) return;
    list.push(i);
  });
  const order = $("sort").value;
  if (order === "worst") list.sort((a, b) => rows[a].m[m] - rows[b].m[m] || a - b);
  if (order === "best") list.sort((a, b) => rows[b].m[m] - rows[a].m[m] || a - b);
  return list;
}
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
function card(r) {
  const c = el("div", "card");
  c.dataset.id = r.id;
  const img = el("img");
  img.alt = r.id;
  img.src = "data:image/jpeg;base64," + r.thumb;
  c.append(img, el("div", "gen", r.caption));
  if (r.att) c.append(maps(img, r.att));
  c.append(el("div", "scores", METRICS.map((n, k) => n + " " + r.m[k].toFixed(3)).join(" · ")));
  if (r.hit !== null) c.append(el("div", r.hit ? "ok" : "bad", r.hit ? "✓ colours and shapes" : "✗ colours or shapes"));
  for (const ref of r.refs) c.append(el("div", "ref", ref));
  c.append(el("div", "id", r.id));
  return c;
}
// Where an attention model looked for each word: the thumbnail with the word's weights (scaled
// 0-255 over the grid) laid over it in red, interpolated bilinearly between the cells' centres
// (cell j looks at input pixel offset + stride * j), as the PNG maps draw them.
const MAP = 60;
function cellAt(att, pixel) {
  const position = ((pixel + 0.5) / MAP * att.input - att.offset) / att.stride;
  const p = Math.min(Math.max(position, 0), att.side - 1), low = Math.floor(p);
  return [low, Math.min(low + 1, att.side - 1), p - low];
}
function maps(img, att) {
  const box = el("div", "maps");
  const weights = Uint8Array.from(atob(att.w), (ch) => ch.charCodeAt(0));
  const n = att.side * att.side;
  const cells = [...Array(MAP).keys()].map((pixel) => cellAt(att, pixel));
  const canvases = att.words.map((word) => {
    const f = el("figure");
    const canvas = el("canvas", "map");
    canvas.width = canvas.height = MAP;
    f.append(canvas, el("figcaption", "", word));
    box.append(f);
    return canvas;
  });
  const draw = () => canvases.forEach((canvas, k) => {
    const ctx = canvas.getContext("2d");
    if (img.naturalWidth) ctx.drawImage(img, 0, 0, MAP, MAP);
    const picture = ctx.getImageData(0, 0, MAP, MAP);
    const w = (row, column) => weights[k * n + row * att.side + column] / 255;
    for (let y = 0; y < MAP; y++) {
      const [top, bottom, dy] = cells[y];
      for (let x = 0; x < MAP; x++) {
        const [left, right, dx] = cells[x];
        const upper = w(top, left) * (1 - dx) + w(top, right) * dx;
        const lower = w(bottom, left) * (1 - dx) + w(bottom, right) * dx;
        const glow = 0.7 * (upper * (1 - dy) + lower * dy);
        const at = 4 * (y * MAP + x);
        [255, 40, 0].forEach((tint, c) => { picture.data[at + c] = picture.data[at + c] * (1 - glow) + tint * glow; });
        picture.data[at + 3] = 255;
      }
    }
    ctx.putImageData(picture, 0, 0);
  });
  if (img.complete) draw(); else img.addEventListener("load", draw);
  return box;
}
function render() {
  const list = selected();
  const pages = Math.max(1, Math.ceil(list.length / PAGE));
  page = Math.min(Math.max(page, 0), pages - 1);
  const shown = list.slice(page * PAGE, (page + 1) * PAGE);
  $("captions").replaceChildren(...shown.map((i) => card(rows[i])));
  $("count").textContent = list.length
    ? `${page * PAGE + 1}–${page * PAGE + shown.length} of ${list.length} shown (${rows.length} images), page ${page + 1} of ${pages}`
    : `none of ${rows.length} images matches`;
  $("prev").disabled = page === 0;
  $("next").disabled = page >= pages - 1;
}
for (const id of ["sort", "metric", "min", "max", "search"]) $(id).addEventListener("input", () => { page = 0; render(); });
$("prev").addEventListener("click", () => { page--; render(); });
$("next").addEventListener("click", () => { page++; render(); });
render();
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_size_and_metric_names_are_the_scripts() {
        assert!(SCRIPT.contains(&format!("const PAGE = {PAGE_SIZE};")));
        // The data's metric order ([`cards`]) is the script's and the metric menu's.
        let metrics = ["BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "CIDEr-D", "ROUGE-L"];
        let names = metrics.map(|m| format!("\"{m}\"")).join(", ");
        assert!(SCRIPT.contains(&format!("const METRICS = [{names}];")));
        for (index, name) in metrics.iter().enumerate() {
            let option = format!("<option value=\"{index}\"");
            let at = CONTROLS.find(&option).unwrap();
            assert!(CONTROLS[at..].split("</option>").next().unwrap().ends_with(name), "{name}");
        }
    }

    #[test]
    fn dates_are_python_datetimes_civil_dates() {
        // datetime.fromtimestamp(s, UTC), leap days and a century that is not leap included.
        assert_eq!(utc_date(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_date(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc_date(1_796_300_000), "2026-12-03 12:13 UTC");
        assert_eq!(utc_date(4_107_542_400), "2100-03-01 00:00 UTC");
    }
}
