//! The HTML report: one self-contained page (thumbnails embedded as data URLs, curves as inline
//! SVG) with generated and reference captions, per-image BLEU, the metric table and the training
//! curves.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Result;
use base64::Engine;
use caption_data::PreparedDataset;

use crate::evaluate::{Scores, SplitCaptions, write_atomically};

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
    /// The run's metrics.jsonl, for the curves.
    pub metrics_jsonl: Option<PathBuf>,
    /// Per image: whether the caption names the right colours and shapes (shapes dataset).
    pub attribute_hits: Option<Vec<bool>>,
}

/// Writes the page.
pub fn write(path: &Path, page: &Page<'_>) -> Result<()> {
    let mut html = String::new();
    let title = escape(&page.title);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\n<style>\
body{{font-family:system-ui,sans-serif;margin:24px;color:#222}}table{{border-collapse:collapse}}\
td,th{{border:1px solid #ccc;padding:4px 10px;text-align:left}}.grid{{display:flex;flex-wrap:wrap;gap:12px}}\
.card{{width:260px;border:1px solid #ddd;border-radius:6px;padding:8px}}.card img{{max-width:160px;display:block;margin-bottom:6px}}\
.gen{{font-weight:600}}.ref{{color:#555;font-size:12px;margin:2px 0}}.ok{{color:#080}}.bad{{color:#b00}}\
svg{{border:1px solid #ddd;margin-right:16px}}</style></head><body>\n<h1>{title}</h1>\n"
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
    if let Some(metrics) = &page.metrics_jsonl {
        html.push_str(&curves(metrics));
    }
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
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    write_atomically(path, html.as_bytes())
}

fn thumbnail(path: &Path) -> Option<String> {
    let image = caption_data::check_image_file(path).ok()?;
    let small = image::DynamicImage::ImageRgb8(image).thumbnail(160, 160).into_rgb8();
    let mut bytes = Vec::new();
    small.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Jpeg).ok()?;
    Some(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Inline SVG line charts of the per-epoch train and validation loss and validation BLEU-4.
fn curves(metrics: &Path) -> String {
    let Ok(text) = std::fs::read_to_string(metrics) else { return String::new() };
    let epochs: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("train_loss").is_some())
        .collect();
    if epochs.is_empty() {
        return String::new();
    }
    let series = |key: &str| -> Vec<f64> { epochs.iter().filter_map(|v| v.get(key)?.as_f64()).collect() };
    let mut html = String::from("<h2>Training</h2>\n<div id=\"curves\">");
    html.push_str(&chart(
        "loss per epoch",
        &[("train", &series("train_loss"), "#1f77b4"), ("validation", &series("validation_loss"), "#ff7f0e")],
    ));
    let bleu = series("bleu_4");
    if !bleu.is_empty() {
        html.push_str(&chart("validation BLEU-4", &[("BLEU-4", &bleu, "#2ca02c")]));
    }
    html.push_str("</div>\n");
    html
}

fn chart(title: &str, lines: &[(&str, &[f64], &str)]) -> String {
    let (width, height, pad) = (420.0, 240.0, 36.0);
    let all: Vec<f64> = lines.iter().flat_map(|(_, v, _)| v.iter().copied()).filter(|v| v.is_finite()).collect();
    let (lo, hi) = all.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let (lo, hi) = if hi > lo { (lo, hi) } else { (lo - 1.0, hi + 1.0) };
    let count = lines.iter().map(|(_, v, _)| v.len()).max().unwrap_or(1).max(2);
    let x = |i: usize| pad + (width - 2.0 * pad) * i as f64 / (count - 1) as f64;
    let y = |v: f64| height - pad - (height - 2.0 * pad) * (v - lo) / (hi - lo);
    let mut svg = format!(
        "<svg width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\"><text x=\"{pad}\" y=\"20\" font-size=\"13\">{}</text>\
<text x=\"4\" y=\"{}\" font-size=\"10\">{lo:.3}</text><text x=\"4\" y=\"{}\" font-size=\"10\">{hi:.3}</text>",
        escape(title),
        height - pad,
        pad
    );
    for (k, (name, values, colour)) in lines.iter().enumerate() {
        let points: Vec<String> = values.iter().enumerate().map(|(i, &v)| format!("{:.1},{:.1}", x(i), y(v))).collect();
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/><text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"{colour}\">{}</text>",
            points.join(" "),
            width - 110.0,
            20.0 + 14.0 * k as f64,
            escape(name)
        );
    }
    svg.push_str(&format!("<text x=\"{}\" y=\"{}\" font-size=\"10\">epoch</text></svg>", width / 2.0, height - 8.0));
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
