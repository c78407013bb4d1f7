//! Properties that hold for any input: no panic, no NaN, scores in range, and invariants.

use caption_metrics::{Bleu, CiderD, Corpus, MetricsError, NltkSmoothing, Profile, RougeL, SacrebleuSmoothing};
use proptest::prelude::*;

/// Sentences over a tiny vocabulary, so that n-grams match often; sometimes empty.
fn sentence() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(0u8..5, 0..14)
}

/// (hypotheses, references): 1–5 segments with 1–4 references each.
fn corpus_parts() -> impl Strategy<Value = (Vec<Vec<u8>>, Vec<Vec<Vec<u8>>>)> {
    prop::collection::vec((sentence(), prop::collection::vec(sentence(), 1..5)), 1..6)
        .prop_map(|segments| segments.into_iter().unzip())
}

fn every_profile(max_order: usize) -> Vec<Bleu> {
    let mut profiles = vec![Bleu::coco().with_max_order(max_order.min(4))];
    for method in 0..=7 {
        profiles.push(Bleu::nltk(NltkSmoothing::method(method).unwrap()).with_max_order(max_order));
    }
    for smoothing in [
        SacrebleuSmoothing::None,
        SacrebleuSmoothing::Floor(0.1),
        SacrebleuSmoothing::AddK(1.0),
        SacrebleuSmoothing::Exp,
    ] {
        for effective_order in [false, true] {
            profiles.push(Bleu { profile: Profile::Sacrebleu { smoothing, effective_order }, max_order });
        }
    }
    profiles
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn scores_are_finite_and_in_range((hyps, refs) in corpus_parts(), max_order in 1usize..7) {
        let corpus = Corpus::new(&hyps, &refs).unwrap();
        for bleu in every_profile(max_order) {
            // nltk's methods 5 to 7 interpolate precisions (method 5 with p_1 + 1) and really do
            // exceed 1: nltk gives [1.1167, 0.8336] for BLEU-1, -2 of "a a a a a" against "a a a a".
            let ceiling = match &bleu.profile {
                Profile::Nltk { smoothing, .. } if smoothing.method >= 5 => f64::MAX,
                _ => 1.0 + 1e-12,
            };
            match bleu.corpus(&corpus) {
                Ok(score) => {
                    for value in &score.bleu {
                        prop_assert!(value.is_finite() && (0.0..=ceiling).contains(value), "{bleu:?}: {score:?}");
                    }
                    for value in score.precisions.iter().chain([&score.brevity_penalty]) {
                        prop_assert!(value.is_finite() && (0.0..=1.0).contains(value), "{bleu:?}: {score:?}");
                    }
                }
                // Only nltk's method 6 refuses input, as nltk itself does.
                Err(MetricsError::Undefined { library: "nltk", .. }) => {
                    let method6 = matches!(bleu.profile, Profile::Nltk { smoothing: NltkSmoothing { method: 6, .. }, .. });
                    prop_assert!(method6, "only method 6 may refuse");
                }
                Err(other) => prop_assert!(false, "{bleu:?}: {other}"),
            }
            for sentence in bleu.sentences(&corpus).unwrap_or_default() {
                prop_assert!(sentence.iter().all(|v| v.is_finite() && (0.0..=ceiling).contains(v)));
            }
        }
        match CiderD::default().score(&corpus) {
            Ok(cider) => prop_assert!(cider.segments.iter().all(|s| s.is_finite() && *s >= 0.0)),
            Err(error) => {
                let undefined = matches!(error, MetricsError::Undefined { .. });
                prop_assert!(undefined, "CIDEr-D refused: {}", error);
            }
        }
        let rouge = RougeL::default().score(&corpus);
        prop_assert!(rouge.segments.iter().all(|s| (0.0..=1.0).contains(s)));
    }

    /// Renaming tokens one-to-one changes nothing, bit for bit.
    #[test]
    fn renaming_tokens_changes_nothing((hyps, refs) in corpus_parts()) {
        let rename = |s: &Vec<u8>| s.iter().map(|t| format!("w{}", 4 - t)).collect::<Vec<_>>();
        let renamed_hyps: Vec<Vec<String>> = hyps.iter().map(rename).collect();
        let renamed_refs: Vec<Vec<Vec<String>>> = refs.iter().map(|rs| rs.iter().map(rename).collect()).collect();
        let a = Corpus::new(&hyps, &refs).unwrap();
        let b = Corpus::new(&renamed_hyps, &renamed_refs).unwrap();
        for bleu in every_profile(4) {
            prop_assert_eq!(bleu.corpus(&a).ok(), bleu.corpus(&b).ok());
        }
        prop_assert_eq!(CiderD::default().score(&a).ok(), CiderD::default().score(&b).ok());
        prop_assert_eq!(RougeL::default().score(&a), RougeL::default().score(&b));
    }

    /// Another reference can only add matches; reordering segments leaves the coco corpus score alone.
    #[test]
    fn more_references_never_lose_matches((hyps, refs) in corpus_parts(), extra in sentence()) {
        let before = Bleu::coco().corpus(&Corpus::new(&hyps, &refs).unwrap()).unwrap();
        let mut more = refs.clone();
        more[0].push(extra);
        let after = Bleu::coco().corpus(&Corpus::new(&hyps, &more).unwrap()).unwrap();
        prop_assert!(before.matches.iter().zip(&after.matches).all(|(b, a)| a >= b));

        let reversed = Bleu::coco().corpus(&Corpus::new(
            &hyps.iter().rev().cloned().collect::<Vec<_>>(),
            &refs.iter().rev().cloned().collect::<Vec<_>>(),
        ).unwrap()).unwrap();
        prop_assert_eq!(before.bleu, reversed.bleu);
    }

    /// A hypothesis equal to its only reference scores 1 (coco: 1 less its epsilons; sacrebleu:
    /// exp(log 100) is 100.00000000000004 there too).
    #[test]
    fn identical_sentences_score_one(sentence in prop::collection::vec(0u8..50, 4..30)) {
        let corpus = Corpus::new(std::slice::from_ref(&sentence), &[vec![sentence.clone()]]).unwrap();
        let nltk = Bleu::nltk(NltkSmoothing::default()).corpus(&corpus).unwrap();
        prop_assert!(nltk.bleu.iter().all(|b| *b == 1.0));
        let sacrebleu = Bleu::sacrebleu(SacrebleuSmoothing::Exp).corpus(&corpus).unwrap();
        prop_assert!(sacrebleu.bleu.iter().all(|b| (b - 1.0).abs() < 1e-14));
        let coco = Bleu::coco().corpus(&corpus).unwrap();
        prop_assert!(coco.bleu.iter().all(|b| *b < 1.0 && *b > 1.0 - 1e-8));
        prop_assert_eq!(RougeL::default().score(&corpus).score, 1.0);
    }
}

#[test]
fn malformed_corpora_are_errors() {
    let none: [Vec<&str>; 0] = [];
    let no_refs: [Vec<Vec<&str>>; 0] = [];
    assert_eq!(Corpus::new(&none, &no_refs).unwrap_err(), MetricsError::EmptyCorpus);
    assert!(matches!(
        Corpus::new(&[vec!["a"]], &[vec![vec!["a"]], vec![vec!["b"]]]),
        Err(MetricsError::LengthMismatch { hypotheses: 1, references: 2 })
    ));
    let empty_refs: Vec<Vec<Vec<&str>>> = vec![vec![vec!["a"]], vec![]];
    assert_eq!(Corpus::new(&[vec!["a"], vec!["b"]], &empty_refs).unwrap_err(), MetricsError::NoReferences { index: 1 });
    let corpus = Corpus::new(&[vec!["a"]], &[vec![vec!["a"]]]).unwrap();
    assert!(matches!(Bleu::coco().with_max_order(0).corpus(&corpus), Err(MetricsError::InvalidConfig(_))));
    assert!(matches!(Bleu::coco().with_max_order(5).corpus(&corpus), Err(MetricsError::InvalidConfig(_))));
    assert!("method8".parse::<NltkSmoothing>().is_err());
    assert!("floor:-1".parse::<SacrebleuSmoothing>().is_err());
    assert!(Bleu::from_names(caption_metrics::Compat::Coco, Some("exp")).is_err());
}
