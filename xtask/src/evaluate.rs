//! Printing an evaluation's scores; captioning and scoring a split is caption-infer's
//! ([`caption_infer::evaluation`]).

use caption_infer::evaluation::Scores;

/// Prints the metric table.
pub fn print_scores(label: &str, scores: &Scores) {
    println!("{label}");
    for (n, b) in scores.bleu.iter().enumerate() {
        println!("  BLEU-{}   {:.4}", n + 1, b);
    }
    println!("  CIDEr-D  {:.4}", scores.cider);
    println!("  ROUGE-L  {:.4}", scores.rouge_l);
}
