//! Decoder speed next to `tools/model/bench_decoder_torch.py`, at batch 32, caption length 20,
//! vocabulary 2,994, embed = hidden = 256: the hand-written CPU forward and backward pass alone
//! (`DecoderRNN::loss_gradients`; with caption-train's Adam it is `train_bench`'s "decoder" row),
//! one training step through candle's autograd and AdamW, and greedy decoding of 50 steps for one
//! image (the CPU loop and tensor operations). Prints JSON lines.
//!
//! `cargo run --release -p caption-model --example decoder_bench -- [--device cpu|cuda]`

use caption_model::parse_device;

#[path = "common/decoder.rs"]
mod decoder;

fn main() -> candle_core::Result<()> {
    // SAFETY: no other thread exists yet. As `cargo xtask` does.
    unsafe { caption_model::pin_cpu_thread_count() };
    let args: Vec<String> = std::env::args().collect();
    let spec = args.iter().position(|a| a == "--device").and_then(|i| args.get(i + 1)).map_or("cpu", String::as_str);
    decoder::run(&parse_device(spec)?)
}
