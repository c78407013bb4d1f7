//! The CUDA backend's kernels (src/backend/cuda/kernels.cu) on machines without a GPU: every
//! kernel the Rust side launches is defined there with as many parameters as it pushes, and,
//! wherever a CUDA toolkit is present (nvcc under `$CUDA_ROOT`, `$CUDA_PATH`, `$CUDA_HOME` or on
//! `PATH`; .ci/run sets one up), nvcc compiles the file to PTX the way build.rs does, warnings as
//! errors, with an entry for each kernel. So the kernels cannot rot where the `cuda` feature is not
//! built.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const SOURCE: &str = include_str!("../src/backend/cuda/kernels.cu");
const LAUNCHES: &str = include_str!("../src/backend/cuda/kernels.rs");

/// Each `extern "C" __global__` kernel of `kernels.cu` with its parameter count.
fn defined_kernels() -> BTreeMap<String, usize> {
    SOURCE
        .split("extern \"C\" __global__ void ")
        .skip(1)
        .map(|rest| {
            let (name, rest) = rest.split_once('(').expect("a kernel's parameter list");
            let (parameters, _) = rest.split_once(')').expect("the end of the parameter list");
            (name.trim().to_string(), parameters.split(',').count())
        })
        .collect()
}

/// Each kernel `kernels.rs` loads (`function(device, "NAME")`) with the arguments it pushes.
fn launched_kernels() -> BTreeMap<String, usize> {
    LAUNCHES
        .split("function(device, \"")
        .skip(1)
        .map(|rest| {
            let (name, body) = rest.split_once('"').expect("a kernel name");
            let launch = body.split("run(&mut b").next().expect("the launch");
            // Each `.arg(` pushes one argument; in an either/or `match` only one arm runs.
            let pushed = launch.matches(".arg(").count() - either_or_surplus(launch);
            (name.to_string(), pushed)
        })
        .collect()
}

/// The `.arg(` calls of a `match`'s second arm (`None => …` pushing null pointers), which replace
/// the first arm's rather than add to them.
fn either_or_surplus(launch: &str) -> usize {
    launch.split("None => ").skip(1).map(|arm| arm.split(',').next().unwrap_or("").matches(".arg(").count()).sum()
}

#[test]
fn every_launched_kernel_is_defined_with_its_parameters() {
    let defined = defined_kernels();
    let launched = launched_kernels();
    assert!(launched.len() >= 10, "the scan found the launches: {launched:?}");
    for (name, pushed) in &launched {
        let parameters = defined.get(name).unwrap_or_else(|| panic!("{name} is launched but kernels.cu lacks it"));
        assert_eq!(pushed, parameters, "{name}: {pushed} arguments pushed, {parameters} parameters");
    }
    for name in defined.keys() {
        assert!(launched.contains_key(name), "{name} is defined but never launched");
    }
}

/// nvcc where build.rs would look for it.
fn nvcc() -> Option<PathBuf> {
    let under_root = ["CUDA_ROOT", "CUDA_PATH", "CUDA_HOME"]
        .iter()
        .filter_map(std::env::var_os)
        .map(|root| PathBuf::from(root).join("bin").join("nvcc"))
        .find(|path| path.is_file());
    under_root.or_else(|| Command::new("nvcc").arg("--version").output().ok().map(|_| PathBuf::from("nvcc")))
}

#[test]
fn nvcc_compiles_the_kernels_when_a_toolkit_is_present() {
    let Some(nvcc) = nvcc() else {
        eprintln!("no CUDA toolkit here: kernels.cu is checked against its launches only");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ptx = dir.path().join("kernels.ptx");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/backend/cuda/kernels.cu");
    let output = Command::new(&nvcc)
        .args(["--ptx", "-O3", "-std=c++17", "--Werror", "all-warnings", "-arch=compute_75", "-o"])
        .arg(&ptx)
        .arg(&source)
        .output()
        .unwrap();
    assert!(output.status.success(), "nvcc failed:\n{}", String::from_utf8_lossy(&output.stderr));
    let ptx = std::fs::read_to_string(ptx).unwrap();
    for name in defined_kernels().keys() {
        assert!(ptx.contains(&format!(".entry {name}(")), "no PTX entry for {name}");
    }
    // --use_fast_math would turn divisions, square roots and tanh into approximations.
    for approximation in ["div.approx", "sqrt.approx", "tanh.approx"] {
        assert!(!ptx.contains(approximation), "{approximation} in the PTX: parity would be lost");
    }
}
