//! With the `cuda` feature: compiles the CUDA backend's kernels (src/backend/cuda/kernels.cu) to
//! PTX with nvcc, as candle compiles its own, for the library to embed. Without it: nothing.
//!
//! nvcc is looked for in `$CUDA_ROOT/bin`, `$CUDA_PATH/bin`, `$CUDA_HOME/bin`, then on `PATH`
//! (../shared/tools/cuda-toolchain.sh sets these up). The PTX targets `compute_$CUDA_COMPUTE_CAP`
//! (candle's variable; 90 for H100/H200), 75 when unset: PTX runs on its architecture and every
//! later one. No `--use_fast_math`: the kernels must agree with the CPU backend and PyTorch.

use std::path::PathBuf;
use std::process::Command;

const KERNELS: &str = "src/backend/cuda/kernels.cu";

fn main() {
    println!("cargo::rerun-if-changed={KERNELS}");
    for variable in ["CUDA_ROOT", "CUDA_PATH", "CUDA_HOME", "CUDA_COMPUTE_CAP"] {
        println!("cargo::rerun-if-env-changed={variable}");
    }
    if std::env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("caption_kernels.ptx");
    let capability = std::env::var("CUDA_COMPUTE_CAP").unwrap_or_else(|_| "75".into());
    let capability = capability.trim().trim_end_matches(['a', 'f']).replace('.', "");
    let nvcc = nvcc();
    let status = Command::new(&nvcc)
        .args(["--ptx", "-O3", "-std=c++17", "--Werror", "all-warnings"])
        .arg(format!("-arch=compute_{capability}"))
        .arg("-o")
        .arg(&out)
        .arg(KERNELS)
        .status()
        .unwrap_or_else(|error| panic!("the cuda feature needs nvcc ({}): {error}", nvcc.display()));
    assert!(status.success(), "nvcc failed on {KERNELS} ({status})");
}

/// nvcc under the toolkit the environment names, or the one on `PATH`.
fn nvcc() -> PathBuf {
    ["CUDA_ROOT", "CUDA_PATH", "CUDA_HOME"]
        .iter()
        .filter_map(std::env::var_os)
        .map(|root| PathBuf::from(root).join("bin").join("nvcc"))
        .find(|path| path.is_file())
        .unwrap_or_else(|| PathBuf::from("nvcc"))
}
