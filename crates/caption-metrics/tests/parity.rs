//! Parity with nltk 3.10, pycocoevalcap 1.2 and sacrebleu 2.6 on fixtures those libraries wrote
//! (`tools/metrics/generate_fixtures.py`): 1,000 seeded random corpora, edge cases, and the real
//! Flickr8k captions.

use std::path::{Path, PathBuf};

use caption_metrics::{
    Bleu, CiderD, Corpus, MetricsError, NltkSmoothing, Profile, RougeL, SacrebleuSmoothing, TrainingCiderD,
};
use serde_json::Value;

#[path = "../../../tests/support/shared_data.rs"]
mod shared_data;

/// Largest difference allowed between this crate and the reference library.
const TOLERANCE: f64 = 1e-12;

/// Compares floats and keeps the largest difference seen.
#[derive(Default)]
struct Checker {
    compared: usize,
    bit_exact: usize,
    largest: f64,
    worst: String,
}

impl Checker {
    fn close(&mut self, what: &str, actual: f64, expected: f64) {
        let difference = (actual - expected).abs() / expected.abs().max(1.0);
        self.compared += 1;
        if actual.to_bits() == expected.to_bits() {
            self.bit_exact += 1;
        }
        if difference > self.largest {
            self.largest = difference;
            self.worst = format!("{what}: {actual:e} vs {expected:e}");
        }
        assert!(difference <= TOLERANCE, "{what}: got {actual:e}, the library gives {expected:e}");
    }

    fn all_close(&mut self, what: &str, actual: &[f64], expected: &Value) {
        let expected = floats(expected);
        assert_eq!(actual.len(), expected.len(), "{what}: length");
        for (i, (a, e)) in actual.iter().zip(&expected).enumerate() {
            self.close(&format!("{what}[{i}]"), *a, *e);
        }
    }

    fn report(&self, name: &str) {
        eprintln!(
            "{name}: {} values compared, {} bit-exact, largest relative difference {:e} ({})",
            self.compared, self.bit_exact, self.largest, self.worst
        );
    }
}

fn floats(value: &Value) -> Vec<f64> {
    value.as_array().expect("an array of numbers").iter().map(|v| v.as_f64().expect("a number")).collect()
}

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture present")).expect("fixture is JSON")
}

fn corpus_of(case: &Value) -> Corpus {
    let hyps: Vec<&str> = case["hyps"].as_array().unwrap().iter().map(|h| h.as_str().unwrap()).collect();
    let refs: Vec<Vec<&str>> = case["refs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|rs| rs.as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect())
        .collect();
    Corpus::from_whitespace_text(&hyps, &refs).unwrap()
}

fn nltk_smoothing(key: &str) -> NltkSmoothing {
    let (method, custom) = match key.strip_suffix("-custom") {
        Some(m) => (m, true),
        None => (key, false),
    };
    let mut smoothing: NltkSmoothing = method.parse().unwrap();
    if custom {
        (smoothing.epsilon, smoothing.alpha, smoothing.k) = (0.2, 3.0, 2.0);
    }
    smoothing
}

fn sacre_config(key: &str, max_order: usize) -> Bleu {
    let (name, effective_order) = match key.strip_suffix("-eff") {
        Some(name) => (name, true),
        None => (key, false),
    };
    let smoothing: SacrebleuSmoothing = name.parse().unwrap();
    Bleu { profile: Profile::Sacrebleu { smoothing, effective_order }, max_order }
}

/// Checks every profile stored for one corpus.
fn check_case(case: &Value, check: &mut Checker) {
    let name = case["name"].as_str().unwrap_or("flickr8k");
    let corpus = corpus_of(case);
    let max_order = case["max_order"].as_u64().unwrap_or(4) as usize;

    for (key, expected) in case["nltk"].as_object().unwrap() {
        let bleu = Bleu::nltk(nltk_smoothing(key)).with_max_order(max_order);
        match (bleu.corpus(&corpus), expected.get("error")) {
            (Ok(score), None) => check.all_close(&format!("{name} nltk {key}"), &score.bleu, expected),
            (Err(MetricsError::Undefined { .. }), Some(_)) => {}
            (got, _) => panic!("{name} nltk {key}: got {got:?}, nltk gives {expected}"),
        }
    }
    if let Some(sentences) = case.get("nltk_sentences") {
        for (key, expected) in sentences.as_object().unwrap() {
            let scores = Bleu::nltk(nltk_smoothing(key)).with_max_order(max_order).sentences(&corpus).unwrap();
            for (i, (actual, expected)) in scores.iter().zip(expected.as_array().unwrap()).enumerate() {
                check.all_close(&format!("{name} nltk sentence {i} {key}"), actual, expected);
            }
        }
    }
    if let Some(weights) = case.get("nltk_weights") {
        let vectors: Vec<Vec<f64>> = weights["weights"].as_array().unwrap().iter().map(floats).collect();
        let smoothing = NltkSmoothing::method(1).unwrap();
        let custom =
            Bleu { profile: Profile::Nltk { smoothing, weights: Some(vectors), auto_reweigh: false }, max_order: 4 };
        check.all_close(&format!("{name} nltk weights"), &custom.corpus(&corpus).unwrap().bleu, &weights["method1"]);
        let reweighed = Bleu {
            profile: Profile::Nltk { smoothing, weights: Some(vec![vec![0.25; 4]]), auto_reweigh: true },
            max_order: 4,
        };
        check.all_close(
            &format!("{name} nltk auto_reweigh"),
            &reweighed.corpus(&corpus).unwrap().bleu,
            &weights["method1-auto-reweigh"],
        );
    }

    let coco = Bleu::coco().with_max_order(max_order);
    if case["coco"].get("error").is_some() {
        assert!(coco.corpus(&corpus).is_err(), "{name}: pycocoevalcap fails on orders above 4");
    } else if let Some(expected) = case["coco"].get("corpus") {
        check.all_close(&format!("{name} coco"), &coco.corpus(&corpus).unwrap().bleu, expected);
        let sentences = coco.sentences(&corpus).unwrap();
        for (i, expected) in case["coco"]["sentences"].as_array().unwrap().iter().enumerate() {
            check.all_close(&format!("{name} coco sentence {i}"), &sentences[i], expected);
        }
    }

    for (key, expected) in case["sacrebleu"].as_object().unwrap() {
        let score = sacre_config(key, max_order).corpus(&corpus).unwrap();
        let details = score.sacrebleu.as_ref().expect("sacrebleu details");
        let by_order: Vec<f64> = floats(&expected["bleu"]).iter().map(|s| s / 100.0).collect();
        for (n, (a, e)) in score.bleu.iter().zip(&by_order).enumerate() {
            check.close(&format!("{name} sacrebleu {key} BLEU-{}", n + 1), *a, *e);
        }
        check.close(&format!("{name} sacrebleu {key} bp"), score.brevity_penalty, expected["bp"].as_f64().unwrap());
        if let Some(precisions) = expected.get("precisions") {
            check.all_close(&format!("{name} sacrebleu {key} precisions"), &details.precisions, precisions);
        }
        if let Some(signature) = expected.get("signature") {
            assert_eq!(details.signature, signature.as_str().unwrap(), "{name} sacrebleu {key} signature");
            assert_eq!(details.formatted, expected["formatted"].as_str().unwrap(), "{name} sacrebleu {key} text");
        }
    }

    if let Some(expected) = case.get("cider") {
        let cider = CiderD::default().score(&corpus);
        match (cider, expected.get("error")) {
            (Ok(cider), None) => {
                check.close(&format!("{name} cider"), cider.score, expected["score"].as_f64().unwrap());
                check.all_close(&format!("{name} cider segments"), &cider.segments, &expected["segments"]);
            }
            (Err(MetricsError::Undefined { .. }), Some(_)) => {}
            (got, _) => panic!("{name} cider: got {got:?}, pycocoevalcap gives {expected}"),
        }
    }
    let rouge = RougeL::default().score(&corpus);
    check.close(&format!("{name} rouge"), rouge.score, case["rouge"]["score"].as_f64().unwrap());
    check.all_close(&format!("{name} rouge segments"), &rouge.segments, &case["rouge"]["segments"]);
}

#[test]
fn random_corpora_and_edge_cases_match_the_libraries() {
    let fixture = fixture("random.json");
    let cases = fixture["cases"].as_array().unwrap();
    assert!(cases.len() >= 1000, "the generator writes at least 1,000 corpora");
    let mut check = Checker::default();
    for case in cases {
        check_case(case, &mut check);
    }
    check.report("random corpora");
    assert!(check.compared > 100_000);
}

fn shared_data() -> PathBuf {
    shared_data::shared_data("")
}

/// Each Flickr8k image's first caption against its other four, lowercased, split on whitespace.
#[test]
fn flickr8k_captions_match_the_libraries() {
    let expected = fixture("flickr8k.json");
    let mut reader = csv::Reader::from_path(shared_data().join("flickr8k/captions.txt")).unwrap();
    let mut images: Vec<(String, Vec<String>)> = Vec::new();
    for row in reader.records() {
        let row = row.unwrap();
        let caption = row[1].to_lowercase();
        match images.last_mut() {
            Some((image, captions)) if image == &row[0] => captions.push(caption),
            _ => images.push((row[0].to_string(), vec![caption])),
        }
    }
    assert_eq!(images.len() as u64, expected["images"].as_u64().unwrap());
    assert_eq!(images[0].0, expected["first_image"].as_str().unwrap());
    let hyps: Vec<&str> = images.iter().map(|(_, c)| c[0].as_str()).collect();
    let refs: Vec<Vec<&str>> = images.iter().map(|(_, c)| c[1..].iter().map(String::as_str).collect()).collect();
    let corpus = Corpus::from_whitespace_text(&hyps, &refs).unwrap();

    let mut check = Checker::default();
    for (key, expected) in expected["nltk"].as_object().unwrap() {
        let score = Bleu::nltk(nltk_smoothing(key)).corpus(&corpus).unwrap();
        check.all_close(&format!("flickr8k nltk {key}"), &score.bleu, expected);
    }
    check.all_close("flickr8k coco", &Bleu::coco().corpus(&corpus).unwrap().bleu, &expected["coco_corpus"]);
    let sentences = Bleu::coco().sentences(&corpus).unwrap();
    for (i, e) in expected["coco_sentences_first_500"].as_array().unwrap().iter().enumerate() {
        check.all_close(&format!("flickr8k coco sentence {i}"), &sentences[i], e);
    }
    for (key, e) in expected["sacrebleu"].as_object().unwrap() {
        let score = sacre_config(key, 4).corpus(&corpus).unwrap();
        let by_order: Vec<f64> = floats(&e["bleu"]).iter().map(|s| s / 100.0).collect();
        for (n, (a, b)) in score.bleu.iter().zip(&by_order).enumerate() {
            check.close(&format!("flickr8k sacrebleu {key} BLEU-{}", n + 1), *a, *b);
        }
        if let Some(signature) = e.get("signature") {
            assert_eq!(score.sacrebleu.as_ref().unwrap().signature, signature.as_str().unwrap());
            assert_eq!(score.sacrebleu.as_ref().unwrap().formatted, e["formatted"].as_str().unwrap());
        }
    }
    let cider = CiderD::default().score(&corpus).unwrap();
    check.close("flickr8k cider", cider.score, expected["cider"].as_f64().unwrap());
    check.all_close("flickr8k cider segments", &cider.segments[..500], &expected["cider_segments_first_500"]);
    let rouge = RougeL::default().score(&corpus);
    check.close("flickr8k rouge", rouge.score, expected["rouge"].as_f64().unwrap());
    check.all_close("flickr8k rouge segments", &rouge.segments[..500], &expected["rouge_segments_first_500"]);
    check.report("flickr8k");
}

/// Token lists of a JSON array of word arrays.
fn sentences(value: &Value) -> Vec<Vec<String>> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_array().unwrap().iter().map(|w| w.as_str().unwrap().to_string()).collect())
        .collect()
}

/// Per image, its references.
fn reference_sets(value: &Value) -> Vec<Vec<Vec<String>>> {
    value.as_array().unwrap().iter().map(sentences).collect()
}

/// CIDEr-D with document frequencies and reference length from a training corpus (self-critical
/// training's reward) equals pycocoevalcap's CiderScorer given the same frequencies and length
/// (`tools/metrics/generate_cider_training_fixtures.py`), caption by caption, on random corpora
/// (unseen words, empty captions, references outside the training corpus) and on Flickr8k.
#[test]
fn training_df_cider_matches_pycocoevalcap_given_the_training_frequencies() {
    let fixture = fixture("cider_training_df.json");
    let mut check = Checker::default();
    let cases = fixture["random"].as_array().unwrap().iter().chain([&fixture["flickr8k"]]);
    for (index, case) in cases.enumerate() {
        let training = reference_sets(&case["training"]);
        let cider = TrainingCiderD::new(CiderD::default(), &training).unwrap();
        assert_eq!(cider.images(), training.len());
        let (hyps, refs) = (sentences(&case["hyps"]), reference_sets(&case["refs"]));
        for (i, (hyp, refs)) in hyps.iter().zip(&refs).enumerate() {
            let expected = case["scores"][i].as_f64().unwrap();
            check.close(&format!("case {index}, caption {i}"), cider.score(hyp, refs).unwrap(), expected);
        }
        let corpus = cider.corpus(&hyps, &refs).unwrap();
        check.all_close(&format!("case {index}, corpus"), &corpus.segments, &case["scores"]);
    }
    assert!(check.compared > 5_000, "{} values", check.compared);
    check.report("training-df CIDEr-D");
}
