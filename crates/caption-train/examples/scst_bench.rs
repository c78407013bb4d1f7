//! Self-critical training's speed, next to `tools/train/bench_scst_torch.py` (the same step
//! written as self-critical.pytorch writes it, on the same machine with the same threads). Both
//! time:
//!
//! - one step: 32 training images × 5 sampled captions (at most 16 tokens, self-critical.pytorch's
//!   COCO length), each rewarded with CIDEr-D (document frequencies of Flickr8k's 6,000 training
//!   images' references), the mean baseline, the weighted loss, backward and Adam, from cached
//!   2048-d pooled features through `fc` and the original's LSTM decoder (embed = hidden = 256,
//!   the vocabulary of words in 5 or more training captions); our side runs
//!   [`caption_train::scst::scst_step`], the trainer's step (which also decodes greedily each step
//!   to log the greedy captions' CIDEr-D: work the PyTorch step does not do);
//! - the reward alone: CIDEr-D of the 160 sampled captions of a step against their references.
//!
//! Our side then times the step's parts on their own (medians): sampling (plain, and keeping its
//! forward pass as the step does), greedy decoding, the weighted teacher-forced pass over the 160
//! sampled captions with the Adam update (forward and backward), and the backward pass from the
//! kept forward pass with the Adam update (what the step runs instead).
//!
//! The captions are Flickr8k's (`../shared/data/flickr8k`), lowercased and split on whitespace on
//! both sides. Prints JSON lines. In the dev profile (what `cargo xtask train` runs):
//!
//! `cargo run -p caption-train --example scst_bench -- [--data ../shared/data/flickr8k] [--steps N]`

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{Device, Tensor};
use caption_model::{Dropout, Hypothesis, Sampling, Targets};
use caption_text::{Ordering, Vocabulary};
use caption_train::scst::{Reward, ScstContext, scst_step};
use caption_train::{
    Adam, AdamConfig, ScstSettings, TrainConfig, TrainError, TrainModel, gradients_step, optimizer_step,
};

const IMAGES: usize = 32;
const SAMPLES: usize = 5;
const MAX_LENGTH: usize = 16;

/// Flickr8k's training images' captions (lowercased, split on whitespace), by image, in the order
/// of the official training list; the captions file read as `prepare-data` reads it.
fn training_captions(data: &Path) -> Result<Vec<Vec<Vec<String>>>, TrainError> {
    let records = caption_data::sources::read_captions_file(&data.join("captions.txt"))?;
    let mut by_image: HashMap<String, Vec<Vec<String>>> = HashMap::new();
    for record in records {
        let words = record.caption.to_lowercase().split_whitespace().map(str::to_string).collect();
        by_image.entry(record.image).or_default().push(words);
    }
    let list = data.join("Flickr_8k.trainImages.txt");
    let list = std::fs::read_to_string(&list).map_err(|e| TrainError::Config(format!("{}: {e}", list.display())))?;
    Ok(list.split_whitespace().filter_map(|image| by_image.remove(image)).collect())
}

fn main() -> Result<(), TrainError> {
    // SAFETY: no other thread exists yet. As `cargo xtask` does.
    unsafe { caption_model::pin_cpu_thread_count() };
    caption_train::flush_denormals_to_zero();
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    let data = PathBuf::from(value("--data").unwrap_or_else(|| "../shared/data/flickr8k".into()));
    let steps: usize = value("--steps").and_then(|s| s.parse().ok()).unwrap_or(10);
    let device = Device::Cpu;

    let captions = training_captions(&data)?;
    let all: Vec<&Vec<String>> = captions.iter().flatten().collect();
    let vocabulary = Vocabulary::build(&all, 5, Ordering::Original).map_err(|e| TrainError::Config(e.to_string()))?;
    let reward = Reward::from_references(captions.into_iter().enumerate().collect(), 0.0)?;
    let settings = ScstSettings { samples: SAMPLES, ..ScstSettings::default() };
    let context = ScstContext { reward: &reward, settings: &settings, vocabulary: &vocabulary, max_length: MAX_LENGTH };
    let config = TrainConfig { embed_size: 256, hidden_size: 256, transform_input: false, ..TrainConfig::default() };
    let model = TrainModel::new(&config, vocabulary.len(), &device)?;
    let mut optimizer = Adam::new(model.trained_vars(), AdamConfig::default())?;
    let pooled =
        |step: usize| Tensor::randn(0f32, 1.0, (IMAGES, 2048), &device).and_then(|x| x.relu()).map(|x| (step, x));
    let batches: Vec<(usize, Tensor)> = (0..steps + 2).map(pooled).collect::<Result<_, _>>()?;
    let images = |step: usize| -> Vec<usize> { (step * IMAGES..(step + 1) * IMAGES).collect() };

    let mut seconds = Vec::new();
    for (step, head_input) in &batches {
        let started = Instant::now();
        scst_step(&context, &model, head_input, &images(*step), *step as u64, &mut optimizer, (5e-5, None))?;
        seconds.push(started.elapsed().as_secs_f64());
    }
    let step_seconds = seconds[2..].iter().sum::<f64>() / steps as f64;
    report(
        "scst step b32x5 t16 (sampling, CIDEr-D reward, mean baseline, loss, backward, Adam)",
        vocabulary.len(),
        step_seconds,
    );

    // The reward alone, on a step's sampled captions.
    let network = &model.model;
    let encoded = network.encode_head_input(&batches[0].1)?;
    let seeds: Vec<u64> = (0..IMAGES as u64).collect();
    let specials = (Vocabulary::SOS, Vocabulary::EOS);
    let mut drawn = Vec::new();
    let sampling = median_ms(steps, || {
        drawn = network.sample(&encoded, &seeds, SAMPLES, MAX_LENGTH, specials, Sampling::default())?;
        Ok(())
    })?;
    report("sampling: 32 images x 5 captions, at most 16 tokens (median)", vocabulary.len(), sampling);
    let mut forward = None;
    let keeping = median_ms(steps, || {
        forward =
            network.sample_keeping_forward(&encoded, (&seeds, SAMPLES), MAX_LENGTH, specials.1, Sampling::default())?;
        Ok(())
    })?;
    report("sampling keeping its forward pass (what the step runs; median)", vocabulary.len(), keeping);
    let drawn: Vec<Hypothesis> = drawn.into_iter().flatten().collect();
    let words: Vec<Vec<String>> =
        drawn.iter().map(|caption| caption_infer::Generated::of(&vocabulary, caption.clone()).words).collect();
    let sampled_images: Vec<usize> = (0..IMAGES).flat_map(|i| std::iter::repeat_n(i, SAMPLES)).collect();
    let repeats = 20;
    let started = Instant::now();
    for _ in 0..repeats {
        reward.score(&sampled_images, &words)?;
    }
    report(
        "reward: CIDEr-D of 160 sampled captions",
        vocabulary.len(),
        started.elapsed().as_secs_f64() / repeats as f64,
    );

    // The step's other parts: greedy decoding (what the step logs), the backward pass over the
    // sampled captions from the kept forward pass with the Adam update, and the weighted
    // teacher-forced pass (forward and backward) the step runs where no forward pass is kept.
    let greedy = median_ms(steps, || {
        network.greedy(&encoded, MAX_LENGTH, Vocabulary::SOS, Vocabulary::EOS)?;
        Ok(())
    })?;
    report("greedy decoding: 32 images, at most 16 tokens (median)", vocabulary.len(), greedy);
    let ids: Vec<Vec<u32>> = drawn.iter().map(|caption| caption.ids.clone()).collect();
    let captions = network.teacher_forcing_captions(&ids, (Vocabulary::SOS, Vocabulary::PAD), &device)?;
    let advantages: Vec<f32> = (0..ids.len()).map(|i| (i % 3) as f32 - 1.0).collect();
    let rows: Vec<u32> = (0..IMAGES as u32).flat_map(|i| std::iter::repeat_n(i, SAMPLES)).collect();
    let repeated = batches[0].1.index_select(&Tensor::new(rows.as_slice(), &device)?, 0)?;
    let targets = Targets::new(&captions, Vocabulary::PAD).weighted(&advantages);
    let pass = median_ms(steps, || {
        optimizer_step(&model, &repeated, targets, &mut Dropout::new(0.0, 0), &mut optimizer, 5e-5, None)?;
        Ok(())
    })?;
    report("weighted teacher-forced pass + Adam: 160 sampled captions (median)", vocabulary.len(), pass);
    if let Some((_, forward)) = &forward {
        let backward = median_ms(steps, || {
            if let Some(head) = network.sampled_head_gradients(&repeated, targets, forward)? {
                gradients_step(head, &mut optimizer, 5e-5, None)?;
            }
            Ok(())
        })?;
        report("backward from the kept forward pass + Adam (what the step runs; median)", vocabulary.len(), backward);
    }
    Ok(())
}

/// The median time of `runs` calls of `f` (at least one).
fn median_ms(runs: usize, mut f: impl FnMut() -> Result<(), TrainError>) -> Result<f64, TrainError> {
    let mut seconds = Vec::new();
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        f()?;
        seconds.push(started.elapsed().as_secs_f64());
    }
    seconds.sort_by(f64::total_cmp);
    Ok(seconds[seconds.len() / 2])
}

fn report(bench: &str, vocabulary: usize, seconds: f64) {
    println!(
        "{{\"bench\": \"{bench}\", \"vocabulary\": {vocabulary}, \"ms\": {:.3}, \"profile\": \"{}\"}}",
        seconds * 1e3,
        if cfg!(debug_assertions) { "dev" } else { "release" }
    );
}
