//! The decoder benchmark shared by `decoder_bench` and `device_check`.

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::{Optimizer, ParamsAdamW, VarBuilder, VarMap};
use caption_model::{BeamConfig, DecoderConfig, DecoderRNN, Dropout, Targets};

/// Times a training step, greedy decoding and beam search on `device`, printing JSON lines.
pub fn run(device: &Device) -> candle_core::Result<()> {
    let device = device.clone();
    let config = DecoderConfig { embed_size: 256, hidden_size: 256, vocab_size: 2994, num_layers: 1 };
    let varmap = VarMap::new();
    let decoder = DecoderRNN::new(VarBuilder::from_varmap(&varmap, DType::F32, &device), config)?;
    let mut optimizer =
        candle_nn::AdamW::new(varmap.all_vars(), ParamsAdamW { lr: 3e-4, weight_decay: 0.0, ..Default::default() })?;
    let (batch, length) = (32, 20);
    let features = Tensor::randn(0f32, 1f32, (batch, 256), &device)?;
    let captions = Tensor::rand(0f32, 2994f32, (length, batch), &device)?.to_dtype(DType::U32)?;
    let targets = Tensor::cat(&[captions.clone(), Tensor::zeros((1, batch), DType::U32, &device)?], 0)?;
    // Candle's autograd: the decoder's forward, cross-entropy, backward, AdamW (no decay: Adam).
    let autograd_step = |optimizer: &mut candle_nn::AdamW| -> candle_core::Result<()> {
        let logits = decoder.forward(&features, &captions, None)?;
        let loss =
            candle_nn::loss::cross_entropy(&logits.reshape(((length + 1) * batch, 2994))?, &targets.flatten_all()?)?;
        optimizer.backward_step(&loss)
    };
    // The hand-written CPU pass alone (`DecoderRNN::loss_gradients`, what training runs on the
    // CPU; caption-train's `train_bench` times it with its in-place Adam, candle's AdamW taking
    // longer than the pass). `targets` are the captions with a last row appended, so its first
    // `length` rows are the inputs, as above; no target is PAD (u32::MAX is no id).
    let hand_written_pass = || -> candle_core::Result<bool> {
        Ok(decoder.loss_gradients(&features, Targets::new(&targets, u32::MAX), &mut Dropout::new(0.0, 0))?.is_some())
    };
    let paths: [(&str, bool); 2] = [
        ("decoder forward + backward b32 t20 v2994 e256, hand-written CPU pass, no optimizer", true),
        ("decoder train step b32 t20 v2994 e256, autograd + candle AdamW", false),
    ];
    for (name, hand_written) in paths {
        let step = |optimizer: &mut candle_nn::AdamW| -> candle_core::Result<bool> {
            if hand_written { hand_written_pass() } else { autograd_step(optimizer).map(|()| true) }
        };
        if !step(&mut optimizer)? {
            continue; // no hand-written pass on this device
        }
        for _ in 0..2 {
            step(&mut optimizer)?;
        }
        device.synchronize()?;
        let iterations = 20;
        let start = Instant::now();
        for _ in 0..iterations {
            step(&mut optimizer)?;
        }
        device.synchronize()?;
        let per_step = start.elapsed().as_secs_f64() / iterations as f64;
        println!(
            "{{\"bench\": \"{name}\", \"device\": \"{device:?}\", \"ms\": {:.2}, \"samples_per_second\": {:.0}}}",
            per_step * 1e3,
            batch as f64 / per_step
        );
    }

    let one = Tensor::randn(0f32, 1f32, (1, 256), &device)?;
    // Each caption path once to warm up, then its mean time over `iterations` runs.
    let time = |name: &str, iterations: usize, caption: &dyn Fn() -> candle_core::Result<()>| {
        caption()?;
        let start = Instant::now();
        for _ in 0..iterations {
            caption()?;
        }
        device.synchronize()?;
        let per_caption = start.elapsed().as_secs_f64() / iterations as f64;
        println!("{{\"bench\": \"{name}\", \"device\": \"{device:?}\", \"ms\": {:.2}}}", per_caption * 1e3);
        candle_core::Result::Ok(())
    };
    // `greedy` (on the CPU its own loop of matrix-vector products, on CUDA the backend's kernels),
    // then the same loop in tensor operations (the reference path).
    time("greedy 50 steps, 1 image", 20, &|| decoder.greedy(&one, 50, u32::MAX).map(drop))?;
    time("greedy 50 steps, 1 image, tensor operations", 20, &|| {
        decoder.greedy_with_tensors(&one, 50, u32::MAX).map(drop)
    })?;
    // Beam search: `beam_search_n_best` (on CUDA the backend's kernels), then tensor operations.
    let search = BeamConfig { beam_size: 3, max_length: 20, length_penalty: 0.0, eos: u32::MAX };
    time("beam 3, 20 steps, 1 image", 10, &|| decoder.beam_search_n_best(&one, search, 1).map(drop))?;
    time("beam 3, 20 steps, 1 image, tensor operations", 10, &|| {
        decoder.beam_search_with_tensors(&one, search, 1).map(drop)
    })?;
    Ok(())
}
