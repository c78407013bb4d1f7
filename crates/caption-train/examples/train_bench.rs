//! Training-step speed, next to `tools/train/bench_train_torch.py` (the PyTorch original on the
//! same machine with the same threads). Both time the step each mode takes:
//!
//! - frozen: from cached 2048-d pooled features, `fc` + ReLU + dropout, the decoder, the
//!   PAD-masked cross-entropy, backward, Adam (batch 32, 21 tokens, vocabulary 2,994,
//!   embed = hidden = 256: Flickr8k's original-compatible vocabulary and the original's sizes);
//! - seed: Inception v3 in train mode on 32 images of 299×299, then the same step (only `fc` and
//!   the decoder train, as in the original);
//! - finetune (`--finetune`): the seed step with Inception v3 training too;
//! - decoder: the decoder alone from 256-d features, as `tools/model/bench_decoder_torch.py` times
//!   the original's `DecoderRNN` (20 caption tokens + 1 target row, no dropout, no PAD, Adam).
//!
//! It runs [`caption_train::optimizer_step`], the function the trainer runs. Prints JSON lines.
//! In the dev profile (what `cargo xtask train` runs):
//!
//! `cargo run -p caption-train --example train_bench -- [--device cpu|cuda] [--seed-steps N (0: frozen only)] [--image-batch N] [--finetune]`

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use caption_model::{Dropout, Targets, parse_device};
use caption_text::Vocabulary;

const PAD: u32 = Vocabulary::PAD;
use caption_train::{Adam, AdamConfig, Gradients, TrainConfig, TrainError, TrainModel, optimizer_step};

#[path = "support/flickr8k.rs"]
mod flickr8k;
use flickr8k::FLICKR8K_LENGTHS;

const BATCH: usize = 32;
const TOKENS: usize = 21;
const VOCABULARY: usize = 2994;

/// 40 batches as a Flickr8k epoch meets them (`tools/train/generate_epoch_lengths.py`), the same
/// file `bench_train_torch.py` reads.
const EPOCH_LENGTHS: &str = include_str!("../../../tools/train/flickr8k_epoch_lengths.json");

/// Captions of `lengths` (one per batch row) padded to the longest: token `(t, b)` is `4 + (t · 32
/// + b) · 7919 mod (vocabulary − 4)` (the full-length benchmark's tokens), as in
/// `bench_train_torch.py`.
fn padded_captions(lengths: &[usize], device: &Device) -> candle_core::Result<Tensor> {
    let longest = lengths.iter().copied().max().unwrap_or(1);
    let ids: Vec<u32> = (0..longest * BATCH)
        .map(|i| {
            if i / BATCH < lengths[i % BATCH] {
                4 + (i * 7919 % (VOCABULARY - 4)) as u32
            } else {
                caption_text::Vocabulary::PAD
            }
        })
        .collect();
    Tensor::from_vec(ids, (longest, BATCH), device)
}

/// The epoch batches as padded caption tensors ([`padded_captions`]), and their PAD share.
fn epoch_batches(device: &Device) -> Result<(Vec<Tensor>, f64), TrainError> {
    let file: serde_json::Value =
        serde_json::from_str(EPOCH_LENGTHS).map_err(|e| TrainError::Config(format!("epoch lengths: {e}")))?;
    let batches: Vec<Vec<usize>> = serde_json::from_value(file["batches"].clone())
        .map_err(|e| TrainError::Config(format!("epoch lengths: {e}")))?;
    let tensors = batches.iter().map(|lengths| padded_captions(lengths, device)).collect::<Result<_, _>>()?;
    Ok((tensors, file["pad_share"].as_f64().unwrap_or(f64::NAN)))
}

fn main() -> Result<(), TrainError> {
    // SAFETY: no other thread exists yet. As `cargo xtask` does.
    unsafe { caption_model::pin_cpu_thread_count() };
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    caption_train::flush_denormals_to_zero(); // as the trainer does
    let device = parse_device(&value("--device").unwrap_or_else(|| "cpu".into()))?;
    let seed_steps: usize = value("--seed-steps").and_then(|s| s.parse().ok()).unwrap_or(3);
    let config = TrainConfig { embed_size: 256, hidden_size: 256, transform_input: false, ..TrainConfig::default() };
    let model = TrainModel::new(&config, VOCABULARY, &device)?;
    let mut optimizer = Adam::new(model.trained_vars(), AdamConfig::default())?;
    let mut dropout = Dropout::new(0.5, 0);
    let captions = padded_captions(&[TOKENS; BATCH], &device)?;
    let pooled = Tensor::randn(0f32, 1f32, (BATCH, 2048), &device)?;

    let time = |steps: usize, step: &mut dyn FnMut() -> Result<(), TrainError>| -> Result<f64, TrainError> {
        step()?; // warm-up
        device.synchronize()?;
        let start = Instant::now();
        for _ in 0..steps {
            step()?;
        }
        device.synchronize()?;
        Ok(start.elapsed().as_secs_f64() / steps as f64)
    };
    let frozen = time(20, &mut || {
        optimizer_step(&model, &pooled, Targets::new(&captions, PAD), &mut dropout, &mut optimizer, 3e-4, None)
            .map(|_| ())
    })?;
    report("frozen train step (fc + decoder + Adam) b32 t21 v2994 e256", &device, frozen, "samples_per_second", BATCH);
    let padded = padded_captions(&FLICKR8K_LENGTHS, &device)?;
    let frozen_padded = time(20, &mut || {
        optimizer_step(&model, &pooled, Targets::new(&padded, PAD), &mut dropout, &mut optimizer, 3e-4, None)
            .map(|_| ())
    })?;
    let name = "frozen train step, Flickr8k caption lengths (padded to 20, 30% PAD)";
    report(name, &device, frozen_padded, "samples_per_second", BATCH);
    let (epoch, pad_share) = epoch_batches(&device)?;
    let frozen_epoch = time(1, &mut || {
        for batch in &epoch {
            optimizer_step(&model, &pooled, Targets::new(batch, PAD), &mut dropout, &mut optimizer, 3e-4, None)?;
        }
        Ok(())
    })? / epoch.len() as f64;
    let name = format!("frozen train step, {} Flickr8k epoch batches ({:.0}% PAD)", epoch.len(), pad_share * 100.0);
    report(&name, &device, frozen_epoch, "samples_per_second", BATCH);

    // The decoder alone, as bench_decoder_torch.py: its own Adam over the decoder's parameters.
    let decoder_vars: Vec<_> =
        model.trained_vars().into_iter().filter(|(name, _)| name.starts_with(caption_train::DECODER_PREFIX)).collect();
    let mut decoder_optimizer = Adam::new(decoder_vars, AdamConfig::default())?;
    let features = Tensor::randn(0f32, 1f32, (BATCH, 256), &device)?;
    let targets = Tensor::cat(&[captions.narrow(0, 0, 20)?, Tensor::zeros((1, BATCH), DType::U32, &device)?], 0)?;
    let no_dropout = &mut Dropout::new(0.0, 0);
    // The model's own decoder variables, read as a `DecoderRNN` of the original's sizes.
    let vb =
        candle_nn::VarBuilder::from_varmap(&model.varmap, DType::F32, &device).pp(caption_model::cnn_to_rnn::DECODER);
    let (embed_size, hidden_size, num_layers) = (config.embed_size, config.hidden_size, config.num_layers);
    let sizes = caption_model::DecoderConfig { embed_size, hidden_size, vocab_size: VOCABULARY, num_layers };
    let lstm_decoder = caption_model::DecoderRNN::new(vb, sizes)?;
    let decoder = time(20, &mut || {
        let Some(pass) = lstm_decoder.loss_gradients(&features, Targets::new(&targets, u32::MAX), no_dropout)? else {
            return Err(TrainError::Weights("the decoder step is timed on the CPU only".into()));
        };
        let named = pass.gradients.into_iter().map(|(name, g)| (format!("{}{name}", caption_train::DECODER_PREFIX), g));
        decoder_optimizer.step(&Gradients::Named(named.collect()), 3e-4, 1.0)?;
        Ok(())
    });
    match decoder {
        Ok(seconds) => report("decoder train step b32 t20 v2994 e256", &device, seconds, "samples_per_second", BATCH),
        Err(error) => eprintln!("decoder step not timed: {error}"),
    }

    if seed_steps == 0 {
        return Ok(()); // `--seed-steps 0`: the frozen step only
    }
    // Seed and finetune steps: `--image-batch N` images (1 to 32, default 32) with as many captions.
    let image_batch: usize = value("--image-batch").and_then(|s| s.parse().ok()).unwrap_or(BATCH).clamp(1, BATCH);
    let images = Tensor::randn(0f32, 1f32, (image_batch, 3, 299, 299), &device)?;
    let captions = captions.narrow(1, 0, image_batch.min(BATCH))?;
    let seed = time(seed_steps, &mut || {
        let pooled = model.model.inception().forward_batch_statistics(&images)?.pooled.detach();
        optimizer_step(&model, &pooled, Targets::new(&captions, PAD), &mut dropout, &mut optimizer, 3e-4, None)
            .map(|_| ())
    })?;
    let name = format!("seed train step (Inception v3 train mode 299 px + fc + decoder) b{image_batch}");
    report(&name, &device, seed, "images_per_second", image_batch);

    if args.iter().any(|a| a == "--finetune") {
        let mut everything =
            Adam::with_groups(vec![(model.trained_vars(), 1.0), (model.encoder_vars(), 0.1)], AdamConfig::default())?;
        let finetune = time(seed_steps, &mut || {
            let pooled = model.model.inception().forward_t(&images, true)?.pooled;
            optimizer_step(&model, &pooled, Targets::new(&captions, PAD), &mut dropout, &mut everything, 3e-4, None)
                .map(|_| ())
        })?;
        let name = format!("finetune train step (all of Inception v3 trains) b{image_batch}");
        report(&name, &device, finetune, "images_per_second", image_batch);
    }
    Ok(())
}

fn report(bench: &str, device: &Device, seconds: f64, rate: &str, batch: usize) {
    let device = if device.is_cuda() { "cuda" } else { "cpu" };
    println!(
        "{{\"bench\": \"{bench}\", \"device\": \"{device}\", \"ms\": {:.2}, \"{rate}\": {:.1}, \"profile\": \"{}\"}}",
        seconds * 1e3,
        batch as f64 / seconds,
        if cfg!(debug_assertions) { "dev" } else { "release" }
    );
}
