//! The HTML report of an evaluation: one self-contained page (thumbnails and the training run's
//! PNG plots embedded as data URLs) with generated and reference captions, per-image BLEU, the
//! metric table and the training curves.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine;
use caption_data::PreparedDataset;

use crate::InferError;
use crate::evaluation::{Scores, SplitCaptions};

/// Most images shown (the page stays light; every caption is in captions.jsonl).
const MAX_IMAGES: usize = 200;

/// What goes on the page.
pub struct Page<'a> {
    /// Heading.
    pub title: String,
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

/// Writes the page, atomically.
///
/// # Errors
/// [`InferError::Metrics`] (per-image BLEU) or [`InferError::Io`] naming the page.
pub fn write(path: &Path, page: &Page<'_>) -> Result<(), InferError> {
    let mut html = String::new();
    let title = escape(&page.title);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\n<style>\
body{{font-family:system-ui,sans-serif;margin:24px;color:#222}}table{{border-collapse:collapse}}\
td,th{{border:1px solid #ccc;padding:4px 10px;text-align:left}}.grid{{display:flex;flex-wrap:wrap;gap:12px}}\
.card{{width:260px;border:1px solid #ddd;border-radius:6px;padding:8px}}.card img{{max-width:160px;display:block;margin-bottom:6px}}\
.gen{{font-weight:600}}.ref{{color:#555;font-size:12px;margin:2px 0}}.ok{{color:#080}}.bad{{color:#b00}}\
.plot{{width:560px;border:1px solid #ddd;margin-right:16px}}</style></head><body>\n<h1>{title}</h1>\n"
    );
    html.push_str("<h2>Scores</h2>\n<table id=\"metrics\"><tr><th>metric</th><th>value</th></tr>\n");
    let mut rows: Vec<(String, String)> =
        (0..4).map(|n| (format!("BLEU-{}", n + 1), format!("{:.4}", page.scores.bleu[n]))).collect();
    rows.push(("CIDEr-D".into(), format!("{:.4}", page.scores.cider)));
    rows.push(("ROUGE-L".into(), format!("{:.4}", page.scores.rouge_l)));
    rows.extend(page.extra_rows.iter().cloned());
    rows.push(("images".into(), page.captions.ids.len().to_string()));
    for (name, value) in rows {
        let _ = writeln!(html, "<tr><td>{}</td><td>{}</td></tr>", escape(&name), escape(&value));
    }
    html.push_str("</table>\n");
    html.push_str(&curves(&page.plots));
    let sentences = page.captions.sentence_bleu()?;
    let shown = page.captions.ids.len().min(MAX_IMAGES);
    let _ = writeln!(
        html,
        "<h2>Captions ({shown} of {} images)</h2>\n<div class=\"grid\" id=\"captions\">",
        page.captions.ids.len()
    );
    for i in 0..shown {
        let image = &page.dataset.images[page.captions.rows[i]];
        let thumbnail = thumbnail(&page.dataset.image_path(image)).unwrap_or_default();
        let hit = match page.attribute_hits.as_ref().map(|h| h[i]) {
            Some(true) => " <span class=\"ok\">✓ colours and shapes</span>",
            Some(false) => " <span class=\"bad\">✗ colours or shapes</span>",
            None => "",
        };
        let _ = write!(
            html,
            "<div class=\"card\"><img alt=\"{id}\" src=\"data:image/jpeg;base64,{thumbnail}\"><div class=\"gen\">{caption}</div>\
<div>BLEU-4 {bleu:.3}{hit}</div>",
            id = escape(&image.id),
            caption = escape(&page.captions.hypotheses[i].join(" ")),
            bleu = sentences[i].get(3).copied().unwrap_or(0.0),
        );
        for reference in &page.captions.references[i] {
            let _ = write!(html, "<div class=\"ref\">{}</div>", escape(reference));
        }
        let _ = writeln!(html, "<div class=\"ref\">{}</div></div>", escape(&image.id));
    }
    html.push_str("</div>\n</body></html>\n");
    let io = |source| InferError::Io { path: path.display().to_string(), source };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    caption_io::write_bytes_atomically(path, html.as_bytes()).map_err(io)
}

fn thumbnail(path: &Path) -> Option<String> {
    let image = caption_data::check_image_file(path).ok()?;
    let small = image::DynamicImage::ImageRgb8(image).thumbnail(160, 160).into_rgb8();
    let mut bytes = Vec::new();
    small.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Jpeg).ok()?;
    Some(base64::engine::general_purpose::STANDARD.encode(bytes))
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
