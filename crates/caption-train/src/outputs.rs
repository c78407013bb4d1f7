//! The one rule for every file a command writes (`--report`, `--attention-maps`, `vocab --out`,
//! `import-checkpoint --out`, `features --out`, the demo's report): it never replaces an input, a
//! file of another kind, or anything inside a folder some command owns (a prepared dataset, a
//! checkpoint, `best/`, an evaluation's folder, an export, a run's own files), and it is checked
//! before any work starts, so a refusal costs nothing and writes nothing.
//!
//! Folders written whole (a dataset, a run, an evaluation, an export) are claimed by
//! [`caption_data::claim_output_folder`] and its callers; this module is for single files and
//! folders of files.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use caption_data::{DataError, PreparedDataset, resolved};
use caption_infer::attention_map::ATTENTION_MAP_SOFTWARE;
use caption_infer::checkpoint_files::{OPTIMIZER_FILE, TRAINER_FILE};
use caption_infer::evaluation::is_evaluation_metrics;
use caption_infer::export;
use caption_infer::report::REPORT_GENERATOR;

use crate::run_folder::{is_run, is_run_entry};

/// A kind of file a command writes: its name in messages, and how an existing file of that kind
/// is recognised. Only a file so recognised is ever replaced.
#[derive(Debug, Clone, Copy)]
pub struct FileKind {
    /// What it is, for messages ("an HTML report written by caption").
    pub name: &'static str,
    /// Whether the file at a path is of this kind (read with a small bound).
    recognise: fn(&Path) -> bool,
    /// The name a file of this kind has at a run's top level, which a command may replace there
    /// (the report's `report.html`); a run's other files are never replaced.
    run_file: Option<&'static str>,
}

/// `bleu --report`, `demo --report`: the HTML report ([`caption_infer::report`]).
pub const HTML_REPORT: FileKind = FileKind {
    name: "an HTML report written by caption",
    recognise: is_report,
    run_file: Some(caption_infer::run_layout::REPORT_FILE),
};
/// `caption --attention-maps DIR`: each `NAME.attention.png`.
pub const ATTENTION_MAP: FileKind =
    FileKind { name: "an attention map written by caption", recognise: is_attention_map, run_file: None };
/// `vocab --out`: a Hugging Face tokenizer.json.
pub const TOKENIZER_JSON: FileKind =
    FileKind { name: "a Hugging Face tokenizer.json", recognise: is_tokenizer_json, run_file: None };
/// `import-checkpoint --out`: the original's weights as safetensors.
pub const ORIGINAL_WEIGHTS: FileKind = FileKind {
    name: "a safetensors file of the original's weights (encoderCNN.*, decoderRNN.*)",
    recognise: is_original_weights,
    run_file: None,
};
/// `features --out`: Inception features as safetensors.
pub const FEATURES: FileKind = FileKind {
    name: "a safetensors file of Inception features (tensor `pooled`)",
    recognise: is_features,
    run_file: None,
};

/// What a command reads and writes besides the file being claimed.
#[derive(Debug, Default, Clone, Copy)]
pub struct Claim<'a> {
    /// Files and folders the command reads: never replaced.
    pub inputs: &'a [&'a Path],
    /// Folders the command writes whole (a dataset, an evaluation's folder): nothing else is
    /// put inside one.
    pub folders: &'a [&'a Path],
    /// Runs the command reads or writes, existing or not yet: inside one a file may only stand
    /// at the top level, and never in the place of the run's own files.
    pub runs: &'a [&'a Path],
}

/// Checks that a command may write a `kind` file at `path`: absent, or a regular file of that
/// kind; not one of the inputs; not inside a folder the command writes whole, a prepared
/// dataset, a checkpoint folder (`best/` too), an evaluation's folder or an export; inside a run
/// only at its top level and never in the place of the run's own files.
///
/// # Errors
/// [`DataError::Output`] naming the path and the reason; nothing has been written.
pub fn claim_output_file(path: &Path, kind: &FileKind, claim: &Claim<'_>) -> Result<(), DataError> {
    let target = resolved(path);
    let folder = target.parent().unwrap_or(Path::new("/"));
    let runs: Vec<PathBuf> = claim.runs.iter().map(|run| resolved(run)).collect();
    claim_file(path, &target, kind, claim, &check_parent(folder, &runs, "path", false))?;
    let made_by_the_command = claim.runs.iter().chain(claim.folders).any(|f| folder.starts_with(resolved(f)));
    if !folder.is_dir() && !made_by_the_command {
        return Err(output(path, format!("its folder {} does not exist; nothing was written", folder.display())));
    }
    writable(folder).map_err(|problem| output(path, problem))
}

/// The checks of one file (`path`, resolved: `target`) whose folder's place `parent` gave
/// ([`check_parent`]: whether that folder is a run, or why nothing may go there): what is at the
/// path, the inputs, the command's own folders, the folder, a run's own names, the file's kind.
fn claim_file(
    path: &Path,
    target: &Path,
    kind: &FileKind,
    claim: &Claim<'_>,
    parent: &Result<bool, String>,
) -> Result<(), DataError> {
    let refuse = |problem: String| Err(output(path, problem));
    let exists = match fs::symlink_metadata(path) {
        Ok(metadata) if metadata.file_type().is_symlink() => {
            return refuse("is a symbolic link; nothing was written: give the path of a file, not a link".into());
        }
        Ok(metadata) if metadata.is_dir() => {
            return refuse("is a folder; nothing was written: give the path of a file".into());
        }
        Ok(metadata) if !metadata.is_file() => {
            return refuse("is not a regular file (a device, FIFO or socket); nothing was written".into());
        }
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(source) => return Err(DataError::Io { path: path.display().to_string(), source }),
    };
    for input in claim.inputs {
        if resolved(input) == target {
            return refuse(format!(
                "is the input {}; an output never replaces what it reads: choose another path",
                input.display()
            ));
        }
    }
    for folder in claim.folders {
        if target.starts_with(resolved(folder)) {
            return refuse(format!(
                "lies inside {}, which this command writes: choose a path outside it",
                folder.display()
            ));
        }
    }
    let in_a_run = parent.clone().map_err(|problem| output(path, problem))?;
    let name = target.file_name().unwrap_or_default();
    let own_run_file = in_a_run && kind.run_file.is_some_and(|own| name == own);
    if in_a_run && !own_run_file && is_run_entry(Path::new(name), false) {
        let run = target.parent().unwrap_or(target);
        return refuse(format!("is the run {}'s own {}: choose another name", run.display(), name.to_string_lossy()));
    }
    if exists && !own_run_file && !(kind.recognise)(path) {
        return refuse(format!(
            "exists and is not {}; nothing was written: choose another path, or move that file away",
            kind.name
        ));
    }
    Ok(())
}

/// Checks that a command may write `kind` files named `names` into the folder `dir` (created when
/// missing; nothing else in it is touched): a folder or absent, not a folder that holds one of
/// the inputs or lies in an input folder (the next run over it would take the outputs for
/// inputs), and each file as [`claim_output_file`] says. The folder's place is checked once.
///
/// # Errors
/// As [`claim_output_file`].
pub fn claim_files_in_folder(
    dir: &Path,
    names: &[String],
    kind: &FileKind,
    claim: &Claim<'_>,
) -> Result<(), DataError> {
    let refuse = |problem: String| Err(output(dir, problem));
    match fs::symlink_metadata(dir) {
        Ok(metadata) if metadata.file_type().is_symlink() => {
            return refuse("is a symbolic link; nothing was written: give the folder it points to".into());
        }
        Ok(metadata) if !metadata.is_dir() => return refuse("exists and is not a folder; nothing was written".into()),
        _ => {}
    }
    let folder = resolved(dir);
    for input in claim.inputs {
        let input_path = resolved(input);
        let inside_input_folder = input.is_dir() && folder.starts_with(&input_path);
        if inside_input_folder || input_path.parent() == Some(folder.as_path()) {
            return refuse(format!(
                "is, holds, or lies in the input {}; outputs written there would be read as inputs next time: \
                 choose another folder",
                input.display()
            ));
        }
    }
    let runs: Vec<PathBuf> = claim.runs.iter().map(|run| resolved(run)).collect();
    let parent = check_parent(&folder, &runs, "path", false);
    for name in names {
        claim_file(&dir.join(name), &folder.join(name), kind, claim, &parent)?;
    }
    writable(&folder).map_err(|problem| output(dir, problem))
}

/// Whether files can be created in `folder` (or, while it does not exist, in the nearest folder
/// above it that does): a file is created there and removed at once, so that a read-only place
/// is refused before any work, not after.
fn writable(folder: &Path) -> Result<(), String> {
    let existing = folder.ancestors().find(|a| a.is_dir()).unwrap_or(Path::new("/"));
    let probe = existing.join(format!(".caption-probe-{}", std::process::id()));
    match fs::OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            let _ = fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => {
            Err(format!("cannot be written: {} refuses new files ({e}); nothing was written", existing.display()))
        }
    }
}

/// What an output folder is, for [`claim_folder_place`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FolderKind {
    /// An evaluation's folder (`bleu --out`): also at its place in a run or checkpoint
    /// (`eval-SPLIT`).
    Evaluation,
    /// Any other folder a command writes whole (a dataset, a run, an export).
    Other,
}

/// Checks where an output folder (written whole by its command: a dataset, a run, an
/// evaluation, an export) stands: never inside a prepared dataset, a checkpoint folder (an
/// evaluation's `eval-SPLIT` excepted), an evaluation's folder or an export, and inside a run only
/// at its top level under a name that is not the run's own (an evaluation's `eval-SPLIT`
/// excepted). Whether the folder itself may be replaced is its command's claim
/// ([`caption_data::claim_output_folder`] and the like).
///
/// # Errors
/// [`DataError::Output`] naming the folder that owns the place.
pub fn claim_folder_place(folder: &Path, kind: FolderKind) -> Result<(), DataError> {
    let target = resolved(folder);
    let name = target.file_name().unwrap_or_default();
    let evaluation =
        kind == FolderKind::Evaluation && name.to_str().is_some_and(caption_infer::run_layout::is_evaluation_dir_name);
    let parent = target.parent().unwrap_or(Path::new("/"));
    let in_a_run = check_parent(parent, &[], "folder", evaluation).map_err(|problem| output(folder, problem))?;
    let relative = Path::new(name);
    if in_a_run && !evaluation && (is_run_entry(relative, true) || is_run_entry(relative, false)) {
        let problem = format!("is the run {}'s own {}: choose another name", parent.display(), name.to_string_lossy());
        return Err(output(folder, problem));
    }
    Ok(())
}

/// Where a new entry directly inside `folder` (resolved) may stand, walking `folder` and every
/// folder above it: `Ok(true)` when `folder` is a run (or one of `runs`, runs to be), whose own
/// names the caller checks; `Ok(false)` when it is free; the reason when `folder` or a folder
/// above it is a prepared dataset, a checkpoint (unless `checkpoint_holds_it`, for an evaluation
/// in its checkpoint: the place training gave it), an evaluation's folder or an export, or when
/// a run is above `folder` (below a run's top level only what training and evaluation write).
fn check_parent(folder: &Path, runs: &[PathBuf], noun: &str, checkpoint_holds_it: bool) -> Result<bool, String> {
    let mut in_a_run = false;
    for (depth, above) in folder.ancestors().enumerate() {
        if let Some(owner) = owner_of(above) {
            if depth == 0 && owner == Owner::Checkpoint && checkpoint_holds_it {
                return Ok(false);
            }
            return Err(format!(
                "lies inside {} {}, which holds only what caption writes there: choose a {noun} outside it",
                owner.name(),
                above.display()
            ));
        }
        if is_run(above) || runs.iter().any(|run| run == above) {
            if depth > 0 {
                let relative = folder.strip_prefix(above).unwrap_or(folder);
                let first = relative.iter().next().map_or_else(String::new, |p| p.to_string_lossy().into_owned());
                return Err(format!(
                    "lies inside the run {} (in its {first}/), which holds only what training and evaluation \
                     write: choose a {noun} at the run's top level or outside it",
                    above.display()
                ));
            }
            in_a_run = true;
        }
    }
    Ok(in_a_run)
}

fn output(path: &Path, problem: String) -> DataError {
    DataError::Output { path: path.display().to_string(), problem }
}

/// A command that owns a folder: nothing but it writes there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// A prepared dataset.
    Dataset,
    /// A checkpoint (`checkpoints/step-N`, `best/`).
    Checkpoint,
    /// An evaluation's folder.
    Evaluation,
    /// A PyTorch export.
    Export,
}

impl Owner {
    /// How messages name it.
    fn name(self) -> &'static str {
        match self {
            Self::Dataset => "the prepared dataset",
            Self::Checkpoint => "the checkpoint",
            Self::Evaluation => "the evaluation folder",
            Self::Export => "the PyTorch export",
        }
    }
}

/// What command owns `folder`, when one does.
fn owner_of(folder: &Path) -> Option<Owner> {
    if PreparedDataset::is_prepared(folder) {
        Some(Owner::Dataset)
    } else if folder.join(TRAINER_FILE).is_file() || folder.join(OPTIMIZER_FILE).is_file() {
        Some(Owner::Checkpoint)
    } else if read_json(&folder.join("metrics.json")).is_some_and(|metrics| is_evaluation_metrics(&metrics)) {
        Some(Owner::Evaluation)
    } else if read_json(&folder.join(export::CONFIG_FILE)).is_some_and(|config| export::is_export_config(&config)) {
        Some(Owner::Export)
    } else {
        None
    }
}

/// Largest file a recogniser reads whole (a tokenizer.json, a metrics.json).
const RECOGNISED_BYTES: u64 = 64 << 20;

fn read_json(path: &Path) -> Option<serde_json::Value> {
    let bytes = caption_data::read_input_file(path, RECOGNISED_BYTES).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The first `limit` bytes of a regular file.
fn head(path: &Path, limit: u64) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    caption_data::open_input_file(path).ok()?.take(limit).read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

fn is_report(path: &Path) -> bool {
    let Some(bytes) = head(path, 4096) else { return false };
    let text = String::from_utf8_lossy(&bytes);
    // Reports written before the generator tag began exactly so.
    let before_the_tag = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>";
    text.starts_with("<!DOCTYPE html>")
        && (text.contains(REPORT_GENERATOR)
            || (text.starts_with(before_the_tag) && text.contains("</style></head><body>\n<h1>")))
}

fn is_attention_map(path: &Path) -> bool {
    let Some(bytes) = head(path, 4096) else { return false };
    let chunk = [b"tEXtSoftware\0".as_slice(), ATTENTION_MAP_SOFTWARE.as_bytes()].concat();
    bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.windows(chunk.len()).any(|w| w == chunk)
}

fn is_tokenizer_json(path: &Path) -> bool {
    read_json(path)
        .is_some_and(|json| json.get("model").is_some_and(|m| m.is_object()) && json.get("added_tokens").is_some())
}

/// The tensor names of a safetensors file, from its header alone.
fn safetensors_names(path: &Path) -> Option<Vec<String>> {
    let length = u64::from_le_bytes(head(path, 8)?.try_into().ok()?);
    if length > RECOGNISED_BYTES {
        return None;
    }
    let bytes = head(path, 8 + length)?;
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(bytes.get(8..)?).ok()?;
    Some(header.into_iter().map(|(name, _)| name).filter(|name| name != "__metadata__").collect())
}

fn is_original_weights(path: &Path) -> bool {
    safetensors_names(path).is_some_and(|names| {
        !names.is_empty() && names.iter().all(|n| n.starts_with("encoderCNN.") || n.starts_with("decoderRNN."))
    })
}

fn is_features(path: &Path) -> bool {
    safetensors_names(path).is_some_and(|names| names.iter().any(|n| n == "pooled"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run folder (as [`is_run`] recognises it: a config.toml that reads) with a best/
    /// checkpoint, a dataset (a manifest), an evaluation folder and foreign files, under `root`.
    fn layout(root: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
        let run = root.join("run");
        fs::create_dir_all(run.join("best")).unwrap();
        fs::write(run.join("config.toml"), crate::TrainConfig::default().to_toml()).unwrap();
        fs::write(run.join("metrics.jsonl"), "{}\n").unwrap();
        fs::write(run.join("best/trainer.json"), "{}").unwrap();
        fs::write(run.join("best/model.safetensors"), "weights").unwrap();
        fs::create_dir_all(run.join("eval-test")).unwrap();
        fs::write(run.join("eval-test/metrics.json"), r#"{"compat": "coco", "bleu_4": 0.5}"#).unwrap();
        let data = root.join("data");
        fs::create_dir_all(&data).unwrap();
        fs::write(data.join("manifest.json"), r#"{"layout_version": 2, "files": {}}"#).unwrap();
        fs::write(data.join("captions.parquet"), "table").unwrap();
        fs::write(root.join("notes.html"), "<!DOCTYPE html><p>my notes</p>").unwrap();
        (run, data)
    }

    fn refusal(path: &Path, kind: &FileKind, claim: &Claim<'_>) -> String {
        claim_output_file(path, kind, claim).expect_err(&path.display().to_string()).to_string()
    }

    #[test]
    fn a_file_is_written_only_where_nothing_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let (run, data) = layout(root);
        let inputs = [run.as_path(), data.as_path()];
        let out = root.join("out");
        let claim = Claim { inputs: &inputs, folders: &[&out], runs: &[] };
        let report = &HTML_REPORT;
        for (path, words) in [
            (run.join("best/model.safetensors"), "inside the checkpoint"),
            (run.join("best/new.html"), "inside the checkpoint"),
            (run.join("checkpoints/new.html"), "run"),
            (run.join("config.toml"), "the run"),
            (run.join("metrics.jsonl"), "own metrics.jsonl"),
            (run.join("eval-test/metrics.json"), "evaluation folder"),
            (data.join("captions.parquet"), "prepared dataset"),
            (data.join("report.html"), "prepared dataset"),
            (root.join("notes.html"), "is not an HTML report"),
            (out.join("captions.jsonl"), "which this command writes"),
            (root.join("run/../data/x.html"), "prepared dataset"),
            (root.to_path_buf(), "is a folder"),
            (root.join("absent/report.html"), "does not exist"),
        ] {
            let message = refusal(&path, report, &claim);
            assert!(message.contains(words), "{}: {message}", path.display());
        }
        assert!(refusal(&data, &TOKENIZER_JSON, &Claim { inputs: &[&data], ..Claim::default() }).contains("folder"));
        let input = root.join("notes.html");
        let message = refusal(&input, &HTML_REPORT, &Claim { inputs: &[&input], ..Claim::default() });
        assert!(message.contains("is the input"), "{message}");
        // New files, the run's own report, and an earlier report are fine.
        for path in [root.join("report.html"), run.join("report.html"), run.join("other.html")] {
            claim_output_file(&path, report, &claim).unwrap();
        }
        fs::write(root.join("report.html"), format!("<!DOCTYPE html>\n<html><head>{REPORT_GENERATOR}")).unwrap();
        claim_output_file(&root.join("report.html"), report, &claim).unwrap();
        // A run to be: only its top level, never its folders.
        let future = root.join("future");
        let planned = Claim { runs: &[&future], ..Claim::default() };
        claim_output_file(&future.join("report.html"), report, &planned).unwrap();
        assert!(refusal(&future.join("best/report.html"), report, &planned).contains("best/"));
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(run.join("best/model.safetensors"), root.join("link.html")).unwrap();
            assert!(refusal(&root.join("link.html"), report, &claim).contains("symbolic link"));
            assert!(refusal(Path::new("/dev/null"), report, &claim).contains("not a regular file"));
        }
    }

    #[test]
    fn output_folders_stand_only_where_nothing_is_owned() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let (run, data) = layout(root);
        for (folder, kind, words) in [
            (data.join("export"), FolderKind::Other, "prepared dataset"),
            (data.join("eval-test"), FolderKind::Evaluation, "prepared dataset"),
            (run.join("best/export"), FolderKind::Other, "inside the checkpoint"),
            (run.join("best/eval-x/deeper"), FolderKind::Evaluation, "inside the checkpoint"),
            (run.join("eval-test/inner"), FolderKind::Evaluation, "evaluation folder"),
            (run.join("checkpoints"), FolderKind::Other, "own checkpoints"),
            (run.join("eval-test"), FolderKind::Other, "own eval-test"),
            (run.join("sub/run"), FolderKind::Other, "in its sub/"),
        ] {
            let message = claim_folder_place(&folder, kind).expect_err(&folder.display().to_string()).to_string();
            assert!(message.contains(words), "{}: {message}", folder.display());
        }
        for (folder, kind) in [
            (run.join("eval-test"), FolderKind::Evaluation),
            (run.join("best/eval-test"), FolderKind::Evaluation),
            (run.join("my-export"), FolderKind::Other),
            (root.join("elsewhere/deep"), FolderKind::Other),
        ] {
            claim_folder_place(&folder, kind).unwrap();
        }
    }

    #[test]
    fn files_of_each_kind_are_recognised_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        let kinds = [&HTML_REPORT, &ATTENTION_MAP, &TOKENIZER_JSON, &ORIGINAL_WEIGHTS, &FEATURES];
        let safetensors = |names: &[&str]| {
            let tensors: Vec<(String, candle_core::Tensor)> = names
                .iter()
                .map(|n| {
                    (
                        n.to_string(),
                        candle_core::Tensor::zeros(2, candle_core::DType::F32, &candle_core::Device::Cpu).unwrap(),
                    )
                })
                .collect();
            safetensors::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), None).unwrap()
        };
        let map = {
            let mut bytes = Vec::new();
            let mut encoder = png::Encoder::new(&mut bytes, 1, 1);
            encoder.set_color(png::ColorType::Rgb);
            encoder.add_text_chunk("Software".into(), ATTENTION_MAP_SOFTWARE.into()).unwrap();
            encoder.write_header().unwrap().write_image_data(&[0, 0, 0]).unwrap();
            bytes
        };
        let samples: [(Vec<u8>, usize); 6] = [
            (
                format!("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">{REPORT_GENERATOR}")
                    .into_bytes(),
                0,
            ),
            (map, 1),
            (br#"{"version": "1.0", "model": {"type": "WordLevel"}, "added_tokens": []}"#.to_vec(), 2),
            (safetensors(&["encoderCNN.inception.fc.weight", "decoderRNN.embed.weight"]), 3),
            (safetensors(&["pooled", "logits"]), 4),
            (b"something else entirely".to_vec(), usize::MAX),
        ];
        for (bytes, kind) in samples {
            fs::write(&path, &bytes).unwrap();
            for (k, file_kind) in kinds.iter().enumerate() {
                assert_eq!((file_kind.recognise)(&path), k == kind, "{} as sample {kind}", file_kind.name);
            }
        }
    }

    #[test]
    fn a_folder_of_outputs_never_holds_the_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let images = dir.path().join("images");
        fs::create_dir_all(&images).unwrap();
        let photo = images.join("a.jpg");
        fs::write(&photo, b"jpeg").unwrap();
        let names = vec!["a.attention.png".to_string()];
        let claim = Claim { inputs: &[&photo], ..Claim::default() };
        let message = claim_files_in_folder(&images, &names, &ATTENTION_MAP, &claim).unwrap_err().to_string();
        assert!(message.contains("lies in the input"), "{message}");
        let within = Claim { inputs: &[&images], ..Claim::default() };
        let message = claim_files_in_folder(&images.join("maps"), &names, &ATTENTION_MAP, &within).unwrap_err();
        assert!(message.to_string().contains("lies in the input"), "{message}");
        let maps = dir.path().join("maps");
        claim_files_in_folder(&maps, &names, &ATTENTION_MAP, &claim).unwrap();
        fs::create_dir_all(&maps).unwrap();
        fs::write(maps.join("a.attention.png"), b"a picture of my own").unwrap();
        let message = claim_files_in_folder(&maps, &names, &ATTENTION_MAP, &claim).unwrap_err().to_string();
        assert!(message.contains("not an attention map"), "{message}");
    }
}
