//! Running the `cargo xtask` binary in tests: commands, their outcome, a tiny prepared dataset and
//! tiny training settings.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The xtask binary with `args`.
pub fn xtask(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    command.args(args);
    command
}

/// Standard output of a command that must succeed (otherwise both streams are shown).
pub fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Standard error of a command that must fail with status 1, printing one error and no
/// backtrace.
pub fn fails(output: Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.code(),
        Some(1),
        "stdout:\n{}\nstderr:\n{stderr}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(
        stderr.contains("error: ") && !stderr.contains("panicked") && !stderr.contains("stack backtrace"),
        "{stderr}"
    );
    stderr
}

/// `prepare-data` of a generated shapes dataset of `images` images of 80 px into `out`.
pub fn prepare_shapes(out: &Path, images: usize) -> Command {
    let mut command =
        xtask(&["prepare-data", "--dataset", "shapes", "--images", &images.to_string(), "--size", "80", "--out"]);
    command.arg(out).args(["--threshold", "2", "-q"]);
    command
}

/// A generated shapes dataset of `images` images of 80 px at `dir/shapes`.
pub fn prepare(dir: &Path, images: usize) -> PathBuf {
    let data = dir.join("shapes");
    let out = ok(prepare_shapes(&data, images).output().unwrap());
    assert!(out.contains("vocabulary"), "{out}");
    data
}

/// The demo at tiny sizes, with its dataset and run folders.
pub fn demo_tiny(data: &Path, run: &Path) -> Command {
    let mut command = xtask(&["demo", "--images", "20", "--epochs", "1", "--image-size", "75", "--embed-size", "8"]);
    command.args(["--hidden-size", "8", "--device", "cpu", "--data"]).arg(data).arg("--run").arg(run);
    command
}

/// Training settings small enough for tests.
pub const TRAIN: &[&str] = &[
    "--encoder",
    "random",
    "--image-size",
    "75",
    "--batch-size",
    "16",
    "--embed-size",
    "24",
    "--hidden-size",
    "32",
    "--lr",
    "0.003",
    "--device",
    "cpu",
    "-q",
];

/// `train --data data --run run` with [`TRAIN`] and `extra`.
pub fn train(data: &Path, run: &Path, extra: &[&str]) -> Command {
    let mut command = xtask(&["train", "--data"]);
    command.arg(data).arg("--run").arg(run).args(TRAIN).args(extra);
    command
}

/// Every regular file under `root` (symbolic links not followed) with its bytes, by path
/// relative to `root`.
pub fn snapshot(root: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    let mut files = std::collections::BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let metadata = std::fs::symlink_metadata(&path).unwrap();
            if metadata.is_dir() {
                pending.push(path);
            } else if metadata.is_file() {
                files.insert(path.strip_prefix(root).unwrap().to_path_buf(), std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

/// A generated shapes dataset of 16 images at `dir/shapes` and a run trained on it for one
/// epoch with [`TRAIN`] at `dir/run`: (dataset, run).
pub fn trained_run(dir: &Path) -> (PathBuf, PathBuf) {
    let data = prepare(dir, 16);
    let run = dir.join("run");
    ok(train(&data, &run, &["--epochs", "1"]).output().unwrap());
    (data, run)
}
