//! Choosing a device from a command-line spelling: `auto`, `cpu`, `cuda` or `cuda:N`; and
//! [`pin_cpu_thread_count`].

use candle_core::Device;

/// Parses `auto` (CUDA 0 when this build has CUDA and a GPU answers, else the CPU), `cpu`,
/// `cuda` or `cuda:N`. A CUDA device made here reads `CAPTION_ALLOW_TF32` first and keeps the
/// memory its tensors free for its next allocations (its memory pool's release threshold raised:
/// candle allocates with `cuMemAllocAsync`, whose pool otherwise returns freed memory to the
/// driver at every synchronisation).
///
/// # Errors
/// An unknown spelling, or CUDA asked of a build without the `cuda` feature or a machine without
/// a usable GPU; the message says which.
pub fn parse_device(spec: &str) -> candle_core::Result<Device> {
    let cuda = |ordinal: usize| {
        if !candle_core::utils::cuda_is_available() {
            candle_core::bail!(
                "--device {spec}: this build has no CUDA support (build with `--features cuda`; for the \
                 commands, `cargo xtask-cuda` instead of `cargo xtask`)"
            );
        }
        // Reads CAPTION_ALLOW_TF32 before any product runs, so that candle's own products follow it.
        crate::backend::allow_tf32();
        let device = Device::new_cuda(ordinal).map_err(|e| candle_core::Error::Msg(format!("--device {spec}: {e}")))?;
        #[cfg(feature = "cuda")]
        if let Device::Cuda(cuda) = &device {
            crate::backend::cuda::keep_freed_memory(cuda)?;
        }
        Ok(device)
    };
    match spec {
        "cpu" => Ok(Device::Cpu),
        "auto" => {
            Ok(if candle_core::utils::cuda_is_available() { cuda(0).unwrap_or(Device::Cpu) } else { Device::Cpu })
        }
        "cuda" => cuda(0),
        other => match other.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
            Some(ordinal) => cuda(ordinal),
            None => candle_core::bail!("unknown device {other:?}: expected auto, cpu, cuda or cuda:N"),
        },
    }
}

/// Fixes the CPU thread count candle uses for its matrix products by setting `RAYON_NUM_THREADS`
/// (when unset) to the count candle would pick itself (physical cores). Call it at the start of
/// `main`, before any other thread exists.
///
/// Without it candle 0.11 works the count out again for every matrix product, reading
/// `/proc/cpuinfo` each time: a quarter of the time of greedy decoding one image (50 steps:
/// 14.6 ms without, 10.9 ms with, on a 2-core VM), where each product is small.
///
/// # Safety
/// Sets an environment variable: no other thread may be reading or writing the environment.
pub unsafe fn pin_cpu_thread_count() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let threads = candle_core::utils::get_num_threads();
        // Rayon's global pool starts first, at its own default (every logical CPU), so that the
        // variable reaches only candle; its idle workers do not touch the environment.
        rayon::current_num_threads();
        // SAFETY: the caller guarantees no other thread touches the environment.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.to_string()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings() {
        assert!(matches!(parse_device("cpu"), Ok(Device::Cpu)));
        assert!(parse_device("auto").is_ok());
        assert!(parse_device("gpu").unwrap_err().to_string().contains("expected auto, cpu, cuda or cuda:N"));
        if !candle_core::utils::cuda_is_available() {
            assert!(parse_device("cuda:0").unwrap_err().to_string().contains("no CUDA support"));
        }
    }
}
