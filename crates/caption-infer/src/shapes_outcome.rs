//! What `cargo xtask demo` finds on the shapes dataset's test split: a run captioned and scored
//! ([`ScoredRun`]), the LSTM run beside it when the demo compares decoders, the best constant
//! caption as the baseline, the demo's goals met or missed, and the evaluation folder and report
//! it writes ([`ShapesOutcome`]). The measures themselves are [`crate::shapes_scores`]'.

use std::fmt;
use std::path::{Path, PathBuf};

use candle_core::Device;
use caption_data::{PreparedDataset, Progress, Split};
use serde_json::json;

use crate::evaluation::{Scores, SplitCaptions, caption_split};
use crate::shapes_scores::{ShapesScores, best_constant_caption};
use crate::{Captioner, Decoding, InferError, checkpoint_files, report, run_layout};

/// A trained run's test split, captioned greedily with its best checkpoint and scored.
pub struct ScoredRun {
    /// The run folder.
    pub run: PathBuf,
    /// The checkpoint that captioned.
    pub checkpoint: Option<PathBuf>,
    /// Where the model came from, for people ([`Captioner::source`]).
    pub source: String,
    /// The test split's captions.
    pub captions: SplitCaptions,
    /// BLEU-1..4, CIDEr-D, ROUGE-L.
    pub scores: Scores,
    /// Attribute and object accuracy, attention on the named object.
    pub shapes: ShapesScores,
}

impl ScoredRun {
    /// Captions the test split of `dataset` (a shapes dataset) with `run`'s best checkpoint and
    /// scores it.
    ///
    /// # Errors
    /// What loading the model, captioning or scoring meets.
    pub fn of(
        run: &Path,
        dataset: &PreparedDataset,
        device: &Device,
        progress: &dyn Progress,
    ) -> Result<Self, InferError> {
        let captioner = Captioner::from_run_or_checkpoint(run, device)?;
        let captions = caption_split(&captioner, dataset, Split::Test, Decoding::Greedy, progress)?;
        let scores = captions.scores()?;
        let shapes = ShapesScores::of(dataset, &captions)?;
        let checkpoint = checkpoint_files::find_checkpoint(run);
        Ok(Self { run: run.to_path_buf(), checkpoint, source: captioner.source, captions, scores, shapes })
    }
}

/// One of the demo's goals, met or missed (`None`: it could not be measured).
#[derive(Debug, Clone, PartialEq)]
pub struct Goal {
    /// What it asks, for people (`BLEU-4 >= 0.5`).
    pub name: String,
    /// Whether the run meets it.
    pub met: Option<bool>,
}

impl fmt::Display for Goal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.met {
            Some(met) => write!(f, "{} {}", self.name, if met { "met" } else { "MISSED" }),
            None => write!(f, "{} not measured (no caption names a colour or shape)", self.name),
        }
    }
}

/// What the main run is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// The LSTM run beside the attention run, on the same data.
    Decoders,
    /// The cross-entropy run the main (self-critical) run started from.
    Objectives,
}

impl Comparison {
    /// The columns' names: the compared run's, then the main run's.
    pub fn labels(self) -> (&'static str, &'static str) {
        match self {
            Self::Decoders => ("LSTM", "attention"),
            Self::Objectives => ("cross-entropy", "self-critical"),
        }
    }
}

/// A run scored beside the main one.
pub struct Compared {
    /// The run.
    pub run: ScoredRun,
    /// What it is to the main run.
    pub comparison: Comparison,
}

/// The demo's findings: the main run (the attention model when decoders are compared, the
/// self-critical run after its cross-entropy run), the run compared with it, and the baseline.
pub struct ShapesOutcome {
    /// The run the report and the evaluation folder are about.
    pub main: ScoredRun,
    /// The run beside it.
    pub compared: Option<Compared>,
    /// The best constant caption ([`best_constant_caption`]).
    pub baseline_caption: String,
    /// Its corpus BLEU-4 on the test split.
    pub baseline_bleu_4: f64,
}

impl ShapesOutcome {
    /// The outcome of `main` (and the run `compared` with it) on `dataset`'s test split, the
    /// baseline found.
    ///
    /// # Errors
    /// [`InferError::Metrics`] when the baseline cannot be scored.
    pub fn new(main: ScoredRun, compared: Option<Compared>, dataset: &PreparedDataset) -> Result<Self, InferError> {
        let (baseline_caption, baseline_bleu_4) = best_constant_caption(dataset, &main.captions)?;
        Ok(Self { main, compared, baseline_caption, baseline_bleu_4 })
    }

    /// The main run's BLEU-4 over the baseline's.
    pub fn over_baseline(&self) -> f64 {
        self.main.scores.bleu[3] / self.baseline_bleu_4.max(1e-12)
    }

    /// The demo's goals: alone, BLEU-4 ≥ 0.5, twice the baseline, attribute accuracy ≥ 80 %;
    /// comparing decoders, the attention model at least as good as the LSTM on BLEU-4 and
    /// attribute accuracy, and at least half of a named colour or shape's attention on its object;
    /// after self-critical training, those of the model alone and a CIDEr-D at least the
    /// cross-entropy model's.
    pub fn goals(&self) -> Vec<Goal> {
        let goal = |name: &str, met: Option<bool>| Goal { name: name.into(), met };
        let (main, shapes) = (&self.main.scores, &self.main.shapes);
        let alone = vec![
            goal("BLEU-4 >= 0.5", Some(main.bleu[3] >= 0.5)),
            goal(">= 2x baseline", Some(self.over_baseline() >= 2.0)),
            goal("attribute accuracy >= 80 %", Some(shapes.attribute_accuracy() >= 0.8)),
        ];
        match &self.compared {
            None => alone,
            Some(Compared { run: lstm, comparison: Comparison::Decoders }) => vec![
                goal("attention >= LSTM on BLEU-4", Some(main.bleu[3] >= lstm.scores.bleu[3])),
                goal("on attribute accuracy", Some(shapes.attribute_accuracy() >= lstm.shapes.attribute_accuracy())),
                goal("attention on the named object >= 50 %", shapes.attention_on_object.map(|share| share >= 0.5)),
            ],
            Some(Compared { run: cross_entropy, comparison: Comparison::Objectives }) => {
                let mut goals = alone;
                goals.push(goal(
                    "self-critical >= cross-entropy on CIDEr-D",
                    Some(main.cider >= cross_entropy.scores.cider),
                ));
                goals
            }
        }
    }

    /// The measures beside BLEU, as the evaluation's metrics.json and the demo's JSON hold them.
    pub fn measures_json(&self) -> serde_json::Value {
        let shapes = &self.main.shapes;
        let mut measures = json!({
            "baseline_bleu_4": self.baseline_bleu_4, "baseline_caption": self.baseline_caption,
            "attribute_accuracy": shapes.attribute_accuracy(), "object_accuracy": shapes.object_accuracy(),
        });
        if let Some(share) = shapes.attention_on_object {
            measures["attention_on_object"] = json!(share);
        }
        measures
    }

    /// The scores and measures as one JSON object (with the LSTM's under `lstm` when compared).
    pub fn to_json(&self) -> serde_json::Value {
        let scores = &self.main.scores;
        let mut object = self.measures_json();
        for (n, bleu) in scores.bleu.iter().enumerate() {
            object[format!("bleu_{}", n + 1)] = json!(bleu);
        }
        object["cider"] = json!(scores.cider);
        object["rouge_l"] = json!(scores.rouge_l);
        object["test_images"] = json!(self.main.captions.ids.len());
        object["checkpoint"] = json!(self.main.checkpoint);
        if let Some(Compared { run, comparison }) = &self.compared {
            let key = match comparison {
                Comparison::Decoders => {
                    object["decoder"] = json!("attention");
                    object["attention_on_object"] = json!(self.main.shapes.attention_on_object);
                    "lstm"
                }
                Comparison::Objectives => {
                    object["objective"] = json!("scst");
                    "cross_entropy"
                }
            };
            object[key] = json!({
                "run": run.run, "bleu": run.scores.bleu, "cider": run.scores.cider,
                "attribute_accuracy": run.shapes.attribute_accuracy(),
                "object_accuracy": run.shapes.object_accuracy(),
            });
        }
        object
    }

    /// Writes the main run's evaluation of the test split (`RUN/eval-test`: results, captions,
    /// metrics with [`Self::measures_json`]) and the HTML report at `report_path` (with `plots`,
    /// the run's training curves); returns the evaluation folder and its files.
    ///
    /// # Errors
    /// [`InferError::Io`] naming what could not be written, or a metric that cannot be scored.
    pub fn write(
        &self,
        dataset: &PreparedDataset,
        report_path: &Path,
        title: String,
        plots: Vec<PathBuf>,
    ) -> Result<(PathBuf, Vec<PathBuf>), InferError> {
        let main = &self.main;
        let eval_dir = run_layout::evaluation_dir(&main.run, Split::Test.name());
        let paths = main.captions.write(&eval_dir, &main.scores, self.measures_json())?;
        let shapes = &main.shapes;
        let mut extra_rows = vec![
            ("best constant caption".into(), self.baseline_caption.clone()),
            ("its BLEU-4 (baseline)".into(), format!("{:.4}", self.baseline_bleu_4)),
            ("attribute accuracy".into(), format!("{:.1} %", 100.0 * shapes.attribute_accuracy())),
            ("object accuracy".into(), format!("{:.1} %", 100.0 * shapes.object_accuracy())),
        ];
        if let Some(share) = shapes.attention_on_object {
            extra_rows.push(("attention on the named object".into(), format!("{:.1} %", 100.0 * share)));
        }
        if let Some(Compared { run, comparison }) = &self.compared {
            let (label, _) = comparison.labels();
            extra_rows.extend([
                (format!("{label} model: BLEU-4"), format!("{:.4}", run.scores.bleu[3])),
                (format!("{label} model: CIDEr-D"), format!("{:.4}", run.scores.cider)),
                (
                    format!("{label} model: attribute accuracy"),
                    format!("{:.1} %", 100.0 * run.shapes.attribute_accuracy()),
                ),
                (format!("{label} model: object accuracy"), format!("{:.1} %", 100.0 * run.shapes.object_accuracy())),
            ]);
        }
        let page = report::Page {
            title,
            provenance: report::Provenance {
                checkpoint: main.source.clone(),
                decoding: Decoding::Greedy,
                profile: main.captions.metric_profile(),
                split: Split::Test.to_string(),
            },
            dataset,
            captions: &main.captions,
            scores: &main.scores,
            extra_rows,
            plots,
            attribute_hits: Some(shapes.attribute_hits.clone()),
        };
        report::write(report_path, &page)?;
        Ok((eval_dir, paths))
    }
}

/// What the demo prints under the metric table: the baseline, the attribute accuracy, the two
/// decoders side by side when compared, and the goals.
impl fmt::Display for ShapesOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (main, shapes) = (&self.main, &self.main.shapes);
        writeln!(
            f,
            "  baseline BLEU-4 {:.4} (best constant caption: {:?}); model/baseline {:.2}x",
            self.baseline_bleu_4,
            self.baseline_caption,
            self.over_baseline()
        )?;
        writeln!(
            f,
            "  attribute accuracy {:.1} % (captions naming the right colour and shape of every object)",
            100.0 * shapes.attribute_accuracy()
        )?;
        if let Some(Compared { run: other, comparison }) = &self.compared {
            let (first, second) = comparison.labels();
            writeln!(f, "  side by side (same data, greedy decoding):")?;
            writeln!(f, "    {:<38} {:>13} {:>13}", "", first, second)?;
            let (a, b) = (&other.scores, &main.scores);
            for n in 0..4 {
                writeln!(f, "    {:<38} {:>13.4} {:>13.4}", format!("BLEU-{}", n + 1), a.bleu[n], b.bleu[n])?;
            }
            writeln!(f, "    {:<38} {:>13.4} {:>13.4}", "CIDEr-D", a.cider, b.cider)?;
            let (a, b) = (&other.shapes, shapes);
            for (name, x, y) in [
                ("attribute accuracy", a.attribute_accuracy(), b.attribute_accuracy()),
                ("object accuracy (colour+shape+place)", a.object_accuracy(), b.object_accuracy()),
            ] {
                writeln!(f, "    {name:<38} {:>12.1}% {:>12.1}%", 100.0 * x, 100.0 * y)?;
            }
            if let Some(share) = shapes.attention_on_object {
                let other_share = other.shapes.attention_on_object.map_or("-".into(), |s| format!("{:.1}%", 100.0 * s));
                writeln!(
                    f,
                    "    {:<38} {:>13} {:>12.1}%",
                    "attention on the named object",
                    other_share,
                    100.0 * share
                )?;
            }
        }
        let goals: Vec<String> = self.goals().iter().map(Goal::to_string).collect();
        writeln!(f, "  goals: {}", goals.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use caption_metrics::Bleu;

    use super::*;

    fn scored(bleu_4: f64, attribute_hits: Vec<bool>, attention_on_object: Option<f64>) -> ScoredRun {
        let images = attribute_hits.len();
        ScoredRun {
            run: PathBuf::from("runs/x"),
            checkpoint: None,
            source: "runs/x/best".into(),
            captions: SplitCaptions {
                rows: (0..images).collect(),
                ids: (0..images).map(|i| format!("shapes_{i:05}")).collect(),
                hypotheses: vec![vec!["a".into()]; images],
                alphas: vec![Vec::new(); images],
                grid: None,
                references: vec![Vec::new(); images],
                reference_words: vec![Vec::new(); images],
                bleu: Bleu::coco(),
            },
            scores: Scores { bleu: [0.9, 0.8, 0.7, bleu_4], cider: 1.5, rouge_l: 0.7 },
            shapes: ShapesScores { object_hits: attribute_hits.clone(), attribute_hits, attention_on_object },
        }
    }

    fn outcome(main: ScoredRun, compared: Option<(ScoredRun, Comparison)>) -> ShapesOutcome {
        let compared = compared.map(|(run, comparison)| Compared { run, comparison });
        ShapesOutcome { main, compared, baseline_caption: "a red circle".into(), baseline_bleu_4: 0.2 }
    }

    #[test]
    fn goals_alone_are_bleu_the_baseline_and_attributes() {
        let alone = outcome(scored(0.6, vec![true, false], None), None);
        let met: Vec<Option<bool>> = alone.goals().iter().map(|g| g.met).collect();
        assert_eq!(met, [Some(true), Some(true), Some(false)]);
        let text = alone.to_string();
        assert!(text.contains("model/baseline 3.00x"), "{text}");
        assert!(
            text.contains("goals: BLEU-4 >= 0.5 met, >= 2x baseline met, attribute accuracy >= 80 % MISSED"),
            "{text}"
        );
        assert!(!text.contains("side by side"), "{text}");
        assert_eq!(alone.to_json()["attribute_accuracy"], 0.5);
        assert!(alone.to_json().get("lstm").is_none());
    }

    #[test]
    fn goals_compared_are_against_the_lstm_and_attention_on_the_object() {
        let lstm = scored(0.5, vec![true, false, false, false], None);
        let compared =
            outcome(scored(0.6, vec![true, true, false, false], Some(0.4)), Some((lstm, Comparison::Decoders)));
        let met: Vec<Option<bool>> = compared.goals().iter().map(|g| g.met).collect();
        assert_eq!(met, [Some(true), Some(true), Some(false)]);
        let text = compared.to_string();
        assert!(text.contains("side by side"), "{text}");
        let attention_row = text.lines().find(|line| line.trim_start().starts_with("attention on the named object"));
        assert_eq!(
            attention_row.map(|row| row.split_whitespace().skip(5).collect::<Vec<_>>()),
            Some(vec!["-", "40.0%"])
        );
        assert_eq!(compared.to_json()["lstm"]["attribute_accuracy"], 0.25);

        let unmeasured =
            outcome(scored(0.6, vec![true], None), Some((scored(0.5, vec![true], None), Comparison::Decoders)));
        assert_eq!(unmeasured.goals()[2].met, None);
        assert!(unmeasured.to_string().contains("not measured"));
    }

    #[test]
    fn self_critical_goals_add_cider_against_the_cross_entropy_model() {
        let mut cross_entropy = scored(0.6, vec![true, true], None);
        cross_entropy.scores.cider = 2.0;
        let outcome = outcome(scored(0.6, vec![true, true], None), Some((cross_entropy, Comparison::Objectives)));
        let goals = outcome.goals();
        assert_eq!(goals.len(), 4);
        assert_eq!(
            goals[3].to_string(),
            "self-critical >= cross-entropy on CIDEr-D smaller MISSED".replace(" smaller", "")
        );
        let text = outcome.to_string();
        assert!(text.contains("cross-entropy self-critical"), "{text}");
        assert_eq!(outcome.to_json()["cross_entropy"]["cider"], 2.0);
        assert_eq!(outcome.to_json()["objective"], "scst");
    }
}
