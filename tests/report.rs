//! The HTML report of a 1,000-image evaluation in headless Chromium: the first page of cards
//! renders, sorting (worst first, best first, by each metric), text search, a metric range and
//! the pager show what the data says they should, in a page of a reasonable size. The captions
//! are synthetic (another image's reference for most images), the images are generated shapes.

mod browser;
#[path = "support/cli.rs"]
mod cli;

use caption_data::PreparedDataset;
use caption_infer::Decoding;
use caption_infer::evaluation::{ImageScores, SplitCaptions, reference_words};
use caption_infer::report::{self, PAGE_SIZE, Provenance};
use caption_metrics::Bleu;
use caption_text::Tokenizer;
use cli::{ok, prepare_shapes};

const IMAGES: usize = 1000;

/// A report of every image of a generated dataset, with captions that are right for about a
/// third of the images (their own first reference) and another image's elsewhere.
fn evaluation(dir: &std::path::Path) -> (PreparedDataset, SplitCaptions) {
    let data = dir.join("shapes");
    ok(prepare_shapes(&data, IMAGES).output().unwrap());
    let dataset = PreparedDataset::open(&data).unwrap();
    assert_eq!(dataset.images.len(), IMAGES);
    let rows: Vec<usize> = (0..IMAGES).collect();
    let references = dataset.references();
    let tokenizer = Tokenizer::english();
    let hypotheses = rows
        .iter()
        .map(|&row| {
            let source = if row % 3 == 0 { row } else { (row * 7 + 11) % IMAGES };
            tokenizer.lowercase_words(references[source][row % references[source].len()])
        })
        .collect();
    let captions = SplitCaptions {
        ids: rows.iter().map(|&r| dataset.images[r].id.clone()).collect(),
        alphas: vec![Vec::new(); rows.len()],
        grid: None,
        hypotheses,
        references: rows.iter().map(|&r| references[r].iter().map(|s| s.to_string()).collect()).collect(),
        reference_words: reference_words(&dataset, &rows),
        rows,
        bleu: Bleu::coco(),
    };
    (dataset, captions)
}

/// Writes the report of `captions` (split "all", no plots) to `page`.
fn write_report(
    page: &std::path::Path,
    dataset: &PreparedDataset,
    captions: &SplitCaptions,
    checkpoint: &str,
    decoding: Decoding,
) {
    let scores = captions.scores().unwrap();
    let provenance =
        Provenance { checkpoint: checkpoint.into(), decoding, profile: captions.metric_profile(), split: "all".into() };
    let contents = report::Page {
        title: format!("{} images", captions.ids.len()),
        provenance,
        dataset,
        captions,
        scores: &scores,
        extra_rows: Vec::new(),
        plots: Vec::new(),
        attribute_hits: None,
    };
    report::write(page, &contents).unwrap();
}

/// The page's sort: by the metric (rounded as the page holds it), ties in file order.
fn sorted(scores: &[f64], worst_first: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| {
        let by = if worst_first { scores[a].total_cmp(&scores[b]) } else { scores[b].total_cmp(&scores[a]) };
        by.then(a.cmp(&b))
    });
    order
}

fn metric(scores: &ImageScores, index: usize) -> f64 {
    let value = [scores.bleu[0], scores.bleu[1], scores.bleu[2], scores.bleu[3], scores.cider, scores.rouge_l][index];
    (value * 1e4).round() / 1e4
}

#[test]
fn a_thousand_image_report_sorts_filters_and_pages_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let (dataset, captions) = evaluation(dir.path());
    let page = dir.path().join("report.html");
    let decoding = Decoding::Beam { size: 3, length_penalty: 0.5 };
    write_report(&page, &dataset, &captions, "runs/synthetic/best (step 10, epoch 1)", decoding);
    let bytes = std::fs::metadata(&page).unwrap().len();
    println!("report of {IMAGES} images: {:.2} MB", bytes as f64 / 1e6);
    assert!(bytes < 6_000_000, "{bytes} bytes for {IMAGES} images");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("beam search, 3 hypotheses, length penalty 0.5") && html.contains("step 10, epoch 1"));
    assert!(html.contains("BLEU: coco"));

    browser::check_report(&page, IMAGES, 0, 7);

    let per_image = captions.image_scores().unwrap();
    let ids = &captions.ids;
    let ids_of = |order: &[usize]| -> Vec<String> { order.iter().map(|&i| ids[i].clone()).collect() };
    // Sorting by each metric, both ways, and the second page.
    let (probe, screenshot) = browser::open(
        &page,
        r#"const seen = {};
           for (const m of ["0", "3", "4", "5"]) {
             set("metric", m);
             set("sort", "worst"); seen["worst" + m] = cards();
             set("sort", "best"); seen["best" + m] = cards();
           }
           set("metric", "4"); set("sort", "worst");
           $("next").click(); seen.second = cards(); seen.second_count = $("count").textContent;
           $("prev").click();
           return seen;"#,
    );
    for m in [0, 3, 4, 5] {
        let values: Vec<f64> = per_image.iter().map(|s| metric(s, m)).collect();
        let worst = ids_of(&sorted(&values, true)[..PAGE_SIZE]);
        let best = ids_of(&sorted(&values, false)[..PAGE_SIZE]);
        assert_eq!(probe.observed[format!("worst{m}")], serde_json::json!(worst), "metric {m}, worst first");
        assert_eq!(probe.observed[format!("best{m}")], serde_json::json!(best), "metric {m}, best first");
    }
    let cider: Vec<f64> = per_image.iter().map(|s| metric(s, 4)).collect();
    let order = sorted(&cider, true);
    assert_eq!(probe.observed["second"], serde_json::json!(ids_of(&order[PAGE_SIZE..2 * PAGE_SIZE])));
    assert!(probe.observed["second_count"].as_str().unwrap().starts_with("101–200 of 1000 shown"), "{probe:?}");
    // The screenshot in that state (worst CIDEr-D first) shows thumbnails.
    assert_eq!(probe.cards, ids_of(&order[..PAGE_SIZE]));
    browser::check_thumbnails_drawn(&probe, &screenshot);

    // Text search over generated and reference captions and ids, then a range of BLEU-4.
    let (probe, _) = browser::open(
        &page,
        r#"const seen = {};
           set("search", "Red TRIANGLE"); seen.search = $("count").textContent; seen.search_cards = cards();
           set("search", "");
           set("metric", "3"); set("min", "0.2"); set("max", "0.6"); seen.range = $("count").textContent;
           seen.range_cards = cards();
           set("search", "nothing like this"); seen.none = $("count").textContent;
           return seen;"#,
    );
    let text = |i: usize| {
        let mut all = vec![caption_text::detokenize(&captions.hypotheses[i]), ids[i].clone()];
        all.extend(captions.references[i].iter().cloned());
        all.join("\n").to_lowercase()
    };
    let matching: Vec<usize> = (0..IMAGES).filter(|&i| text(i).contains("red triangle")).collect();
    assert!(!matching.is_empty() && matching.len() < IMAGES);
    let count = probe.observed["search"].as_str().unwrap();
    assert!(count.contains(&format!("of {} shown", matching.len())), "{count}, expected {}", matching.len());
    let first: Vec<usize> = matching.iter().copied().take(PAGE_SIZE).collect();
    assert_eq!(probe.observed["search_cards"], serde_json::json!(ids_of(&first)));
    let in_range: Vec<usize> = (0..IMAGES).filter(|&i| (0.2..=0.6).contains(&metric(&per_image[i], 3))).collect();
    assert!(!in_range.is_empty() && in_range.len() < IMAGES);
    let count = probe.observed["range"].as_str().unwrap();
    assert!(count.contains(&format!("of {} shown", in_range.len())), "{count}, expected {}", in_range.len());
    let first: Vec<usize> = in_range.iter().copied().take(PAGE_SIZE).collect();
    assert_eq!(probe.observed["range_cards"], serde_json::json!(ids_of(&first)));
    assert!(probe.observed["none"].as_str().unwrap().starts_with("none of 1000"), "{probe:?}");
}

#[test]
fn an_attention_models_cards_show_where_each_word_looked() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("shapes");
    ok(prepare_shapes(&data, 6).output().unwrap());
    let dataset = PreparedDataset::open(&data).unwrap();
    let rows: Vec<usize> = (0..dataset.images.len()).collect();
    let words = |_: &usize| vec!["red".to_string(), "circle".to_string()];
    // On a 2 × 2 grid: "red" looked at the top-left cell, "circle" at the bottom-right one.
    let alphas = |_: &usize| vec![vec![1.0, 0.0, 0.0, 0.0], vec![0.0, 0.0, 0.0, 1.0]];
    let references = dataset.references();
    let captions = SplitCaptions {
        ids: rows.iter().map(|&r| dataset.images[r].id.clone()).collect(),
        hypotheses: rows.iter().map(words).collect(),
        alphas: rows.iter().map(alphas).collect(),
        grid: Some(caption_infer::attention_map::GridGeometry::uniform(2)),
        references: rows.iter().map(|&r| references[r].iter().map(|s| s.to_string()).collect()).collect(),
        reference_words: reference_words(&dataset, &rows),
        rows,
        bleu: Bleu::coco(),
    };
    let page = dir.path().join("report.html");
    write_report(&page, &dataset, &captions, "runs/attention/best", Decoding::Greedy);
    let (probe, _) = browser::open(
        &page,
        r##"const card = document.querySelector("#captions .card");
           const maps = [...card.querySelectorAll("canvas.map")];
           const pixel = (canvas, x, y) => [...canvas.getContext("2d").getImageData(x, y, 1, 1).data].slice(0, 3);
           return { words: [...card.querySelectorAll(".maps figcaption")].map((f) => f.textContent),
                    corners: maps.map((m) => [pixel(m, 6, 6), pixel(m, 54, 54)]) };"##,
    );
    assert_eq!(probe.observed["words"], serde_json::json!(["red", "circle"]), "{probe:?}");
    let corners: Vec<[[f64; 3]; 2]> = serde_json::from_value(probe.observed["corners"].clone()).unwrap();
    assert_eq!(corners.len(), 2);
    // Closer to the overlay's red where the word looked than the other word's map is, same pixel.
    let distance = |p: [f64; 3]| ((p[0] - 255.0).powi(2) + (p[1] - 40.0).powi(2) + p[2].powi(2)).sqrt();
    let (red, circle) = (corners[0], corners[1]);
    assert!(distance(red[0]) + 60.0 < distance(circle[0]), "top-left: {red:?} vs {circle:?}");
    assert!(distance(circle[1]) + 60.0 < distance(red[1]), "bottom-right: {red:?} vs {circle:?}");
}
