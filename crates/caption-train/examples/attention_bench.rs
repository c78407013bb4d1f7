//! The attention decoder's frozen training step, next to `tools/model/bench_attention_torch.py`
//! (the PyTorch reference module on the same machine with the same threads): cached grids of 64
//! positions × 2048 channels (Inception v3's Mixed_7c at 299 px), the tutorial's sizes (512
//! everywhere), vocabulary 2,994, batch 32 with Flickr8k caption lengths, dropout 0.5, the loss
//! with α_c = 1, backward, Adam lr 4e-4. It runs [`caption_train::optimizer_step`], the function
//! the trainer runs. Prints a JSON line. In the dev profile (what `cargo xtask train` runs):
//!
//! `cargo run -p caption-train --example attention_bench -- [--steps N]`

use std::time::Instant;

use candle_core::{Device, Tensor};
use caption_model::{Dropout, Targets};
use caption_text::Vocabulary;

const PAD: u32 = Vocabulary::PAD;
use caption_train::{AttentionSettings, DecoderKind, TrainConfig, TrainError, TrainModel, optimizer_step};

#[path = "support/flickr8k.rs"]
mod flickr8k;
use flickr8k::FLICKR8K_LENGTHS;

const BATCH: usize = 32;
const VOCABULARY: usize = 2994;
const POSITIONS: usize = 64;
const CHANNELS: usize = 2048;

fn main() -> Result<(), TrainError> {
    // SAFETY: no other thread exists yet. As `cargo xtask` does.
    unsafe { caption_model::pin_cpu_thread_count() };
    caption_train::flush_denormals_to_zero(); // as the trainer does
    let args: Vec<String> = std::env::args().collect();
    let steps: usize =
        args.iter().position(|a| a == "--steps").and_then(|i| args.get(i + 1)?.parse().ok()).unwrap_or(10);
    let device = Device::Cpu;
    let config = TrainConfig {
        decoder: DecoderKind::Attention,
        attention: AttentionSettings::default(),
        transform_input: false,
        ..TrainConfig::default()
    };
    let model = TrainModel::new(&config, VOCABULARY, &device)?;
    let mut optimizer = caption_train::Adam::new(model.trained_vars(), caption_train::AdamConfig::default())?;
    let grid = Tensor::randn(0f32, 1f32, (BATCH, POSITIONS, CHANNELS), &device)?.relu()?;
    // Time-major as the trainer's batches: `<SOS>`, words, `<EOS>`, then PAD.
    let longest = FLICKR8K_LENGTHS.iter().copied().max().unwrap_or(2);
    let ids: Vec<u32> = (0..longest * BATCH)
        .map(|i| {
            let (t, b) = (i / BATCH, i % BATCH);
            match t {
                0 => 1,
                t if t + 1 == FLICKR8K_LENGTHS[b] => 2,
                t if t < FLICKR8K_LENGTHS[b] => 4 + ((t * BATCH + b) * 7919 % (VOCABULARY - 4)) as u32,
                _ => 0,
            }
        })
        .collect();
    let captions = Tensor::from_vec(ids, (longest, BATCH), &device)?;
    let mut dropout = Dropout::new(0.5, 0);
    // α_c = 1: the setting's default, which the model holds.
    let mut step =
        || optimizer_step(&model, &grid, Targets::new(&captions, PAD), &mut dropout, &mut optimizer, 4e-4, None);
    for _ in 0..2 {
        step()?;
    }
    let started = Instant::now();
    for _ in 0..steps {
        step()?;
    }
    let per_step = started.elapsed().as_secs_f64() / steps as f64;
    println!(
        "{}",
        serde_json::json!({"bench": "attention frozen step b32 p64 c2048 d512 v2994", "threads": rayon::current_num_threads(),
            "ms": (per_step * 1e4).round() / 10.0, "samples_per_second": (BATCH as f64 / per_step * 10.0).round() / 10.0,
            "reference_path": caption_model::backend::reference_only()})
    );
    Ok(())
}
