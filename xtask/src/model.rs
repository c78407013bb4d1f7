//! `cargo xtask import-checkpoint`.

use std::path::PathBuf;

use anyhow::Result;
use caption_model::{read_original_checkpoint, save_safetensors};
use clap::Args;

/// Convert the PyTorch original's checkpoint to safetensors.
///
/// Reads the `state_dict` of `my_checkpoint.pth.tar` (as the original's `save_checkpoint` writes
/// it) and writes every tensor, under the original's names (`encoderCNN.inception.*`,
/// `decoderRNN.embed.weight`, `decoderRNN.lstm.weight_ih_l0`, …), to a safetensors file. The
/// optimizer state and step are not carried over. Pair the result with the vocabulary from
/// `cargo xtask vocab CAPTIONS --ordering seed` to use the model here.
#[derive(Args, Debug)]
#[command(after_help = "Example:\n  cargo xtask import-checkpoint my_checkpoint.pth.tar --out model.safetensors")]
pub struct ImportArgs {
    /// The original's checkpoint (`torch.save({"state_dict", "optimizer", "step"}, ...)`).
    checkpoint: PathBuf,
    /// Where to write the safetensors file.
    #[arg(long, value_name = "model.safetensors")]
    out: PathBuf,
}

/// Runs `cargo xtask import-checkpoint`.
pub fn import_checkpoint(args: &ImportArgs) -> Result<()> {
    let tensors = read_original_checkpoint(&args.checkpoint)?;
    let parameters: usize = tensors.values().map(|t| t.elem_count()).sum();
    save_safetensors(&tensors, &args.out)?;
    println!("{} tensors, {parameters} parameters from {}", tensors.len(), args.checkpoint.display());
    println!("wrote {} (optimizer state and step not carried over)", args.out.display());
    Ok(())
}
